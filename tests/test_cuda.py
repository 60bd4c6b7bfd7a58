"""CPU vs CUDA (issue 28): every MVM path, calibration, one fine-tuning step and NCCL
data-parallel training.  Marked ``cuda`` (``pytest -m cuda``) and skipped without CUDA.

What must agree bit for bit is what computes integer partial sums and sends them through an
ADC (every ``Case`` with ``exact=True``): the integer sums are below 2^24, hence exact in
float32 in any summation order, with TF32 off (``imcsim.nn.devices.exact_float32``), and
every seeded draw comes from the same CPU generator.  The rest (the ideal chip, non-integer
cells, read noise, float statistics) agrees within a float tolerance: see docs/guide/gpu.md.
"""

from __future__ import annotations

import pytest
import torch
from device_cases import CASES, build, images, setup
from test_crossbar import reference
from torch import nn

from imcsim.nn import mvm
from imcsim.nn.crossbar import to_crossbar
from imcsim.nn.devices import resolve_device

pytestmark = [pytest.mark.cuda,
              pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")]


def _close(got: torch.Tensor, want: torch.Tensor, rel: float) -> bool:
    """Every element within ``rel`` of the largest |value|."""
    return bool((got - want).abs().max() <= rel * want.abs().max().clamp(min=1e-12))


def test_auto_picks_cuda() -> None:
    assert resolve_device("auto").type == "cuda"


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_every_mvm_path_cuda_equals_cpu(case, monkeypatch) -> None:
    monkeypatch.setattr(mvm, "GROUP_ELEMENTS", case.group_elements or mvm.GROUP_ELEMENTS)
    x = images(case)
    want = build(case)(x)
    sim = build(case, "cuda")
    got = sim(x.cuda())
    assert got.device.type == "cuda" and not sim[0].cells().integer  # float path on CUDA
    if case.exact:
        assert torch.equal(got.cpu(), want)
    elif case.name == "read-noise":  # same draws; a sum at an ADC threshold may flip a code
        assert float((got.cpu() - want).abs().mean()) <= 1e-2 * float(want.abs().mean())
    else:
        assert _close(got.cpu(), want, 1e-4)


@pytest.mark.parametrize("name", ["int8-offset", "differential", "unsliced", "grouped-sdk"])
def test_cuda_matches_the_tile_by_tile_reference(name) -> None:
    case = next(c for c in CASES if c.name == name)
    layer, report, chip, config = setup(case)
    layer, x = layer.double(), images(case).double()
    want = reference(layer, report.mappings[0], chip, config, x)
    got = to_crossbar(nn.Sequential(layer), report, config, device="cuda")(x.cuda())
    assert torch.allclose(got.cpu(), want, atol=1e-9, rtol=1e-9)


@pytest.mark.parametrize("name", ["calibrated-percentile", "calibrated-analytic"])
def test_calibration_cuda_equals_cpu(name) -> None:
    case = next(c for c in CASES if c.name == name)
    cpu, gpu = build(case)[0], build(case, "cuda")[0]
    if case.exact:  # histograms of integer partial sums
        assert torch.equal(gpu.adc_full_scale.cpu(), cpu.adc_full_scale)
    else:  # moments of the input slices in float64
        assert _close(gpu.adc_full_scale.cpu(), cpu.adc_full_scale, 1e-9)
    assert torch.equal(gpu.input_max.cpu(), cpu.input_max)


def _finetuned(device: str, parallel=None, crossbar: bool = True) -> nn.Module:
    """One SGD step of the case's layer (crossbar, or the float layer) + a flatten."""
    from imcsim.train.loop import TrainConfig, finetune

    case = CASES[0]
    first = build(case, device) if crossbar else nn.Sequential(setup(case)[0]).to(device)
    sim = nn.Sequential(first, nn.Flatten())
    x = images(case, 8)
    labels = torch.arange(8) * 7
    config = TrainConfig(epochs=1, batch_size=8, lr=0.01, warmup_steps=0, shift_px=0)
    finetune(sim, x, labels, config, parallel=parallel)
    return sim


def test_one_finetuning_step_cuda_equals_cpu() -> None:
    cpu, gpu = _finetuned("cpu"), _finetuned("cuda")
    assert gpu[0][0].weight.device.type == "cuda"
    assert _close(gpu[0][0].weight.detach().cpu(), cpu[0][0].weight.detach(), 1e-5)


def test_data_parallel_on_cuda_takes_nccl(monkeypatch) -> None:
    import torch.distributed as dist

    from imcsim.train.distributed import DistributedConfig
    from imcsim.train.grad_compression import GradCompression

    seen, real = [], dist.init_process_group

    def spy(backend, *args, **kwargs):
        seen.append(backend)
        return real(backend, *args, **kwargs)

    monkeypatch.setattr(dist, "init_process_group", spy)
    # one in-process worker through the hook path (PowerSGD, unchanged); a float model:
    # chip-in-the-loop fine-tuning is single-process (DDP cannot broadcast bool buffers)
    parallel = DistributedConfig(workers=1, compression=GradCompression(method="powersgd", rank=2))
    trained = _finetuned("cuda", parallel, crossbar=False)
    assert seen == ["nccl"]
    assert trained[0][0].weight.device.type == "cuda"
