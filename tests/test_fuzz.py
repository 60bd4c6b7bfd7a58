"""Fuzzing the command line and every file reader (issue 15).

Hypothesis draws argument lists for every verb and mutates valid chip files, layer
tables, recipes, results files and checkpoints.  Every outcome must be a success (exit
0) or exit 2 with exactly one line ``imcsim: error: …`` on stderr (plus ``notice`` lines
for results a run chose to ignore); never a traceback, never an internal error.

Work past the point where every input has been validated (training, accuracy
simulation, the sweep itself) is replaced by a stub that stops the run with an
``ImcsimError``: the parser and the readers are what is fuzzed, fast enough for CI.
"""

from __future__ import annotations

import importlib
import os
import re
from pathlib import Path

import pytest
import torch
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from imcsim.errors import ImcsimError

from cli_helpers import run

ROOT = Path(__file__).parents[1]
DEEP = int(os.environ.get("IMCSIM_FUZZ_DEEP", "0"))
"""``IMCSIM_FUZZ_DEEP=N``: N× the examples, fresh random draws (CI runs a fixed sample)."""
SETTINGS = settings(deadline=None, derandomize=not DEEP, database=None,
                    suppress_health_check=[HealthCheck.function_scoped_fixture,
                                           HealthCheck.too_slow])


def examples(n: int) -> settings:
    return settings(SETTINGS, max_examples=n * max(DEEP, 1))
TRICKY = ["", " ", "0", "-1", "1", "2", "3.9", "128", "128.0", "1e999", "inf", "nan", "-inf",
          "true", "none", "None", "１２８", "6²", "99999999999999999999999", "1_000",
          "128x128", "64x", "x64", "0x128", "vw-sdk,,sdk", ",", "\x00", "ÿ", "💥", "../..",
          "/proc/x", "table:cnn8", "cnn8", "default", "isaac", "resnet20", "nosuch", "a" * 300]


class Stubbed(ImcsimError):
    """Raised where the heavy work would start: every input was accepted."""


def _stop(*_args, **_kwargs):
    raise Stubbed("stub reached (inputs accepted)")


HEAVY = [
    ("imcsim.studies.accuracy", "run_accuracy"),
    ("imcsim.studies.accuracy", "prepare"),
    ("imcsim.studies.accuracy_study", "compression_study"),
    ("imcsim.cli.train_cmd", "_train"),
    ("imcsim.cli.compare_cmd", "compare_methods"),
    ("imcsim.nn.simulate", "simulate_network"),
    ("imcsim.cli.sweep_cmd", "sweep"),
]
"""Steps that start after every input was validated (replaced by ``_stop``)."""


def _stub(monkeypatch, targets) -> None:
    for module, name in targets:
        monkeypatch.setattr(importlib.import_module(module), name, _stop, raising=False)
    plotting = importlib.import_module("imcsim.plotting")
    monkeypatch.setattr(plotting, "_save", lambda ax, path: plotting.plt.close(ax.figure) or path)


@pytest.fixture
def stubs(monkeypatch):
    _stub(monkeypatch, HEAVY)


@pytest.fixture
def chip_stub(monkeypatch):
    """Checkpoints are read by ``prepare``: stop at the on-chip simulation instead."""
    _stub(monkeypatch, [("imcsim.studies.accuracy", "evaluate_on_chip")])


def check(result) -> None:
    """Success, or exit 2 with one error line; never a traceback."""
    assert "Traceback" not in result.err, result.err
    assert result.code in (0, 2), (result.code, result.err)
    if result.code == 2:
        lines = [ln for ln in result.err.splitlines()
                 if ln.strip() and not ln.startswith("imcsim: notice:")]
        assert len(lines) == 1 and lines[0].startswith("imcsim: error:"), result.err


# -- the argument parser -------------------------------------------------------------

COMMON = {"--format": ["table", "json", "csv", "xml"], "--array": ["64x64", "128x256"],
          "--chip": ["default", "isaac", "x.toml"], "--cell-bits": ["1", "2", "4"],
          "--weight-bits": ["1", "8"], "--model": ["resnet20", "table:cnn8"],
          "--seed": ["0", "7"], "--images": ["1", "2", "1000"], "--keep": ["0.5", "1"],
          "--adc-bits": ["4", "8", "6,5"], "--mapper": ["vw-sdk", "im2col", "all"]}
VERBS = {
    "map": ["--model", "--layers", "--array", "--mapper", "--chip", "--cell-bits",
            "--weight-bits", "--format", "--cost", "--schedule"],
    "compare": ["--model", "--array", "--keep", "--methods", "--groups", "--split", "--l-mode",
                "--schedule", "--chip", "--format"],
    "simulate": ["--model", "--array", "--mapper", "--chip", "--cost", "--images", "--seed",
                 "--skip", "--format"],
    "accuracy": ["--model", "--array", "--mapper", "--chip", "--adc-bits", "--cell-bits",
                 "--sign", "--input-bits", "--dac-bits", "--ideal", "--noise", "--read-noise",
                 "--faults", "--images", "--seed", "--slicing", "--adc-range", "--checkpoint",
                 "--data-dir", "--dataset", "--method", "--keep", "--groups",
                 "--finetune-epochs", "--chip-in-loop-epochs", "--format"],
    "accuracy-sweep": ["--model", "--array", "--adc-bits", "--noise", "--images", "--format"],
    "accuracy-study": ["--array", "--keep", "--groups", "--adc-bits", "--format"],
    "train": ["--model", "--epochs", "--seed", "--out", "--dataset", "--batch-size", "--lr",
              "--train-images", "--restart", "--format"],
    "sweep": ["--out", "--model", "--arrays", "--mappers", "--compressions", "--keep",
              "--chips", "--adc-bits", "--cell-bits", "--accuracy", "--images", "--backend",
              "--workers", "--charts"],
    "run": [], "plot": [], "list": [],
}
FLAGS_WITHOUT_VALUE = {"--ideal", "--restart", "--accuracy", "--charts", "--skip"}


@st.composite
def argv(draw) -> list[str]:
    verb = draw(st.sampled_from(sorted(VERBS)))
    args = [verb]
    if verb in ("run", "plot"):
        args.append(draw(st.sampled_from(["default", "nosuch", "x.toml", "", "out"])))
    for _ in range(draw(st.integers(0, 5))):
        flag = draw(st.sampled_from(VERBS[verb] or ["--out", "--bogus"]))
        args.append(flag)
        if flag not in FLAGS_WITHOUT_VALUE:
            good = COMMON.get(flag, [])
            args.append(draw(st.sampled_from(good + TRICKY) | st.text(max_size=8)))
    if verb == "map" and "--layers" not in args and "--model" not in args:
        args += ["--layers", "cnn8"]  # the cheap workload, unless the draw named one
    return args


@examples(150)
@given(args=argv())
def test_fuzz_command_line(args: list[str], tmp_path: Path, monkeypatch, capsys, stubs) -> None:
    assume(not any(a in ("resnet18", "vgg13") for a in args))  # ImageNet models: slow
    monkeypatch.chdir(tmp_path)
    check(run(capsys, *args))


# -- the file readers ------------------------------------------------------------------

_TOKEN = re.compile(r'[A-Za-z0-9_.+\-"]+')


@st.composite
def mutated(draw, text: str) -> bytes:
    """``text`` with a few tokens swapped for tricky ones, lines dropped or doubled, bytes
    spliced in, or cut short."""
    lines = text.splitlines()
    for _ in range(draw(st.integers(1, 3))):
        i = draw(st.integers(0, len(lines) - 1))
        op = draw(st.sampled_from(["token", "token", "token", "drop", "double", "insert"]))
        tokens = list(_TOKEN.finditer(lines[i]))
        if op == "token" and tokens:
            hit = draw(st.sampled_from(tokens))
            new = draw(st.sampled_from(TRICKY) | st.text(max_size=6))
            lines[i] = lines[i][: hit.start()] + new + lines[i][hit.end():]
        elif op == "drop" and len(lines) > 1:
            del lines[i]
        elif op == "double":
            lines.insert(i, lines[i])
        else:
            lines.insert(i, draw(st.text(max_size=20)))
    data = "\n".join(lines).encode("utf-8", "surrogatepass")
    cut = draw(st.sampled_from([None, None, None, len(data) // 2, 7]))
    if cut is not None:
        data = data[:cut]
    if draw(st.integers(0, 9)) == 0:
        data = data[:10] + b"\xff\xfe" + data[10:]
    return data


def _recipe() -> str:
    return ('name = "fuzz"\nout = "o"\ncharts = ["speedup"]\nworkers = 1\n[sweep]\n'
            'models = ["table:cnn8", "t.csv"]\narrays = ["64x64", "128x128"]\n'
            'mappers = ["im2col", "vw-sdk"]\nchips = ["", "default"]\nadc_bits = [8]\n')


READERS = {
    "chip": ((ROOT / "mappings/chips/isaac.toml").read_text(),
             lambda f: ["map", "--layers", "cnn8", "--chip", f]),
    "table": ((ROOT / "mappings/networks/cnn8.csv").read_text(),
              lambda f: ["map", "--layers", f, "--array", "64x64"]),
    "recipe": (_recipe(), lambda f: ["run", f, "--out", "o"]),
}
SUFFIX = {"chip": ".toml", "table": ".csv", "recipe": ".toml"}


@pytest.mark.parametrize("kind", sorted(READERS))
def test_fuzz_text_readers(kind: str, tmp_path: Path, monkeypatch, capsys, stubs) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "t.csv").write_text(READERS["table"][0])
    text, command = READERS[kind]
    path = tmp_path / f"input{SUFFIX[kind]}"

    @examples(40)
    @given(data=mutated(text))
    def one(data: bytes) -> None:
        path.write_bytes(data)
        check(run(capsys, *command(str(path))))

    one()


@pytest.fixture(scope="module")
def results_text(tmp_path_factory) -> str:
    from imcsim.studies.sweep import SweepSpec, sweep

    out = tmp_path_factory.mktemp("sweep")
    sweep(SweepSpec(models=("table:cnn8",), arrays=("64x64", "128x256"),
                    mappers=("im2col", "vw-sdk"), chips=("", "default")), out, workers=1)
    return (out / "results.jsonl").read_text()


def test_fuzz_results_reader(results_text: str, tmp_path: Path, capsys, stubs) -> None:
    path = tmp_path / "results.jsonl"

    @examples(40)
    @given(data=mutated(results_text))
    def one(data: bytes) -> None:
        path.write_bytes(data)
        check(run(capsys, "plot", str(path), "--out", str(tmp_path / "charts")))

    one()


def test_fuzz_record_reader_trusts_only_what_was_written(results_text: str, tmp_path: Path,
                                                          capsys) -> None:
    """Issue 29: whatever a results file becomes (edited values, spliced bytes, doubled
    or cut lines), the reader and ``imcsim verify`` never fail, and a record they trust is
    one that was written — value for value."""
    import json

    from imcsim.studies.results import load_results

    written = [json.loads(line) for line in results_text.splitlines()]
    path = tmp_path / "results.jsonl"

    @examples(60)
    @given(data=mutated(results_text))
    def one(data: bytes) -> None:
        path.write_bytes(data)
        loaded = load_results(path)
        assert all(record in written for record in loaded.records.values())
        result = run(capsys, "verify", str(tmp_path), "--format", "json")
        assert result.code in (0, 1), result.err
        report = result.json()
        lines = data.decode("utf-8", errors="replace").split("\n")
        bad = {f["line"] for f in report["findings"]}
        for number, line in enumerate(lines, start=1):
            if line.strip() and number not in bad:  # verify says ok: it was written
                assert json.loads(line) in written, line
        assert report["ok"] == (result.code == 0) == all(
            f["status"] == "torn" for f in report["findings"])

    one()


TENSORS = st.sampled_from([torch.zeros(2), torch.tensor([float("nan")]), torch.ones(16, 3, 3, 3),
                           torch.tensor([1, 2]), torch.tensor(float("inf"))])
VALUES = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(-(2**70), 2**70), st.floats(),
              st.text(max_size=8), TENSORS),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner,
                                                                 max_size=3),
    max_leaves=6,
)


@st.composite
def checkpoints(draw) -> object:
    data: dict = draw(st.dictionaries(
        st.sampled_from(["format", "model", "num_classes", "state_dict", "dataset", "x"]),
        VALUES, max_size=4))
    if draw(st.booleans()):
        data["format"] = "imcsim-checkpoint"
    return data if draw(st.integers(0, 4)) else draw(VALUES)


def test_fuzz_checkpoint_reader(tmp_path: Path, capsys, chip_stub) -> None:
    from imcsim.zoo.checkpoints import checkpoint_path

    shipped = checkpoint_path("resnet20").read_bytes()
    path = tmp_path / "w.pt"

    @examples(40)
    @given(data=checkpoints(), cut=st.sampled_from([None, None, None, 10, 2000, -100]))
    def one(data: object, cut: int | None) -> None:
        if cut is None:
            torch.save(data, path)
        else:
            path.write_bytes(shipped[:cut])
        check(run(capsys, "accuracy", "--checkpoint", str(path), "--images", "2", "--ideal"))

    one()
