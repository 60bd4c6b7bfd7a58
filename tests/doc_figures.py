"""Figures that cannot go stale: every number a Markdown page quotes from a command is
marked, and a test regenerates it from the command.

Marking a figure (invisible when the page is rendered): put an HTML comment right after
the number, ``87.0 %<!-- figure: default-accuracy.fastest.accuracy_pct -->``.  The key is
``SOURCE.NAME``; ``SOURCE`` names an entry of ``SOURCES`` below (a function that runs the
command, or a quick variant that gives the same numbers, and returns its figures by
name).  A figure that may move states its tolerance in the marker and so on the page:
``<!-- figure: KEY ±0.5 -->``; without one the quoted number must equal the produced
one at the precision it is quoted (``1.72`` matches 1.7249, ``12,545`` matches 12545).

``marked_figures(path)`` reads the markers of a page; ``tests/test_figures.py`` checks
every page (README.md, docs/**/*.md) against ``SOURCES``.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

ROOT = Path(__file__).parents[1]
MARKER = re.compile(
    r"(?P<number>-?[0-9][0-9,]*(?:\.[0-9]+)?)\s*(?:%|×|x)?\s*"
    r"<!--\s*figure:\s*(?P<key>[A-Za-z0-9_.-]+)\s*(?:±\s*(?P<tol>[0-9.]+))?\s*-->")


@dataclass(frozen=True)
class Figure:
    """One marked number of a page."""

    page: str
    line: int
    key: str
    quoted: str
    tolerance: float | None

    @property
    def source(self) -> str:
        return self.key.split(".", 1)[0]

    def matches(self, produced: float) -> bool:
        value = Decimal(self.quoted.replace(",", ""))
        if self.tolerance is not None:
            return abs(float(value) - produced) <= self.tolerance + 1e-9
        places = -value.as_tuple().exponent  # type: ignore[operator]
        return f"{produced:.{places}f}" == f"{value:.{places}f}"


def pages() -> list[Path]:
    """Every page whose figures are checked."""
    return [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]


def marked_figures(path: Path) -> list[Figure]:
    name = str(path.relative_to(ROOT)) if path.is_relative_to(ROOT) else str(path)
    figures = []
    for number, line in enumerate(path.read_text().splitlines(), start=1):
        for m in MARKER.finditer(line):
            tol = float(m["tol"]) if m["tol"] else None
            figures.append(Figure(name, number, m["key"], m["number"], tol))
    return figures


def _default_cycles(out: Path) -> dict[str, float]:
    """``imcsim run`` (recipe default) without its accuracy part: the compression methods'
    cycles and the mapping picture — the same analytic numbers the full run prints."""
    from imcsim.studies.mission import run_compression
    from imcsim.studies.pictures import draw_picture
    from imcsim.studies.recipes import load_recipe

    recipe = load_recipe("default")
    records = run_compression(recipe.compression.model_copy(update={"accuracy": False, "workers": 1}), out)
    fastest = min(records, key=lambda r: r["latency_cycles"])
    figures = {"fastest.cycles": fastest["latency_cycles"], "fastest.speedup": fastest["speedup"]}
    picture = draw_picture(recipe.pictures, out)
    for mapping in picture.mappings:
        figures[f"picture.{mapping.mapper}.cycles"] = mapping.cycles
        figures[f"picture.{mapping.mapper}.tiles"] = mapping.tiles
    return figures


def _default_accuracy(out: Path) -> dict[str, float]:
    """``imcsim run``'s accuracy figures: the fastest method and the dense models, with the
    default recipe's settings unchanged (each method's record does not depend on which
    others run: every compressed model is fine-tuned and evaluated on its own, in a worker
    with pinned kernels, ``imcsim.studies.reproducible``)."""
    from imcsim.compression import method
    from imcsim.studies.mission import run_compression
    from imcsim.studies.recipes import load_recipe

    spec = load_recipe("default").compression
    cycles = run_compression(spec.model_copy(update={"accuracy": False, "workers": 1}), out / "cycles")
    fastest = min(cycles, key=lambda r: r["latency_cycles"])["method"]
    dense = tuple(m for m in spec.methods if method(m).transform == "dense")
    records = run_compression(spec.model_copy(update={"methods": (fastest, *dense)}), out)
    top = records[0]
    best_dense = max(records[1:], key=lambda r: r["accuracy"])
    return {"fastest.accuracy_pct": 100 * top["accuracy"],
            "fastest.float_accuracy_pct": 100 * top["float_accuracy"],
            "fastest.cycles": top["latency_cycles"],
            "dense.accuracy_pct": 100 * best_dense["accuracy"]}


SOURCES: dict[str, Callable[[Path], dict[str, float]]] = {
    "default-cycles": _default_cycles,
    "default-accuracy": _default_accuracy,
}
"""Figure sources by name: each runs its command (or an equivalent quick variant) into a
fresh folder and returns every figure it produces."""
SLOW_SOURCES = {"default-accuracy", "default-cycles"}
"""Sources that take more than a few seconds (tests marked slow; CI runs them): the
accuracy source fine-tunes and evaluates (minutes), the cycles source compresses ResNet-20
seven ways (~30 s on a busy 2-core machine)."""
