"""Issue 29.4: every figure a page quotes from a command is the one the command produces
(mechanism and sources: ``tests/doc_figures.py``), and the default run's accuracy is
byte-stable on one machine."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from doc_figures import SLOW_SOURCES, SOURCES, marked_figures, pages

from imcsim.studies.reproducible import has_avx2

FIGURES = [f for page in pages() for f in marked_figures(page)]


def test_markers_are_read_with_their_precision_and_tolerance(tmp_path: Path) -> None:
    page = tmp_path / "p.md"
    page.write_text("keeps 87.0 %<!-- figure: s.acc --> at 12,545 <!-- figure: s.cycles -->"
                    " cycles, 1.72×<!-- figure: s.speedup ±0.05 -->\n")
    acc, cycles, speedup = marked_figures(page)
    assert (acc.key, acc.quoted, acc.tolerance) == ("s.acc", "87.0", None)
    assert acc.matches(87.04) and not acc.matches(86.0)
    assert cycles.matches(12545) and not cycles.matches(12546)
    assert speedup.tolerance == 0.05 and speedup.matches(1.76) and not speedup.matches(1.8)


def test_every_marked_figure_has_a_known_source() -> None:
    assert FIGURES, "no page marks a figure"
    unknown = [f"{f.page}:{f.line} {f.key}" for f in FIGURES if f.source not in SOURCES]
    assert not unknown, unknown


@pytest.mark.parametrize("source", [
    pytest.param(s, marks=pytest.mark.slow) if s in SLOW_SOURCES else s
    for s in sorted({f.source for f in FIGURES})])
def test_quoted_figures_are_what_the_command_produces(source: str, tmp_path: Path) -> None:
    produced = SOURCES[source](tmp_path)
    wrong = []
    for f in (f for f in FIGURES if f.source == source):
        name = f.key.split(".", 1)[1]
        if name not in produced:
            wrong.append(f"{f.page}:{f.line}: {f.key} is not produced (have {sorted(produced)})")
        elif not f.matches(produced[name]):
            wrong.append(f"{f.page}:{f.line}: quotes {f.quoted} for {f.key}, the command "
                         f"gives {produced[name]}")
    assert not wrong, "\n".join(wrong)


@pytest.mark.slow
def test_quick_default_run_is_byte_stable(tmp_path: Path) -> None:
    """The default run's compression part, quick (20 test images, a 64-image fine-tune),
    twice: accuracy and cycle fields are identical to the last byte."""
    from imcsim.studies.mission import run_compression
    from imcsim.studies.recipes import load_recipe

    spec = load_recipe("default").compression.model_copy(update={
        "methods": ("dense-im2col", "pruned-pattern-sdk"), "images": 20, "finetune_images": 64,
        "workers": 1})
    fields = ("method", "accuracy", "float_accuracy", "ideal_accuracy", "cycles",
              "latency_cycles", "params")
    runs = [json.dumps([{k: r[k] for k in fields} for r in run_compression(spec, tmp_path / d)])
            for d in ("a", "b")]
    assert runs[0] == runs[1]
    assert all(0 < r["accuracy"] <= 1 for r in json.loads(runs[0]))


@pytest.mark.skipif(not has_avx2(), reason="kernels are pinned on AVX2 CPUs only")
def test_compression_workers_run_pinned_avx2_kernels() -> None:
    """The pinning takes effect: a worker started as the compression study starts its
    workers computes with AVX2 kernels, whatever this CPU's best instruction set is."""
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    from imcsim.studies.reproducible import kernel_choice, pin_kernel_env

    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(1, mp_context=context, initializer=pin_kernel_env) as pool:
        assert pool.submit(kernel_choice).result() == "AVX2"
