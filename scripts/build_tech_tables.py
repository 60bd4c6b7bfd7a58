"""Rebuild ``mappings/tech/sram_cacti.csv`` with CACTI 7 through hwcomponents-cacti.

hwcomponents needs Python >= 3.12 and its bundled CACTI binary a newer glibc than
Debian 12's, so this runs in its own venv, never in imcsim's 3.11 install::

    ~/.pyenv/versions/3.12.1/bin/python -m venv /tmp/hwc312
    /tmp/hwc312/bin/pip install hwcomponents-cacti==1.0.40
    (cd /tmp/hwc312/lib/python3.12/site-packages/hwcomponents_cacti/cacti \
        && rm -rf obj_opt obj_dbg && make opt)
    /tmp/hwc312/bin/python scripts/build_tech_tables.py

The output records the package version and every input (node, capacity, port width).
The ADC survey constants (``mappings/tech/adc_survey.toml``) and the node-scaling table
(``stillmaker_baas_2017.toml``) are copied from hwcomponents-adc 1.0.21 and
hwcomponents 1.0.114 by hand: they are fitted constants, not tool runs.
"""

from __future__ import annotations

import sys
from importlib.metadata import version
from pathlib import Path

__all__ = ["CAPACITIES_KB", "NODES_NM", "WIDTHS_BITS", "main"]

NODES_NM = (22, 32, 45, 65)
"""CACTI's own technology files (no interpolation between nodes by the tool)."""
WIDTHS_BITS = (64, 128, 256)
CAPACITIES_KB = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 2048)
OUT = Path(__file__).resolve().parents[1] / "mappings" / "tech" / "sram_cacti.csv"


def main() -> None:
    from hwcomponents_cacti import SRAM

    lines = [
        f"# SRAM per access of one port width, CACTI 7 via hwcomponents-cacti "
        f"{version('hwcomponents-cacti')} (SRAM(tech_node, width, size); read/write action "
        f"energy, area, access latency); built by scripts/build_tech_tables.py",
        "node_nm,capacity_kb,width_bits,read_pj,write_pj,area_um2,access_ns",
    ]
    for node in NODES_NM:
        for width in WIDTHS_BITS:
            for kb in CAPACITIES_KB:
                s = SRAM(tech_node=node * 1e-9, width=width, size=kb * 1024 * 8)
                read, write = s.read(), s.write()
                lines.append(f"{node},{kb},{width},{read.energy * 1e12:.6g},"
                             f"{write.energy * 1e12:.6g},{s.area * 1e12:.6g},"
                             f"{read.latency * 1e9:.6g}")
                print(lines[-1], file=sys.stderr, flush=True)
    OUT.write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
