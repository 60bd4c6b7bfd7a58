"""The chip beyond the arrays: survey ADC, CACTI buffers, interconnect, post-processing,
node scaling, the neurosim-v1.3 preset, the JSON breakdown and the held-out fidelity table."""

from __future__ import annotations

import importlib.util
import math
import sys
from pathlib import Path

import numpy as np
import pytest

from imcsim.cost import ENERGY_GROUPS, analytic_events, estimate
from imcsim.cyclesim import simulate_layer
from imcsim.errors import ConfigError
from imcsim.hardware import load_chip
from imcsim.layers import LayerShape
from imcsim.mappers import get_mapper
from imcsim.nodescale import rescale_chip
from imcsim.techmodels import (
    adc_survey_energy_pj,
    area_scale,
    energy_scale,
    sram_point,
)

from cli_helpers import run

ROOT = Path(__file__).resolve().parents[1]
NEUROSIM = load_chip("neurosim-v1.3")


def test_survey_adc_matches_hwcomponents_adc() -> None:
    # hwcomponents-adc 1.0.21 in a Python 3.12 venv, 22 nm, 1 GS/s (issue 27): 4, 8, 12 bits.
    for bits, pj in ((4, 0.457), (8, 0.847), (12, 65.9)):
        assert adc_survey_energy_pj(bits, 22, 1e9) == pytest.approx(pj, rel=0.005)
    # the survey scales x1.86 from 4 to 8 bits where ISAAC-style 2^bits scales x16
    assert adc_survey_energy_pj(8, 22, 1e9) / adc_survey_energy_pj(4, 22, 1e9) < 2
    with pytest.raises(ConfigError, match="10 GS/s"):
        adc_survey_energy_pj(8, 22, 1e11)


def test_cacti_table_matches_hwcomponents_cacti() -> None:
    # hwcomponents-cacti, SRAM 64 KB at 22 nm with a 64-bit port: 5.67 pJ/read, 0.0586 mm².
    p = sram_point(64, 22, 64)
    assert p.read_pj == pytest.approx(5.67, rel=0.005)
    assert p.area_um2 == pytest.approx(0.0586e6, rel=0.005)
    assert sram_point(48, 22, 64).read_pj < p.read_pj < sram_point(100, 22, 64).read_pj
    with pytest.raises(ConfigError, match="outside the table"):
        sram_point(4096, 22, 64)


def test_stillmaker_baas_scaling() -> None:
    assert energy_scale(32, 32, 0.9) == 1.0 and area_scale(45, 45) == pytest.approx(1.0)
    assert energy_scale(22, 45, 0.85) < 1 < energy_scale(65, 45, 0.85)
    assert area_scale(32, 45) == pytest.approx(0.46)  # the paper's table, row 45 nm
    assert energy_scale(22, 22, 1.1, 0.7) > 1  # higher supply costs more
    with pytest.raises(ConfigError, match="outside the scaling table"):
        energy_scale(3, 22, 0.8)


def _linear(chip, rows=256, outputs=64):
    m = get_mapper("im2col").map(LayerShape.linear(rows, outputs, positions=4), chip.array)
    return m, estimate(m, chip)


def test_neurosim_preset_prices_every_part() -> None:
    m, cost = _linear(NEUROSIM)
    groups = cost.energy_groups_pj
    assert set(groups) == set(ENERGY_GROUPS)
    assert all(groups[g] > 0 for g in ("adc", "array", "buffer", "interconnect", "digital"))
    e = cost.events
    mem, net = NEUROSIM.cost.memory, NEUROSIM.cost.interconnect
    assert cost.energy_breakdown_pj["sram_buffer"] == pytest.approx(
        e.input_bits * sram_point(128, 22, 128).read_pj / 128
        + e.output_bits * sram_point(128, 22, 128).write_pj / 128)
    hops = math.ceil(math.log2(math.ceil(m.tiles / net.arrays_per_tile))) or 1
    assert cost.energy_breakdown_pj["interconnect"] == pytest.approx(
        (e.input_bits + e.output_bits) * hops * net.energy_pj_per_bit_hop)
    assert e.outputs == m.windows * m.outputs
    assert cost.energy_breakdown_pj["postprocess"] == pytest.approx(e.outputs * 0.018)
    assert mem is not None and cost.latency_ns > 0


def test_htree_hops_grow_with_tiles_mesh_differs() -> None:
    net = NEUROSIM.cost.interconnect
    assert [net.hops(n * 64) for n in (1, 2, 4, 47)] == [1, 1, 2, 6]
    mesh = net.model_copy(update={"topology": "mesh"})
    assert mesh.hops(47 * 64) == 7


def test_node_rescaling() -> None:
    same = rescale_chip(NEUROSIM, 22.0)
    assert _linear(same)[1].energy_pj == pytest.approx(_linear(NEUROSIM)[1].energy_pj)
    small, big = rescale_chip(NEUROSIM, 7.0), rescale_chip(NEUROSIM, 65.0)
    for part in ("adc", "buffer", "interconnect", "digital"):
        assert (_linear(small)[1].energy_groups_pj[part] < _linear(NEUROSIM)[1].energy_groups_pj[part]
                < _linear(big)[1].energy_groups_pj[part])
    assert small.cost.cell == NEUROSIM.cost.cell  # device figures are not CMOS-scaled
    assert small.cost.technology.node_nm == 7.0
    with pytest.raises(ConfigError, match="no \\[cost.technology\\]"):
        rescale_chip(load_chip("isaac").model_copy(update={"cost": load_chip("isaac").cost.model_copy(
            update={"technology": None})}), 22.0)


def test_survey_needs_a_node(tmp_path: Path) -> None:
    text = (ROOT / "mappings" / "chips" / "neurosim-v1.3.toml").read_text()
    start = text.index("[cost.technology]")
    cut = text[:start] + text[text.index("[cost.adc]"):]
    (tmp_path / "chip.toml").write_text(cut)
    with pytest.raises(ConfigError, match="survey.*technology"):
        load_chip(tmp_path / "chip.toml")


def test_all_ones_inputs_simulated_equals_analytic() -> None:
    # The cycle simulator prices the same parts: on all-ones inputs (every slice nonzero)
    # its energy equals the analytic model's, buffers, interconnect and digital included.
    layer = LayerShape.conv2d(8, 16, 3, 6, padding=0, name="c")
    m = get_mapper("im2col").map(layer, NEUROSIM.array)
    sim = simulate_layer(m, np.ones((2, 8, 6, 6)), NEUROSIM)
    ana = estimate(m, NEUROSIM)
    assert sim.cost.events == analytic_events(m, NEUROSIM)
    for k, v in ana.energy_breakdown_pj.items():
        assert sim.cost.energy_breakdown_pj[k] == pytest.approx(v), k
    assert sim.cost.energy_groups_pj["interconnect"] > 0
    zeros = simulate_layer(m, np.zeros((1, 8, 6, 6)), NEUROSIM)
    assert zeros.cost.energy_pj < ana.energy_pj


def test_cli_neurosim_breakdown_json(capsys, tmp_path: Path) -> None:
    res = run(capsys, "map", "--layers", str(ROOT / "mappings/networks/vgg8-neurosim.csv"),
              "--chip", "neurosim-v1.3", "--cost", "neurosim-v1.3", "--format", "json")
    assert res.code == 0, res.err
    total = res.json()["total"]
    parts = total["energy_breakdown_pj"]
    assert {"adc", "array", "buffer", "interconnect", "digital"} <= set(parts)
    assert all(parts[k] > 0 for k in ("adc", "array", "buffer", "interconnect", "digital"))
    assert sum(parts.values()) == pytest.approx(total["energy_pj"])
    assert sum(total["energy_components_pj"].values()) == pytest.approx(total["energy_pj"])
    assert total["energy_sram_buffer_pj"] > 0 and total["area_breakdown_um2"]["sram_buffers"] > 0
    # a user's chip file in the same schema
    (tmp_path / "mine.toml").write_text(
        (ROOT / "mappings/chips/neurosim-v1.3.toml").read_text().replace("cols_per_adc = 8",
                                                                         "cols_per_adc = 16"))
    mine = run(capsys, "map", "--layers", str(ROOT / "mappings/networks/vgg8-neurosim.csv"),
               "--cost", str(tmp_path / "mine.toml"), "--format", "json")
    assert mine.code == 0, mine.err
    assert mine.json()["total"]["latency_ns"] > total["latency_ns"]
    node = run(capsys, "map", "--layers", str(ROOT / "mappings/networks/vgg8-neurosim.csv"),
               "--cost", "neurosim-v1.3", "--node", "7", "--format", "json")
    assert node.json()["total"]["energy_pj"] < total["energy_pj"]
    bad = run(capsys, "map", "--layers", "resnet18", "--cost", "isaac", "--node", "3")
    assert bad.code == 2 and "3" in bad.err and "Traceback" not in bad.err
    nocost = run(capsys, "map", "--layers", "resnet18", "--array", "128x128", "--node", "22")
    assert nocost.code == 2 and "--cost" in nocost.err


def _fidelity():
    spec = importlib.util.spec_from_file_location("fidelity_run", ROOT / "benchmarks/fidelity/run.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses resolve their module by name
    spec.loader.exec_module(module)
    return module


def test_fidelity_errors_within_stated_bounds() -> None:
    fidelity = _fidelity()
    rows = fidelity.rows()
    assert len(rows) >= 5
    for r in rows:
        assert abs(r.error) <= r.figure.bound, (r.figure.key, r.error)
        within_goal = abs(r.error) <= (0.15 if "area" in r.figure.metric else 0.10)
        assert within_goal or r.figure.missing, r.figure.key  # a miss names what is missing


def test_cost_breakdown_chart_shares_add_up(tmp_path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    from collections import defaultdict

    from imcsim.cost import estimate_network
    from imcsim.network import map_network
    from imcsim.plotting import CHARTS, plot_cost_breakdown, render_charts

    layers = [LayerShape.conv2d(8, 16, 3, 8, padding=1, name="a"),
              LayerShape.conv2d(16, 16, 3, 8, padding=1, name="b")]
    reports = [estimate_network(map_network(layers, n, NEUROSIM, model="tiny"))
               for n in ("im2col", "vw-sdk")]
    ax = plot_cost_breakdown([r.summary_record() for r in reports])
    heights = defaultdict(float)
    for patch in ax.patches:
        heights[round(patch.get_x() + patch.get_width() / 2, 3)] += patch.get_height()
    assert len(heights) == 4 and all(h == pytest.approx(100) for h in heights.values())
    assert "interconnect" in [t.get_text() for t in ax.get_legend().get_texts()]
    assert "cost_breakdown" in CHARTS
    paths = render_charts(reports, tmp_path, ["cost_breakdown"])
    assert [p.name for p in paths] == ["cost_breakdown.png"] and paths[0].stat().st_size > 0
    with pytest.raises(ConfigError, match="--cost"):
        plot_cost_breakdown([{"mapper": "im2col"}])


def test_parallel_tiles_divide_the_compute_time_only() -> None:
    serial = NEUROSIM.model_copy(update={"cost": NEUROSIM.cost.model_copy(
        update={"tile_schedule": "serial"})})
    m, par = _linear(NEUROSIM, rows=512, outputs=64)  # 4 row tiles x 2 column tiles
    _, ser = _linear(serial, rows=512, outputs=64)
    assert m.tiles == 8 and par.energy_pj == pytest.approx(ser.energy_pj)
    from imcsim.pricing import movement_ns, stage_ns

    fixed = movement_ns(par.events, m, NEUROSIM.cost) + m.windows * 2 * NEUROSIM.cost.digital.add_ns
    compute = par.events.stage_cycles * stage_ns(m, NEUROSIM)
    assert ser.latency_ns == pytest.approx(compute + fixed)
    assert par.latency_ns == pytest.approx(compute / 8 + fixed)


def test_cli_neurosim_on_a_model(capsys) -> None:
    res = run(capsys, "map", "--model", "resnet20", "--chip", "neurosim-v1.3", "--cost",
              "neurosim-v1.3", "--mapper", "vw-sdk", "--format", "json")
    assert res.code == 0, res.err
    parts = res.json()["total"]["energy_breakdown_pj"]
    assert all(parts[k] > 0 for k in ("adc", "array", "buffer", "interconnect", "digital"))


def test_cost_matmul_report_form_no_import_circle() -> None:
    # cost -> matmul -> pricing and cost -> report -> matmul; nothing points back to cost,
    # neither at module level nor inside functions.
    from test_architecture import SOURCES, imports_of, module_name, package_of

    mods = {module_name(p): p for p in SOURCES}
    graph = {m: {t for t in imports_of(p, package_of(p)) if t in mods and t != m}
             for m, p in mods.items()}

    def reaches(start: str, goal: str) -> bool:
        seen, todo = set(), [start]
        while todo:
            node = todo.pop()
            if node == goal:
                return True
            if node not in seen:
                seen.add(node)
                todo.extend(graph[node])
        return False

    for name in ("imcsim.cost", "imcsim.matmul", "imcsim.report", "imcsim.pricing"):
        assert not any(reaches(dep, name) for dep in graph[name]), name


@pytest.mark.parametrize("old, new, field", [
    ("input_kb = 128.0", "input_kb = 0.5", "cost.memory.input_kb"),
    ('topology = "htree"', 'topology = "ring"', "cost.interconnect.topology"),
    ("node_nm = 22.0", "node_nm = 3.0", "cost.technology.node_nm"),
    ('model = "survey"', 'model = "flash"', "cost.adc.model"),
    ('tile_schedule = "parallel"', 'tile_schedule = "both"', "cost.tile_schedule"),
    ("activation_energy_pj = 0.009", "activation_energy_pj = -1", "cost.postprocess.activation"),
])
def test_bad_new_fields_name_the_field(tmp_path: Path, capsys, old: str, new: str, field: str) -> None:
    text = (ROOT / "mappings/chips/neurosim-v1.3.toml").read_text()
    assert old in text
    (tmp_path / "bad.toml").write_text(text.replace(old, new))
    res = run(capsys, "map", "--layers", "cnn8", "--cost", str(tmp_path / "bad.toml"))
    assert res.code == 2 and field in res.err and "Traceback" not in res.err
    assert len(res.err.strip().splitlines()) == 1
