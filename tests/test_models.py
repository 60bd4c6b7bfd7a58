"""Reference models: shapes, parameter counts against the papers, registry errors."""

from __future__ import annotations

import re

import pytest
import torch
from torch import nn

from imcsim.errors import ConfigError
from imcsim.zoo.models import MODELS, ModelSpec, build_model, example_input

# Parameter counts quoted by the papers (for 10 / 1000 classes):
# ResNet-20 0.27M (He et al. 2016, Table 6), WRN-16-4 2.7M (Zagoruyko &
# Komodakis 2016, Table 1), ResNet-18 11.7M (the 11,689,512 of the reference
# implementation; the paper gives only FLOPs), VGG-13 133M (Simonyan &
# Zisserman 2015, Table 2, config B).
PAPER_PARAMS = {
    "resnet20": 0.27e6,
    "wrn16-4": 2.7e6,
    "resnet18": 11.7e6,
    "vgg13": 133e6,
}
CIFAR_MODELS = ["resnet20", "wrn16-4", "vgg-cifar"]
SMALL_MODELS = [*CIFAR_MODELS, "resnet18"]


def n_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def forward(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    with torch.no_grad():
        return model.eval()(x)


@pytest.fixture(scope="module")
def vgg13_model() -> nn.Module:
    return build_model("vgg13")


def test_registry_names_and_specs() -> None:
    assert list(MODELS) == ["resnet20", "wrn16-4", "vgg-cifar", "tiny-vit", "resnet18", "vgg13"]
    for name, spec in MODELS.items():
        assert isinstance(spec, ModelSpec) and spec.name == name
        assert spec.input_size == ((32, 32) if name in [*CIFAR_MODELS, "tiny-vit"] else (224, 224))
        assert spec.num_classes == (10 if name in [*CIFAR_MODELS, "tiny-vit"] else 1000)
        assert re.search(r"\b(19|20)\d\d\)$", spec.description), spec.description


@pytest.mark.parametrize("name", SMALL_MODELS)
def test_forward_shape(name: str) -> None:
    out = forward(build_model(name), example_input(name, batch=2))
    assert out.shape == (2, MODELS[name].num_classes)


def test_vgg13_forward_shape(vgg13_model: nn.Module) -> None:
    out = forward(vgg13_model, example_input("vgg13"))
    assert out.shape == (1, 1000)


@pytest.mark.parametrize("name", sorted(PAPER_PARAMS))
def test_param_counts_match_papers(name: str, vgg13_model: nn.Module) -> None:
    model = vgg13_model if name == "vgg13" else build_model(name)
    assert n_params(model) == pytest.approx(PAPER_PARAMS[name], rel=0.02)


def test_exact_param_counts_of_reference_shapes(vgg13_model: nn.Module) -> None:
    # Same counts as the torchvision reference implementations of these shapes.
    assert n_params(build_model("resnet18")) == 11_689_512
    assert n_params(vgg13_model) == 133_047_848
    # ResNet-20: 269,722 with option-A shortcuts + 2,752 for the two 1x1 conv+BN projections.
    assert n_params(build_model("resnet20")) == 272_474


@pytest.mark.parametrize("name", CIFAR_MODELS)
def test_single_channel_28x28(name: str) -> None:
    model = build_model(name, num_classes=7, in_channels=1)
    x = torch.zeros(3, 1, 28, 28)
    assert forward(model, x).shape == (3, 7)
    assert example_input(name, batch=3, in_channels=1).shape == (3, 1, 32, 32)


@pytest.mark.parametrize("name", SMALL_MODELS)
def test_every_conv_and_linear_runs_once(name: str) -> None:
    model = build_model(name)
    calls: dict[str, int] = {}
    for mod_name, module in model.named_modules():
        if isinstance(module, (nn.Conv2d, nn.Linear)):
            calls[mod_name] = 0
            module.register_forward_hook(
                lambda m, i, o, key=mod_name: calls.__setitem__(key, calls[key] + 1)
            )
    forward(model, example_input(name))
    assert calls and set(calls.values()) == {1}


def test_expected_module_names() -> None:
    r20 = dict(build_model("resnet20").named_modules())
    assert {"conv1", "bn1", "layer1.0.conv1", "layer2.0.shortcut.0", "fc"} <= set(r20)
    assert isinstance(r20["layer1.0.shortcut"], nn.Identity)
    assert isinstance(r20["layer2.0.shortcut.0"], nn.Conv2d)
    assert r20["layer2.0.shortcut.0"].kernel_size == (1, 1)
    wrn = dict(build_model("wrn16-4").named_modules())
    assert isinstance(wrn["layer1.0.shortcut"], nn.Conv2d)  # 16 -> 64 channels
    assert isinstance(wrn["layer1.1.shortcut"], nn.Identity)
    assert wrn["layer3.1.conv2"].out_channels == 256
    r18 = dict(build_model("resnet18").named_modules())
    assert r18["conv1"].kernel_size == (7, 7) and r18["layer4.1.conv2"].out_channels == 512


def test_vgg13_layout(vgg13_model: nn.Module) -> None:
    convs = [m for m in vgg13_model.features if isinstance(m, nn.Conv2d)]
    pools = [m for m in vgg13_model.features if isinstance(m, nn.MaxPool2d)]
    linears = [m for m in vgg13_model.classifier if isinstance(m, nn.Linear)]
    assert len(convs) == 10 and len(pools) == 5
    assert all(c.kernel_size == (3, 3) and c.padding == (1, 1) for c in convs)
    assert [(fc.in_features, fc.out_features) for fc in linears] == [
        (25088, 4096),
        (4096, 4096),
        (4096, 1000),
    ]


def test_conv_init_is_kaiming_fan_out() -> None:
    conv = build_model("resnet20").layer3[0].conv2
    fan_out = conv.out_channels * conv.kernel_size[0] * conv.kernel_size[1]
    assert conv.weight.std().item() == pytest.approx((2.0 / fan_out) ** 0.5, rel=0.1)


def test_build_model_num_classes_override() -> None:
    assert build_model("resnet18", num_classes=10).fc.out_features == 10


def test_unknown_model_raises_config_error() -> None:
    with pytest.raises(
        ConfigError, match="unknown model 'resnet21'.*resnet20, wrn16-4, vgg-cifar, tiny-vit, resnet18"
    ):
        build_model("resnet21")
    with pytest.raises(ConfigError, match="unknown model"):
        example_input("nope")


@pytest.mark.parametrize("kwargs", [{"num_classes": 0}, {"in_channels": -1}, {"num_classes": 2.5}])
def test_bad_sizes_raise_config_error(kwargs: dict) -> None:
    with pytest.raises(ConfigError):
        build_model("resnet20", **kwargs)


def test_build_model_is_deterministic_and_leaves_the_global_generator_alone() -> None:
    state = torch.random.get_rng_state()
    a, b = build_model("resnet20"), build_model("resnet20")
    assert torch.equal(torch.random.get_rng_state(), state)
    assert all(torch.equal(x, y) for x, y in zip(a.state_dict().values(), b.state_dict().values()))
    c = build_model("resnet20", seed=1)
    assert not torch.equal(a.conv1.weight, c.conv1.weight)


def test_tiny_vit_follows_the_paper_shape() -> None:
    """Wu, arXiv 2501.06220: 4×4 patches on 32×32, width 192, 12 heads, MLP ratio 2."""
    model = build_model("tiny-vit")
    assert model.patch.kernel_size == (4, 4) and model.patch.out_channels == 192
    block = model.blocks[0]
    assert block.attn.heads == 12 and block.fc1.out_features == 2 * 192
    assert len(model.blocks) == 4 and model.cls_tokens == 2
    assert forward(model, example_input("tiny-vit", batch=2)).shape == (2, 10)
    assert n_params(model) == 1_212_874
