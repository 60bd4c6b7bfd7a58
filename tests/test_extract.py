"""The extractor sees what torch runs; the core imports without torch."""

from __future__ import annotations

import math
import subprocess
import sys

import pytest
import torch
from torch import nn

from imcsim.nn.extract import extract_layers
from imcsim.zoo.models import MODELS, build_model, example_input


def real_output_shapes(model: nn.Module, x: torch.Tensor) -> dict[str, tuple[int, ...]]:
    shapes: dict[str, tuple[int, ...]] = {}

    def record(name: str):
        def hook(_mod: nn.Module, _inp: object, out: torch.Tensor) -> None:
            shapes.setdefault(name, tuple(out.shape))
        return hook

    handles = [
        m.register_forward_hook(record(n))
        for n, m in model.named_modules() if isinstance(m, (nn.Conv2d, nn.Linear))
    ]
    try:
        with torch.no_grad():
            model.eval()(x)
    finally:
        for h in handles:
            h.remove()
    return shapes


@pytest.mark.parametrize("name", list(MODELS))
def test_extracted_shapes_equal_torch_output_shapes(name: str) -> None:
    model, x = build_model(name), example_input(name)
    real = real_output_shapes(model, x)
    layers = [layer for layer in extract_layers(model, x).layers if layer.kind != "matmul"]
    assert [layer.name for layer in layers] == list(real)
    for layer in layers:
        shape = real[layer.name]
        if layer.kind == "conv2d":
            assert shape == (1, layer.out_channels, *layer.output_size), layer.name
        else:
            assert shape[-1] == layer.out_channels, layer.name
            assert layer.input_size == (1, math.prod(shape[1:-1])), layer.name
    assert not any(True for m in model.modules() if m._forward_hooks)


def test_unmappable_modules_are_listed_and_hooks_removed_on_error() -> None:
    class Odd(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.conv3d = nn.Conv3d(1, 2, 3)
            self.conv = nn.Conv2d(1, 4, 3, padding=1)
            self.bn = nn.BatchNorm2d(4)
            self.bilinear = nn.Bilinear(5, 5, 2)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            y = self.bn(self.conv(x))
            z = self.conv3d(y[:, :1].unsqueeze(2).expand(-1, -1, 3, -1, -1))
            return self.bilinear(z.flatten(1)[:, :5], z.flatten(1)[:, :5])

    model = Odd().train()
    extraction = extract_layers(model, torch.zeros(1, 1, 5, 5))
    assert [layer.name for layer in extraction.layers] == ["conv"]
    assert extraction.unmapped == (
        "conv3d: 3-d convolution has no crossbar mapping (486 MACs)",  # 2·27 taps · 1·3·3 outputs
        "bilinear: Bilinear has weights but ran no multiply-accumulate imcsim can see",
    )
    assert extraction.coverage.unmapped_macs == 486 and not extraction.coverage.complete
    assert model.training  # mode restored
    with pytest.raises(RuntimeError):
        extract_layers(model, torch.zeros(1, 3, 5, 5))  # wrong channel count
    assert not any(m._forward_hooks or m._forward_pre_hooks for m in model.modules())
    assert torch.backends.mha.get_fastpath_enabled()


def test_shared_module_called_twice_is_two_layers_and_pruned_weights_give_a_mask() -> None:
    conv = nn.Conv2d(2, 2, 3, padding=1, bias=False)
    with torch.no_grad():
        conv.weight[0] = 0
    model = nn.Sequential(conv, nn.ReLU(), conv)
    layers = extract_layers(model, torch.zeros(1, 2, 6, 6)).layers
    assert [layer.name for layer in layers] == ["0", "0#2"]
    mask = layers[0].nonzero_mask()
    assert mask is not None and not mask[0].any() and mask[1].all()


def test_import_imcsim_works_without_torch(tmp_path) -> None:
    blocker = tmp_path / "sitecustomize.py"
    blocker.write_text(
        "import sys\n"
        "class Block:\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name == 'torch' or name.startswith('torch.'):\n"
        "            raise ImportError('torch blocked')\n"
        "sys.meta_path.insert(0, Block())\n"
    )
    code = (
        "import imcsim, sys\n"
        "from imcsim import ArrayConfig, LayerShape, get_mapper, load_layer_table, map_network\n"
        "r = map_network(load_layer_table('vgg13'), 'vw-sdk', ArrayConfig(rows=512, cols=512))\n"
        "assert r.cycles > 0 and 'torch' not in sys.modules\n"
        "print('ok')\n"
    )
    env = {"PYTHONPATH": str(tmp_path), "PATH": "/usr/bin:/bin"}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    assert out.stdout.strip() == "ok", out.stderr
