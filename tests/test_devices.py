"""The device option, proven on the CPU (issue 28).

* ``resolve_device`` / ``use_device`` and the CLI's ``--device`` (``auto``; CUDA asked for
  where there is none: one line, exit 2; ``--device cpu`` changes nothing).
* No hidden CPU tensor on the hot path, two ways: (1) every MVM path runs with torch's
  default device set to ``meta``, so any tensor a factory makes without naming its device
  (``torch.zeros(n)``, ``torch.as_tensor(x)``, …) is a meta tensor, which a CPU op refuses
  or turns its result into meta; a dispatch mode records every op output on ``meta`` and
  the result must equal the normal run's, bit for bit.  (2) an explicit ``.cpu()``,
  ``"cpu"`` or ``.numpy()`` in the simulation modules must carry a ``cpu-only`` comment
  saying why (the oneDNN int8 path, seeded CPU generators, the IR-drop solver, hashing).
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import torch
from device_cases import CASES, build, images
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_leaves

from imcsim.errors import ConfigError
from imcsim.nn import mvm, mvm_convs
from imcsim.nn.devices import DEVICE_ENV, current_device, resolve_device, to_device, use_device

ROOT = Path(__file__).resolve().parents[1]
HOT_PATH = ["mvm.py", "mvm_convs.py", "crossbar_conv.py", "crossbar_layers.py", "adc.py",
            "nonideal.py", "device_models.py", "functional.py", "calibration.py",
            "calibration_cache.py"]
NO_CUDA = not torch.cuda.is_available()


class MetaSpy(TorchDispatchMode):
    """Records every op whose output lives on the meta device."""

    def __init__(self) -> None:
        super().__init__()
        self.meta: list[str] = []

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        if any(isinstance(t, torch.Tensor) and t.device.type == "meta" for t in tree_leaves(out)):
            self.meta.append(str(func))
        return out


def test_resolve_device() -> None:
    assert resolve_device("cpu") == torch.device("cpu")
    assert resolve_device(" CPU ") == torch.device("cpu")
    assert resolve_device(torch.device("cpu")) == torch.device("cpu")
    assert resolve_device("auto") == torch.device("cuda" if not NO_CUDA else "cpu")
    assert resolve_device(None) == resolve_device("auto")
    for bad in ("gpu", "cpu:0", "cuda:", "cuda:x", "", "mps"):
        with pytest.raises(ConfigError, match="--device must be cpu, cuda, cuda:N or auto"):
            resolve_device(bad)


@pytest.mark.skipif(not NO_CUDA, reason="CUDA is present here")
def test_cuda_without_cuda_is_a_config_error() -> None:
    for spec in ("cuda", "cuda:0", "cuda:3"):
        with pytest.raises(ConfigError, match=f"--device {spec}: CUDA is not available"):
            resolve_device(spec)


def test_use_device_sets_and_restores_the_run_device(monkeypatch) -> None:
    monkeypatch.delenv(DEVICE_ENV, raising=False)
    assert current_device() == torch.device("cpu")
    with use_device("auto") as device:
        assert current_device() == device
        assert DEVICE_ENV in __import__("os").environ  # inherited by worker processes
    assert DEVICE_ENV not in __import__("os").environ
    nested = {"a": torch.ones(2), "b": [torch.zeros(1), 3]}
    moved = to_device(nested, torch.device("meta"))
    assert moved["a"].is_meta and moved["b"][0].is_meta and moved["b"][1] == 3


@pytest.mark.skipif(not NO_CUDA, reason="CUDA is present here")
@pytest.mark.parametrize("verb", [["accuracy"], ["train"], ["rank-search"], ["accuracy-sweep"],
                                  ["accuracy-study"], ["simulate", "-m", "resnet20"], ["run"]])
def test_cli_device_cuda_without_cuda_is_one_line_exit_2(verb, capsys, monkeypatch) -> None:
    from imcsim.cli import main

    monkeypatch.delenv(DEVICE_ENV, raising=False)
    with pytest.raises(SystemExit) as exc:
        main([*verb, "--device", "cuda"])
    err = capsys.readouterr().err
    assert exc.value.code == 2
    assert err.count("\n") == 1 and err.startswith("imcsim: error: --device cuda: CUDA is not")
    assert DEVICE_ENV not in __import__("os").environ  # restored when the command ends


def test_cli_device_is_restored_after_the_command(capsys, monkeypatch) -> None:
    from imcsim.cli import main

    monkeypatch.delenv(DEVICE_ENV, raising=False)
    with pytest.raises(SystemExit) as exc:  # fails after --device was applied
        main(["accuracy", "--device", "cpu", "--images", "0"])
    assert exc.value.code == 2 and "--device" not in capsys.readouterr().err
    assert DEVICE_ENV not in __import__("os").environ


def test_to_crossbar_device_cpu_is_the_default_and_cuda_is_refused_without_it() -> None:
    case = CASES[0]
    x = images(case)
    assert torch.equal(build(case)(x), build(case, "cpu")(x))
    if NO_CUDA:
        with pytest.raises(ConfigError, match="CUDA is not available"):
            build(case, "cuda")


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_no_hidden_cpu_tensor_on_any_mvm_path(case, monkeypatch) -> None:
    monkeypatch.setattr(mvm, "GROUP_ELEMENTS", case.group_elements or mvm.GROUP_ELEMENTS)
    if not case.int8:
        monkeypatch.setattr(mvm_convs, "int8_available", lambda: False)
    x = images(case)
    want = build(case)(x)
    sim = build(case)  # calibrated (if asked) outside the meta scope: conversion is not hot
    spy = MetaSpy()
    with torch.device("meta"), spy:
        got = sim(x)  # cells, ADC transfer function and every read built in here
    assert spy.meta == [], f"tensors made without a device: {sorted(set(spy.meta))}"
    assert got.device.type == "cpu" and torch.equal(got, want)
    assert sim[0].cells().integer == (case.int8_cells and mvm_convs.int8_available())


@pytest.mark.parametrize("name", ["calibrated-percentile", "calibrated-analytic"])
def test_calibration_makes_no_hidden_cpu_tensor(name) -> None:
    from imcsim.nn.calibration import calibrate
    from imcsim.nn.crossbar import CrossbarConfig

    case = next(c for c in CASES if c.name == name)
    sim = build(case)  # converted and calibrated once, normally
    want = sim[0].adc_full_scale.clone(), sim[0].input_max.clone()
    sim[0].adc_full_scale.zero_()
    x, spy = images(case, 6), MetaSpy()
    with torch.device("meta"), spy:  # the same calibration again: every pass and statistic
        calibrate(sim, x, CrossbarConfig(**case.config))
    assert spy.meta == [], f"tensors made without a device: {sorted(set(spy.meta))}"
    assert torch.equal(sim[0].adc_full_scale, want[0]) and torch.equal(sim[0].input_max, want[1])


def _unmarked_cpu_uses(path: Path) -> list[str]:
    lines = path.read_text().splitlines()
    found = []
    for i, line in enumerate(lines):
        code = re.sub(r"\.type [!=]= [\"']cpu[\"']", "", line.split("#", 1)[0])  # a test only
        if re.search(r"\.cpu\(\)|[\"']cpu[\"']|\.numpy\(\)", code) is None:
            continue
        if "cpu-only" not in line and (i == 0 or "cpu-only" not in lines[i - 1]):
            found.append(f"{path.name}:{i + 1}: {line.strip()}")
    return found


def test_every_explicit_cpu_use_in_the_simulation_says_why() -> None:
    found = [hit for name in HOT_PATH for hit in _unmarked_cpu_uses(ROOT / "imcsim" / "nn" / name)]
    assert found == []


def test_the_cpu_use_check_would_catch_one(tmp_path: Path) -> None:
    bad = tmp_path / "bad.py"
    bad.write_text("y = x.cpu()\nz = torch.zeros(3, device='cpu')  # cpu-only: why\n")
    assert [h.split(":")[1] for h in _unmarked_cpu_uses(bad)] == ["1"]


def _tensors(value, seen: set[int]):
    """Every tensor reachable from ``value`` through attributes, dataclasses and containers."""
    if id(value) in seen:
        return
    seen.add(id(value))
    if isinstance(value, torch.Tensor):
        yield value
    elif isinstance(value, dict):
        for v in value.values():
            yield from _tensors(v, seen)
    elif isinstance(value, (tuple, list)):
        for v in value:
            yield from _tensors(v, seen)
    elif hasattr(value, "__dataclass_fields__"):
        for name in value.__dataclass_fields__:
            yield from _tensors(getattr(value, name), seen)
    elif isinstance(value, torch.nn.Module):
        for v in vars(value).values():
            yield from _tensors(v, seen)


@pytest.mark.parametrize("name", ["int8-offset", "adc-deviation", "calibrated-percentile"])
def test_moving_a_converted_layer_moves_every_tensor_it_holds(name) -> None:
    case = next(c for c in CASES if c.name == name)
    sim = build(case)
    sim(images(case))  # cells, packed weights and the ADC transfer function cached
    layer = sim.to("meta")[0]
    held = list(_tensors(layer, set()))
    assert len(held) > 10 and all(t.is_meta for t in held)  # layout, column map, buffers…
    assert layer._cells_cache is None and layer._converter is None  # rebuilt where it runs


def test_zoo_models_are_built_on_the_run_device(monkeypatch) -> None:
    from imcsim.zoo import models

    monkeypatch.setattr(models, "current_device", lambda: torch.device("meta"))
    assert all(p.is_meta for p in models.build_model("resnet20").parameters())
