"""Chart of a language model's per-token energy or latency by layer kind.

Records are the ``total`` of ``imcsim map --model … --cost …`` for a token model
(``imcsim.tokens.token_totals``): they carry ``by_kind`` (attention projections, MLP,
attention products, LM head, weight reload), ``phase`` and ``model``.  One stacked bar
per record, e.g. a model sweep (1B → 7B → 70B configs), prefill and decode side by side.
"""

from __future__ import annotations

from collections.abc import Sequence

from matplotlib.axes import Axes

from imcsim.plotting.base import new_ax
from imcsim.tokens import KINDS

__all__ = ["plot_token_breakdown", "token_records"]

_UNITS = {"energy_pj": ("energy per token (µJ)", 1e6), "latency_ns": ("array time per token (µs)", 1e3)}


def token_records(records: Sequence[dict]) -> list[dict]:
    """The records that carry a per-kind breakdown."""
    return [r for r in records if r.get("by_kind")]


def _label(record: dict) -> str:
    model = str(record.get("model", "")).rsplit("/", 1)[-1].removeprefix("transformers:")
    phase = record.get("phase", "")
    if phase == "decode":
        phase += f" @{record.get('context')}" + (f" ×{record['batch']}" if record.get("batch", 1) > 1 else "")
    return f"{model}\n{phase}"


def plot_token_breakdown(records: Sequence[dict], field: str = "energy_pj",
                         ax: Axes | None = None) -> Axes:
    """Stacked bars of ``field`` (``energy_pj`` or ``latency_ns``) per token by layer kind."""
    records = token_records(records)
    ylabel, scale = _UNITS[field]
    ax = new_ax(ax, (7.2, 4.2))
    bottoms = [0.0] * len(records)
    for kind in KINDS:
        values = [r["by_kind"].get(kind, {}).get(field, 0.0) / scale for r in records]
        if not any(values):
            continue
        ax.bar(range(len(records)), values, bottom=bottoms, label=kind)
        bottoms = [b + v for b, v in zip(bottoms, values)]
    ax.set_xticks(range(len(records)), [_label(r) for r in records], fontsize="small")
    ax.set_ylabel(ylabel)
    ax.set_yscale("log" if max(bottoms, default=1) > 100 * min(b for b in bottoms if b) else "linear")
    ax.set_title(f"Per token by layer kind — {records[0].get('array', '')}, "
                 f"{records[0].get('cost_preset', '')}")
    ax.legend(fontsize="small", loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False)
    ax.grid(axis="y", alpha=0.3)
    return ax
