"""``imcsim simulate``: replay a model's mapping on real activations (cycle simulator)."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from imcsim.cli import app
from imcsim.cli.common import (
    ArrayOpt,
    CellBitsOpt,
    DeviceOpt,
    PlainFormat,
    PlainFormatOpt,
    WeightBitsOpt,
    emit,
    run_device,
)
from imcsim.cli.options import workload_options
from imcsim.errors import ConfigError
from imcsim.hardware import build_chip
from imcsim.report import format_table

__all__ = ["SIM_COLUMNS", "simulate_command"]

SIM_COLUMNS = (
    "name", "layer", "window", "tiles", "analytic_cycles", "cycles", "skip_saving",
    "zero_inputs", "energy_pj", "analytic_energy_pj", "latency_ns",
)


@app.command("simulate")
@workload_options(default_model=None)
def simulate_command(
    workload: Any,
    array: ArrayOpt = None,
    mapper: Annotated[str, typer.Option("--mapper", help="Mapper name (vw-sdk, im2col, best...).")] = "vw-sdk",
    chip: Annotated[
        str, typer.Option("--chip", help="Chip preset or TOML: array bits and precisions.")
    ] = "default",
    cost: Annotated[
        str, typer.Option("--cost", help="Cost preset or TOML whose [cost] section prices events.")
    ] = "isaac",
    images: Annotated[int, typer.Option("--images", "-n", help="Images to simulate.")] = 1,
    skip: Annotated[
        bool, typer.Option("--skip/--no-skip", help="Price energy/latency with all-zero bit-slices skipped.")
    ] = True,
    seed: Annotated[int, typer.Option("--seed", help="Which test images are drawn.")] = 0,
    cell_bits: CellBitsOpt = None,
    weight_bits: WeightBitsOpt = None,
    fmt: PlainFormatOpt = PlainFormat.table,
    device: DeviceOpt = "cpu",
) -> None:
    """Run N images through a model and count the cycles, rows, conversions and energy
    its mapping really spends (per image, averaged over the images)."""
    run_device(device)
    from imcsim.cost import with_cost
    from imcsim.network import map_network
    from imcsim.nn.extract import extract_layers
    from imcsim.nn.simulate import simulate_network

    if images < 1:
        raise ConfigError(f"--images must be >= 1 (got {images})")
    if workload is None:
        raise ConfigError("give --model (a built-in, FILE.py:FACTORY, transformers:NAME, ...)")
    chip_cfg = with_cost(build_chip(chip, array, cell_bits=cell_bits, weight_bits=weight_bits), cost)
    model, net, weights, inputs, described = _inputs(workload, images, seed)
    extraction = extract_layers(net, inputs[:1])
    report = map_network(extraction.layers, mapper, chip_cfg, model=model, unmapped=extraction.unmapped)
    sim = simulate_network(net, report, inputs, chip_cfg, skip_zero_slices=skip)
    data = {**sim.to_dict(), "inputs": f"{images} {described}", "weights": weights}
    title = (
        f"{sim.title}, costed with {cost}\ninputs: {data['inputs']}; weights: {weights}; "
        f"per image, mean of {images}; cycles = bit-slice stages "
        f"({chip_cfg.precision.input_slices} per computing cycle)"
    )
    emit(data, format_table(sim.rows(), SIM_COLUMNS, sim.total(), title=title), fmt)


def _inputs(workload: Any, images: int, seed: int) -> tuple[str, Any, str, Any, str]:
    """(name, model, weights, ``images`` inputs, their description): a built-in's test
    images, or the workload's test data (its example input without ``--data``)."""
    import torch

    if workload.plain and workload.data is None:
        from imcsim.zoo.checkpoints import load_model, model_inputs

        net, weights = load_model(workload.model)
        inputs, _labels, described = model_inputs(workload.model, images, seed=seed)
        return workload.model, net, weights, inputs, described
    from imcsim.zoo.workload import load_workload

    loaded = load_workload(workload)
    if not isinstance(loaded.example, torch.Tensor):
        raise ConfigError("simulate feeds one input tensor; this model takes "
                          f"{type(loaded.example).__name__} inputs")
    if loaded.data is None:
        if images != 1:
            raise ConfigError("--images > 1 needs --data (without it, the example input runs)")
        return loaded.name, loaded.model, loaded.weights, loaded.example[:1], "example input"
    test = loaded.data.test_images
    if images > len(test):
        raise ConfigError(f"--images {images}: the test split of {loaded.data.name} holds {len(test)}")
    order = torch.randperm(len(test), generator=torch.Generator().manual_seed(seed))[:images]
    return loaded.name, loaded.model, loaded.weights, test[order], f"test examples of {loaded.data.name}"
