"""Issue 15, one test per class of fault: interrupts, stale resumes, concurrent runs, output
paths, strict configs, silently wrong results, tracebacks, size limits, messages.

Every test here drives the public CLI or API the way a user would and fails on the code
before the fix.  New names are imported inside the tests, so that each test fails on its
own behaviour rather than at collection.
"""

from __future__ import annotations

import importlib
import json
import os
import subprocess
import sys
import threading
from pathlib import Path

import pytest
import torch

from imcsim import ArrayConfig, ConfigError, LayerShape, load_chip, map_network
from imcsim.tables import parse_layer_table

from cli_helpers import run

ROOT = Path(__file__).parents[1]
ISAAC = (ROOT / "mappings/chips/isaac.toml").read_text()
TABLE = "# a comment line\nname,in_channels,out_channels,kernel,input\n# another\nc1,3,16,3,16\n"


def one_error_line(result, needle: str = "") -> str:
    """The single stderr line of a failed run; it names ``needle``."""
    lines = result.err.strip().splitlines()
    assert result.code == 2, (result.code, result.out[-300:], result.err[-600:])
    assert len(lines) == 1 and lines[0].startswith("imcsim: error:"), result.err
    assert needle in lines[0], lines[0]
    return lines[0]


def sweep_args(out: Path, *more: str) -> list[str]:
    return ["sweep", "--model", "t.csv", "--arrays", "64x64,128x128", "--mappers",
            "im2col,vw-sdk", "--workers", "1", "--out", str(out), *more]


# -- 1. interrupts ---------------------------------------------------------------------


def test_ctrl_c_exits_130_with_one_line(capsys, monkeypatch) -> None:
    import imcsim.cli.map_cmd as map_cmd

    def interrupted(*_args, **_kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(map_cmd, "load_workload", interrupted)
    result = run(capsys, "map", "--layers", "cnn8", "--array", "64x64")
    assert result.code == 130
    lines = result.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("imcsim: interrupted"), result.err


def test_interrupted_training_saves_a_resumable_state(tmp_path: Path, monkeypatch) -> None:
    train_module = importlib.import_module("imcsim.train.loop")

    images = torch.randn(64, 1, 8, 8, generator=torch.Generator().manual_seed(0))
    labels = torch.arange(64) % 2
    net = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(64, 2))
    config = train_module.TrainConfig(epochs=2, batch_size=8, warmup_steps=0,
                                      checkpoint_every_steps=1000)
    state = tmp_path / "w.pt.state"
    calls = []

    def stop_at_step_3(event) -> None:
        calls.append(event.step)
        if event.step == 3:
            raise KeyboardInterrupt  # as Ctrl-C between two steps

    with pytest.raises(KeyboardInterrupt):
        train_module.train(net, images, labels, config, state_path=state, progress=stop_at_step_3)
    assert state.exists(), "Ctrl-C must leave a resumable state"
    result = train_module.train(net, images, labels, config, state_path=state)
    assert result.resumed_from_step == 3 and result.steps == 16


# -- 2. resume never trusts stale or invalid records ----------------------------------


@pytest.mark.parametrize("edit", ["table", "chip"])
def test_edited_inputs_are_recomputed(tmp_path: Path, capsys, monkeypatch, edit: str) -> None:
    monkeypatch.chdir(tmp_path)
    Path("t.csv").write_text(TABLE)
    Path("c.toml").write_text(ISAAC)
    assert run(capsys, *sweep_args(tmp_path / "o", "--chips", "c.toml")).code == 0
    if edit == "table":
        Path("t.csv").write_text(TABLE.replace("3,16,3,16", "3,64,3,16"))
    else:
        Path("c.toml").write_text(ISAAC.replace("cell_bits = 2", "cell_bits = 4"))
    assert run(capsys, *sweep_args(tmp_path / "o", "--chips", "c.toml")).code == 0
    from imcsim.studies.sweep import read_results

    records = [r for r in read_results(tmp_path / "o" / "results.jsonl")]
    latest = {(r["array"], r["mapper"]): r for r in records}
    chip = load_chip("c.toml").array.model_copy(update={"rows": 64, "cols": 64})
    fresh = map_network(parse_layer_table(Path("t.csv").read_text()), "vw-sdk", chip)
    assert latest[("64x64", "vw-sdk")]["cycles"] == fresh.cycles


def test_hand_edited_and_misshapen_records_are_not_trusted(tmp_path: Path, capsys,
                                                         monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    Path("t.csv").write_text(TABLE)
    out = tmp_path / "o"
    assert run(capsys, *sweep_args(out)).code == 0
    path = out / "results.jsonl"
    lines = path.read_text().splitlines()
    record = json.loads(lines[0])
    record["cycles"] = -5
    path.write_text("\n".join([json.dumps(record), *lines[1:], "[1, 2]", '{"model": 3}']) + "\n")
    again = run(capsys, *sweep_args(out))
    assert again.code == 0, again.err
    notices = [ln for ln in again.err.splitlines() if ln.startswith("imcsim: notice:")]
    assert any("cycles" in ln for ln in notices) and len(notices) == 3, again.err
    assert "-5" not in again.out
    summary = [ln.split() for ln in again.out.splitlines() if ln.startswith("t ")]
    assert all(int(cells[6].replace(",", "")) > 0 for cells in summary)


# -- 3. concurrent runs --------------------------------------------------------------


def test_second_sweep_into_a_busy_folder_fails_at_once(tmp_path: Path, capsys,
                                                       monkeypatch) -> None:
    import imcsim.studies.executors as executors

    monkeypatch.chdir(tmp_path)
    Path("t.csv").write_text(TABLE)
    started, release = threading.Event(), threading.Event()
    real = executors._evaluate

    def slow(point):
        started.set()
        release.wait(30)
        return real(point)

    monkeypatch.setattr(executors, "_evaluate", slow)
    from imcsim.studies.sweep import SweepSpec, sweep

    spec = SweepSpec(models=("t.csv",), arrays=("64x64",), mappers=("im2col",))
    first = threading.Thread(target=sweep, args=(spec, tmp_path / "o"), kwargs={"workers": 1})
    first.start()
    try:
        assert started.wait(30)
        second = run(capsys, *sweep_args(tmp_path / "o"))
    finally:
        release.set()
        first.join()
    one_error_line(second, "in use by another imcsim run")
    lines = (tmp_path / "o" / "results.jsonl").read_text().splitlines()
    assert len(lines) == 1


# -- 4. output paths checked before any work -------------------------------------------


@pytest.mark.parametrize("target", ["folder", "below-file", "empty", "proc"])
def test_train_checks_out_before_training(tmp_path: Path, capsys, monkeypatch,
                                          target: str) -> None:
    train_module = importlib.import_module("imcsim.train.loop")

    (tmp_path / "folder").mkdir()
    (tmp_path / "file").write_text("x")
    out = {"folder": str(tmp_path / "folder"), "below-file": str(tmp_path / "file" / "w.pt"),
           "empty": "", "proc": "/proc/imcsim-w.pt"}[target]
    trained = []
    monkeypatch.setattr(train_module, "train", lambda *a, **k: trained.append(1))
    result = run(capsys, "train", "--epochs", "1", "--train-images", "16", "--out", out)
    one_error_line(result, "--out")
    assert not trained, "training ran before the output path was checked"


def test_failed_checkpoint_write_keeps_the_training_state(tmp_path: Path, capsys,
                                                         monkeypatch) -> None:
    import imcsim.zoo.checkpoints as zoo

    train_module = importlib.import_module("imcsim.train.loop")
    monkeypatch.setattr(train_module, "evaluate", lambda *_a, **_k: 0.5)  # skip the test split

    def disk_full(*_args, **_kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(zoo, "save_checkpoint", disk_full)
    out = tmp_path / "w.pt"
    result = run(capsys, "train", "--epochs", "1", "--train-images", "32", "--batch-size", "16",
                 "--out", str(out))
    assert result.code == 2 and "Traceback" not in result.err  # after the finished bar:
    assert result.err.strip().splitlines()[-1] == "imcsim: error: No space left on device"
    assert (tmp_path / "w.pt.state").exists(), "the trained state was thrown away"


@pytest.mark.parametrize("out", ["file", ""])
def test_sweep_and_recipe_outputs_are_checked(tmp_path: Path, capsys, monkeypatch,
                                              out: str) -> None:
    monkeypatch.chdir(tmp_path)
    Path("file").write_text("x")
    Path("t.csv").write_text(TABLE)
    one_error_line(run(capsys, "sweep", "--model", "t.csv", "--arrays", "64x64", "--out", out),
                   "--out")
    Path("r.toml").write_text(f'name = "r"\nout = "{out}"\n[sweep]\nmodels = ["t.csv"]\n'
                              'arrays = ["64x64"]\nmappers = ["im2col"]\n')
    one_error_line(run(capsys, "run", "r.toml"), "out")
    assert not Path("results.jsonl").exists()


# -- 5. strict configs -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("old", "new", "field"),
    [
        ("rows = 128", "rows = true", "rows"),
        ("rows = 128", 'rows = "128"', "rows"),
        ("rows = 128", "rows = 128.0", "rows"),
        ("energy_pj = 1.5625", "energy_pj = inf", "energy_pj"),
        ("area_um2 = 1200.0", "area_um2 = inf", "area_um2"),
        ("adc_bits = 8", "adc_bits = 64", "adc_bits"),
        ("adc_bits = 8", "adc_bits = 1000", "adc_bits"),
        ("weight_bits = 16", "weight_bits = 64", "weight_bits"),
        ("read_ns = 100.0", "read_ns = 1e300", "read_ns"),
    ],
)
def test_chip_files_are_strict_and_in_range(tmp_path: Path, capsys, old: str, new: str,
                                            field: str) -> None:
    chip = tmp_path / "c.toml"
    chip.write_text(ISAAC.replace(old, new, 1))
    one_error_line(run(capsys, "map", "--layers", "cnn8", "--chip", str(chip)), field)


@pytest.mark.parametrize(
    "build",
    [
        lambda: LayerShape.conv2d(3, 8, 3.9, 8),
        lambda: LayerShape.conv2d(3, 8, True, 8),
        lambda: ArrayConfig(rows=True, cols=128),
        lambda: ArrayConfig(rows=128, cols=128).model_copy(update={"rows": 0}),
        lambda: ArrayConfig(rows=128, cols=128).model_copy(update={"cell_bits": 4}),
        lambda: LayerShape.conv2d(3, 8, 3, 8).model_copy(update={"kernel_size": (9, 9)}),
    ],
)
def test_api_is_strict_and_validates_copies(build) -> None:
    with pytest.raises(ConfigError):
        build()


def test_unicode_digits_are_not_array_sizes(capsys) -> None:
    one_error_line(run(capsys, "map", "--layers", "cnn8", "--array", "１２８x１２８"), "１２８")


# -- 6. silently wrong results -----------------------------------------------------------


def test_nan_weights_are_refused_with_the_layer_named(tmp_path: Path, capsys) -> None:
    from imcsim.zoo.checkpoints import checkpoint_path

    data = torch.load(checkpoint_path("resnet20"), weights_only=True)
    data["state_dict"]["layer1.0.conv1.weight"][0, 0, 0, 0] = float("nan")
    torch.save(data, tmp_path / "nan.pt")
    result = run(capsys, "accuracy", "--checkpoint", str(tmp_path / "nan.pt"), "--images", "2",
                 "--ideal")
    one_error_line(result, "layer1.0.conv1.weight")


def test_train_images_is_a_stratified_subset(tmp_path: Path, capsys, monkeypatch) -> None:
    train_module = importlib.import_module("imcsim.train.loop")
    monkeypatch.chdir(tmp_path)

    seen = {}

    def capture(_net, _x, y, *_a, **_k):
        seen["labels"] = y
        raise ConfigError("captured")

    monkeypatch.setattr(train_module, "train", capture)
    run(capsys, "train", "--train-images", "250", "--epochs", "1")
    counts = torch.bincount(seen["labels"], minlength=10)
    assert counts.min() >= 24 and counts.max() <= 26, counts  # 25 per digit, not all zeros


@pytest.mark.parametrize(
    ("args", "culprit"),
    [
        (["compare", "-m", "resnet20", "--array", "64x64", "--methods", "group-low-rank-sdk",
          "--groups", "7"], "groups=7"),
        (["compare", "-m", "resnet20", "--array", "64x64", "--methods", "dense-im2col",
          "--groups", "3"], "--groups"),
        (["accuracy", "--images", "2", "--ideal", "--noise", "0.1"], "--noise"),
        (["accuracy", "--images", "2", "--ideal", "--adc-bits", "4"], "--adc-bits"),
        (["accuracy", "--images", "2", "--ideal", "--keep", "0.3"], "--keep"),
        (["map", "--layers", "cnn8", "--array", "64x64", "--mapper", "vw-sdk,,sdk"], "empty item"),
        (["accuracy", "--images", "5000", "--ideal"], "5000"),
    ],
)
def test_ignored_or_contradictory_options_are_refused(capsys, args, culprit) -> None:
    one_error_line(run(capsys, *args), culprit)


def test_keep_with_only_dense_sweeps_is_refused(tmp_path: Path, capsys) -> None:
    result = run(capsys, "sweep", "--model", "table:cnn8", "--arrays", "64x64", "--keep", "0.3",
                 "--out", str(tmp_path / "o"))
    one_error_line(result, "keep")


# -- 7. one-line errors for every file read --------------------------------------------


def _checkpoint(tmp_path: Path, data: object) -> list[str]:
    torch.save(data, tmp_path / "w.pt")
    return ["accuracy", "--checkpoint", str(tmp_path / "w.pt"), "--images", "2", "--ideal"]


FILES = {
    "chip-not-utf8": lambda p: ["map", "--layers", "cnn8", "--chip", _write(p / "c.toml", b"\xff\xfe[array]")],
    "csv-not-utf8": lambda p: ["map", "--layers", _write(p / "t.csv", b"\xffname"), "--array", "8x8"],
    "chip-recursion": lambda p: ["map", "--layers", "cnn8", "--chip", _write(
        p / "c.toml", f'cost_preset = "{p / "c.toml"}"\n[array]\nrows = 8\ncols = 8\n'.encode())],
    "chip-huge-int": lambda p: ["map", "--layers", "cnn8", "--chip", _write(
        p / "c.toml", b"[array]\nrows = 99999999999999999999999999\ncols = 8\n")],
    "csv-superscript": lambda p: ["map", "--layers", _write(
        p / "t.csv", "in_channels,out_channels,kernel,input\n3,6\u00b2,3,8\n".encode()), "--array", "8x8"],
    "checkpoint-no-state": lambda p: _checkpoint(p, {"format": "imcsim-checkpoint", "model": "resnet20"}),
    "checkpoint-wrong-types": lambda p: _checkpoint(p, {"format": "imcsim-checkpoint", "state_dict": {"a": 1}}),
    "checkpoint-classes": lambda p: _checkpoint(p, {"format": "imcsim-checkpoint", "num_classes": "ten",
                                                    "state_dict": {"a": torch.zeros(1)}}),
    "training-state": lambda p: ["train", "--epochs", "1", "--train-images", "16", "--out",
                                 str(p / "w.pt"), *_garbage_state(p)],
}


def _write(path: Path, data: bytes) -> str:
    path.write_bytes(data)
    return str(path)


def _garbage_state(path: Path) -> list[str]:
    (path / "w.pt.state").write_bytes(b"PK\x03\x04 not a zip")
    return []


@pytest.mark.parametrize("case", sorted(FILES))
def test_bad_files_give_one_line(tmp_path: Path, capsys, case: str) -> None:
    result = run(capsys, *FILES[case](tmp_path))
    one_error_line(result)
    assert "Traceback" not in result.err


@pytest.mark.parametrize("bad", ["[1, 2]", '"text"', '{"model": "x"}', '{"key": "k", "cycles": 1}'])
def test_plot_skips_records_it_cannot_trust(tmp_path: Path, capsys, monkeypatch, bad: str) -> None:
    import imcsim.plotting as plotting

    monkeypatch.setattr(plotting, "_save", lambda ax, path: plotting.plt.close(ax.figure) or path)
    monkeypatch.chdir(tmp_path)
    Path("t.csv").write_text(TABLE)
    assert run(capsys, *sweep_args(tmp_path / "o")).code == 0
    with (tmp_path / "o" / "results.jsonl").open("a") as handle:
        handle.write(bad + "\n")
    result = run(capsys, "plot", str(tmp_path / "o"), "--out", str(tmp_path / "charts"))
    assert result.code == 0, result.err
    assert "imcsim: notice:" in result.err and "chart:" in result.out


def test_value_errors_from_library_code_are_one_line(capsys, monkeypatch) -> None:
    import imcsim.cli.map_cmd as map_cmd

    def broken(*_args, **_kwargs):
        raise ValueError("stage 'cost': 3 rows for 4 layers")

    monkeypatch.setattr(map_cmd, "map_network", broken)
    one_error_line(run(capsys, "map", "--layers", "cnn8", "--array", "8x8"), "3 rows")


# -- 8. size limits, checked before anything is expanded -------------------------------


def test_sweep_size_is_checked_from_the_axes() -> None:
    from imcsim.studies.sweep import SweepSpec

    arrays = tuple(f"{r}x{c}" for r in range(1, 101) for c in range(1, 101))  # 10,000
    with pytest.raises(ConfigError, match="points exceed"):
        SweepSpec(models=("table:cnn8",), arrays=arrays, mappers=("im2col", "sdk", "vw-sdk"),
                  adc_bits=tuple(range(1, 17)), cell_bits=(1, 2))


@pytest.mark.parametrize(
    "text",
    ["in_channels,out_channels,kernel,input\n3,64,3,1000000000\n",
     "in_channels,out_channels,kernel,input\n3,9999999,3,8\n",
     "in_channels,out_channels,kernel,input\n" + "3,8,3,8\n" * 10_001],
    ids=["input", "channels", "rows"],
)
def test_layer_tables_have_limits(text: str) -> None:
    with pytest.raises(ConfigError, match="limit|less than or equal"):
        parse_layer_table(text, "t.csv")


# -- 9. messages -------------------------------------------------------------------------


def test_csv_line_numbers_count_comment_lines() -> None:
    text = "# c\nin_channels,out_channels,kernel,input\n# c\n\n3,8,3,8\n# c\n3,x,3,8\n"
    with pytest.raises(ConfigError, match="t.csv line 7: out_channels"):
        parse_layer_table(text, "t.csv")


def test_schedule_is_blamed_for_a_bad_schedule(capsys) -> None:
    one_error_line(run(capsys, "map", "--layers", "cnn8", "--array", "8x8", "--schedule", "bogus"),
                   "--schedule 'bogus'")


def test_recipe_errors_name_the_field_once(tmp_path: Path, capsys) -> None:
    path = tmp_path / "r.toml"
    path.write_text('name = "r"\n[sweep]\nmodels = ["table:cnn8"]\narrays = ["64x"]\n')
    line = one_error_line(run(capsys, "run", str(path), "--out", str(tmp_path / "o")),
                          "sweep.arrays")
    assert line.count("r.toml") == 1 and "Recipe" not in line and "SweepSpec" not in line


def test_missing_recipe_files_are_reported_before_the_sweep(tmp_path: Path, capsys) -> None:
    path = tmp_path / "r.toml"
    path.write_text('name = "r"\n[sweep]\nmodels = ["table:cnn8"]\narrays = ["64x64"]\n'
                    'chips = ["default", "missing.toml"]\n')
    one_error_line(run(capsys, "run", str(path), "--out", str(tmp_path / "o")), "missing.toml")
    assert not (tmp_path / "o" / "results.jsonl").exists()


@pytest.mark.parametrize("verb", ["train", "simulate", "accuracy", "compare"])
def test_csv_is_not_offered_where_it_is_refused(capsys, verb: str) -> None:
    assert "csv" not in run(capsys, verb, "--help").out
    one_error_line(run(capsys, verb, "--format", "csv", "-m", "resnet20"), "csv")


def test_json_key_order_is_deterministic() -> None:
    code = ("import json; from imcsim import load_chip, load_layer_table, map_network, "
            "estimate_network; chip = load_chip('default'); "
            "r = estimate_network(map_network(load_layer_table('cnn8'), 'vw-sdk', chip)); "
            "print(json.dumps(list(r.total())))")
    here = os.environ.get("PYTHONHASHSEED", "")
    other = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                           check=True, env={**os.environ, "PYTHONHASHSEED": "1" if here != "1" else "2"})
    from imcsim import estimate_network, load_layer_table

    chip = load_chip("default")
    report = estimate_network(map_network(load_layer_table("cnn8"), "vw-sdk", chip))
    assert json.loads(other.stdout) == list(report.total())  # another hash seed, same order
