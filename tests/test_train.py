"""Training, evaluation, fine-tuning and checkpoints: seeded, resumable, masks kept."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from torch import nn
from toydata import toy_data

from imcsim.errors import ConfigError
from imcsim.train.loop import TrainConfig, evaluate, finetune, lr_at, shift_batch, train
from imcsim.zoo.checkpoints import (
    checkpoint_path,
    load_checkpoint,
    load_model,
    read_checkpoint,
    round_to_half,
    save_checkpoint,
)
from imcsim.zoo.models import build_model


def tiny_net(seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(2),
                         nn.Flatten(), nn.Linear(16, 2))


IMAGES = 96
"""Toy images per training test (``toydata.toy_data``)."""


FAST = TrainConfig(epochs=5, batch_size=16, lr=0.1, warmup_steps=2, shift_px=1,
                   checkpoint_every_steps=4)


def test_training_learns_and_is_seeded() -> None:
    x, y = toy_data(IMAGES)
    before = evaluate(tiny_net(), x, y)
    a, b = tiny_net(), tiny_net()
    train(a, x, y, FAST)
    train(b, x, y, FAST)
    assert evaluate(a, x, y) > max(before, 0.9)
    assert all(torch.equal(p, q) for p, q in zip(a.state_dict().values(), b.state_dict().values()))


def test_killed_run_resumes_to_the_same_weights(tmp_path: Path) -> None:
    x, y = toy_data(IMAGES)
    whole = tiny_net()
    train(whole, x, y, FAST)
    state = tmp_path / "run.state"

    def kill(event) -> None:
        if event.step == 10:
            raise KeyboardInterrupt

    killed = tiny_net()
    with pytest.raises(KeyboardInterrupt):
        train(killed, x, y, FAST, state_path=state, progress=kill)
    assert state.exists()
    resumed = tiny_net(seed=99)  # the state file, not the init, decides the weights
    result = train(resumed, x, y, FAST, state_path=state)
    assert result.resumed_from_step == 10  # the interrupt itself saved the state
    assert not state.exists()
    for p, q in zip(whole.state_dict().values(), resumed.state_dict().values()):
        assert torch.allclose(p, q, atol=1e-6)


def test_state_written_with_other_settings_is_refused(tmp_path: Path) -> None:
    x, y = toy_data(IMAGES)
    state = tmp_path / "run.state"
    with pytest.raises(KeyboardInterrupt):
        train(tiny_net(), x, y, FAST, state_path=state,
              progress=lambda e: (_ for _ in ()).throw(KeyboardInterrupt) if e.step == 5 else None)
    other = FAST.model_copy(update={"lr": 0.2})
    with pytest.raises(ConfigError, match="other settings"):
        train(tiny_net(), x, y, other, state_path=state)


def test_finetune_keeps_pruned_zeros_and_prune_masks() -> None:
    from imcsim.nn.compress import prune

    x, y = toy_data(IMAGES)
    plain = tiny_net()
    with torch.no_grad():
        plain[0].weight[:2] = 0
    finetune(plain, x, y, FAST)
    assert plain[0].weight[:2].abs().sum() == 0 and plain[0].weight[2:].abs().sum() > 0
    pruned = prune(tiny_net(), "unstructured", 0.5).model
    mask = pruned[0].weight_mask.clone()
    finetune(pruned, x, y, FAST)
    assert torch.equal(pruned[0].weight != 0, mask.bool() & (pruned[0].weight != 0))
    assert int((pruned[0].weight == 0).sum()) >= int((mask == 0).sum())


def test_finetune_low_rank_factors_train() -> None:
    from imcsim.nn.compress import RankRule, low_rank

    x, y = toy_data(IMAGES)
    model = low_rank(tiny_net(), RankRule(keep=0.6)).model
    r_before = model[0].r.weight.detach().clone()
    finetune(model, x, y, FAST)
    assert not torch.equal(r_before, model[0].r.weight)
    assert evaluate(model, x, y) > 0.8


def test_evaluate_and_schedule_and_shift() -> None:
    x, y = toy_data(40)
    const = nn.Sequential(nn.Flatten(), nn.Linear(64, 2))
    with torch.no_grad():
        const[1].weight.zero_()
        const[1].bias.copy_(torch.tensor([1.0, 0.0]))
    assert evaluate(const, x, y, batch_size=7) == pytest.approx(float((y == 0).float().mean()))
    cfg = TrainConfig(epochs=1, lr=0.4, warmup_steps=4)
    assert lr_at(0, 100, cfg) == pytest.approx(0.1)
    assert lr_at(4, 100, cfg) == pytest.approx(0.4)
    assert lr_at(99, 100, cfg) < 0.001
    gen = torch.Generator().manual_seed(0)
    shifted = shift_batch(x, 2, gen)
    assert shifted.shape == x.shape and not torch.equal(shifted, x)
    assert torch.equal(shift_batch(x, 0, gen), x)


def test_checkpoint_roundtrip_and_wrong_model(tmp_path: Path) -> None:
    model = build_model("resnet20")
    path = save_checkpoint(model, tmp_path / "r.pt", model_name="resnet20", dataset="mnist5k",
                           num_classes=10, float_accuracy=0.5)
    loaded, meta = load_checkpoint("resnet20", path)
    assert meta["float_accuracy"] == 0.5 and meta["model"] == "resnet20"
    rounded = round_to_half(model)
    assert all(torch.equal(a, b) for a, b in zip(rounded.state_dict().values(),
                                                 loaded.state_dict().values()))
    with pytest.raises(ConfigError, match="holds model 'resnet20', not 'vgg-cifar'"):
        load_checkpoint("vgg-cifar", path)
    torch.save(build_model("vgg-cifar").state_dict(), tmp_path / "bare.pt")
    with pytest.raises(ConfigError, match="does not fit model 'resnet20'"):
        load_checkpoint("resnet20", tmp_path / "bare.pt")
    (tmp_path / "junk.pt").write_text("not torch")
    with pytest.raises(ConfigError, match="not a torch weights file"):
        read_checkpoint(tmp_path / "junk.pt")


def test_shipped_checkpoint_is_small_and_trained() -> None:
    path = checkpoint_path("resnet20")
    assert path.exists() and path.stat().st_size < 1_000_000
    meta = read_checkpoint(path)
    assert all(v.dtype != torch.float32 for v in meta["state_dict"].values())
    assert meta["float_accuracy"] > 0.95 and "imcsim train" in meta["command"]
    model, text = load_model("resnet20")
    assert "mnist5k" in text and not model.training


def test_finetune_with_the_chip_in_the_loop_writes_weights_back() -> None:
    from imcsim.hardware import ArrayConfig, ChipConfig, PrecisionConfig
    from imcsim.network import map_network
    from imcsim.nn.compress import prune
    from imcsim.nn.crossbar import CrossbarConfig
    from imcsim.nn.extract import extract_layers
    from imcsim.studies.accuracy import AccuracySpec, Prepared, evaluate_on_chip, finetune_on_chip

    x, y = toy_data(IMAGES)
    model = tiny_net()
    train(model, x, y, FAST)
    model = prune(model, "unstructured", 0.4).model.eval()
    mask = model[0].weight_mask.clone()
    chip = ChipConfig(array=ArrayConfig(rows=16, cols=32, cell_bits=2, weight_bits=4),
                      precision=PrecisionConfig(input_bits=4, dac_bits=2, adc_bits=3))
    report = map_network(extract_layers(model, x[:1]).layers, "pruned-sdk", chip)
    prepared = Prepared(spec=AccuracySpec(chip=chip), model=model, report=report, images=x,
                        labels=y, calibration=x, weights="", data="", float_accuracy=0.0)
    config = CrossbarConfig(slicing="none", adc_range="calibrated")
    before = evaluate_on_chip(prepared, config).accuracy
    tuned = finetune_on_chip(prepared, config, FAST.model_copy(update={"lr": 0.02}), x, y)
    assert tuned.model is not model and not torch.equal(tuned.model[0].weight, model[0].weight)
    assert torch.equal(tuned.model[0].weight_mask, mask)
    assert (tuned.model[0].weight[mask == 0] == 0).all()
    assert evaluate_on_chip(tuned, config).accuracy >= before - 0.05


def test_half_rounding_keeps_nonzero_weights_nonzero(tmp_path: Path) -> None:
    model = tiny_net()
    with torch.no_grad():
        model[0].weight[0, 0, 0, 0] = 1e-9  # underflows float16
        model[0].weight[0, 0, 0, 1] = 0.0
    path = save_checkpoint(model, tmp_path / "t.pt", model_name="tiny", dataset="toy",
                           num_classes=2)
    state = read_checkpoint(path)["state_dict"]
    assert state["0.weight"][0, 0, 0, 0] > 0 and state["0.weight"][0, 0, 0, 1] == 0
    assert int((round_to_half(model)[0].weight == 0).sum()) == 1
