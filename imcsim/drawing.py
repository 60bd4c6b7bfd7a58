"""Pictures of a mapping: one or all tiles of a layer as images of the crossbar array.

Drawn from the placement alone (``imcsim.placement_view``), so every mapper — including
one a user registers with a hand-built ``Placement`` — is drawn the same way.  Each
physical cell is a pixel block: a weight is coloured by its filter (or by its window
copy), shaded by its kernel tap; cells with no weight, zero (pruned) weights and idle
cells are greys.  A strip left of each tile shows the input channel of every word line,
a strip above it the window copy of every bit line; all-zero rows and columns are red
in those strips, and red triangles mark where a pruned mapping skipped all-zero rows.
When the array has more cells than the axes have pixels, cells are averaged in square
blocks and the title says so.  ``plot_placement`` takes an ``ax`` and returns it.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.axes import Axes
from matplotlib.colors import hsv_to_rgb
from matplotlib.lines import Line2D
from matplotlib.patches import Patch, Rectangle

from imcsim.mappers.mapping import LayerMapping
from imcsim.placement_view import (
    EMPTY,
    PRUNED,
    UNUSED,
    WEIGHT,
    TileView,
    dropped_outputs,
    tile_views,
)

__all__ = ["ColorBy", "plot_placement", "plot_placements"]

ColorBy = Literal["filter", "copy"]
_GREYS = {UNUSED: 0.96, EMPTY: 0.80, PRUNED: 0.42}
_RED = (0.86, 0.12, 0.12)
_CHANNEL = ((0.25, 0.25, 0.25), (0.58, 0.58, 0.58))
_COPY = ((0.18, 0.38, 0.68), (0.55, 0.70, 0.90))
_GOLDEN = 0.6180339887


@dataclass(frozen=True)
class _Frame:
    """Where each tile's cells sit on the canvas (in cells), and the canvas size."""

    rows: int
    cols: int
    strip: int
    gap: int
    grid_cols: int
    count: int

    @property
    def slot(self) -> tuple[int, int]:
        return self.strip + self.rows, self.strip + self.cols

    @property
    def shape(self) -> tuple[int, int]:
        grid_rows = math.ceil(self.count / self.grid_cols)
        return (self.gap + grid_rows * (self.slot[0] + self.gap),
                self.gap + self.grid_cols * (self.slot[1] + self.gap))

    def origin(self, k: int) -> tuple[int, int]:
        """Top-left cell of tile ``k``'s cells (strips sit above and to the left)."""
        gy, gx = divmod(k, self.grid_cols)
        return (self.gap + gy * (self.slot[0] + self.gap) + self.strip,
                self.gap + gx * (self.slot[1] + self.gap) + self.strip)


def _frame(rows: int, cols: int, count: int) -> _Frame:
    side = max(rows, cols)
    strip, gap = max(1, round(side / 32)), max(2, round(side / 10))
    return _Frame(rows, cols, strip, gap, math.ceil(math.sqrt(count)), count)


def _figsize(aspect: float, panels: int = 1) -> tuple[float, float]:
    """Figure inches for ``panels`` canvases of height/width ``aspect``, titles and legend."""
    width = min(6.4, 7.5 / aspect) if aspect > 1 else 6.4
    if panels > 1:
        return 5.2 * panels, float(np.clip(5.2 * aspect + 1.6, 3.6, 11.0))
    return width, float(np.clip(width * aspect + 2.2, 3.6, 11.0))


def _cell_colours(view: TileView, color_by: ColorBy, taps: int) -> np.ndarray:
    """(rows, cols, 3) colours of one tile's cells."""
    rgb = np.empty((*view.kind.shape, 3), dtype=np.float32)
    for kind, grey in _GREYS.items():
        rgb[view.kind == kind] = grey
    weight = view.kind == WEIGHT
    key = (view.filter if color_by == "filter" else view.copy)[weight]
    shade = view.tap[weight] / max(taps - 1, 1)
    hsv = np.stack([(key * _GOLDEN + 0.05) % 1.0, np.full(key.shape, 0.75),
                    0.98 - 0.45 * shade], axis=-1)
    rgb[weight] = hsv_to_rgb(hsv)
    return rgb


def _strip(labels: np.ndarray, zero: np.ndarray, palette: tuple) -> np.ndarray:
    """(n, 3) colours of a strip: alternating shades per label, red where all zero."""
    rgb = np.ones((len(labels), 3), dtype=np.float32)
    used = labels >= 0
    rgb[used] = np.asarray(palette, dtype=np.float32)[labels[used] % 2]
    rgb[zero] = _RED
    return rgb


def _canvas(views: list[TileView], frame: _Frame, color_by: ColorBy, taps: int) -> np.ndarray:
    canvas = np.ones((*frame.shape, 3), dtype=np.float32)
    s = frame.strip
    for k, view in enumerate(views):
        y, x = frame.origin(k)
        canvas[y : y + frame.rows, x : x + frame.cols] = _cell_colours(view, color_by, taps)
        canvas[y : y + frame.rows, x - s : x] = _strip(view.channel, view.zero_rows, _CHANNEL)[:, None]
        canvas[y - s : y, x : x + frame.cols] = _strip(view.column_copy, view.zero_cols, _COPY)[None]
    return canvas


def _axes_pixels(ax: Axes) -> tuple[float, float]:
    box = ax.get_window_extent()
    return max(box.height, 1.0), max(box.width, 1.0)


def _aggregate(canvas: np.ndarray, block: int) -> np.ndarray:
    """Mean colour of every ``block × block`` square of cells (white beyond the edge)."""
    if block == 1:
        return canvas
    h, w = canvas.shape[:2]
    padded = np.ones((-(-h // block) * block, -(-w // block) * block, 3), dtype=np.float32)
    padded[:h, :w] = canvas
    return padded.reshape(padded.shape[0] // block, block, -1, block, 3).mean(axis=(1, 3))


def _title(mapping: LayerMapping, views: list[TileView], tile: int | None, block: int,
           cols_per_adc: int | None) -> str:
    layer, array, n = mapping.layer, mapping.array, mapping.tiles
    head = f"{layer.name or 'layer'} ({layer.describe()}) — {mapping.mapper}"
    if mapping.scheme != mapping.mapper:
        head += f" [{mapping.scheme}]"
    if mapping.role != "layer":
        head += f", factor {mapping.role}"
    counts = (f"window {mapping.window[0]}×{mapping.window[1]} on {array.label}: {n} tile(s) × "
              f"{mapping.windows:,} windows = {mapping.cycles:,} cycles, "
              f"utilization {mapping.utilization:.1%}")
    notes = []
    if tile is not None:
        v = views[0]
        notes.append(f"tile {tile} of 0..{n - 1}: {v.used_rows}/{array.rows} word lines, "
                     f"{v.used_cols}/{array.cols} bit lines")
    if mapping.row_tiles > 1:
        notes.append(f"each output sums {mapping.row_tiles} row tiles")
    if array.cols_per_weight > 1:
        notes.append(f"{array.cols_per_weight} bit lines per weight")
    if cols_per_adc is not None:
        notes.append(f"ADC shared by {cols_per_adc} bit lines "
                     f"({math.ceil(array.cols / cols_per_adc)} per array)")
    if mapping.skipped_rows:
        notes.append(f"{mapping.skipped_rows:,} all-zero rows skipped per window")
    dropped = dropped_outputs(mapping.placement)
    if dropped:
        notes.append(f"{dropped:,} all-zero filter columns dropped")
    if block > 1:
        notes.append(f"cells averaged in {block}×{block} blocks (1 pixel = {block * block} cells)")
    return "\n".join([head, counts, *(_wrap(notes))])


def _wrap(notes: list[str], width: int = 110) -> list[str]:
    lines, line = [], ""
    for note in notes:
        if line and len(line) + len(note) + 2 > width:
            lines.append(line)
            line = ""
        line = f"{line}; {note}" if line else note
    return [*lines, line] if line else lines


def _marks(ax: Axes, views: list[TileView], frame: _Frame, cols_per_adc: int | None,
           cell_px: float, annotate: bool) -> None:
    """Tile outlines, ADC groups, skipped-row markers, cell grid and tap labels."""
    marks_y, marks_x = [], []
    for k, view in enumerate(views):
        y, x = frame.origin(k)
        ax.add_patch(Rectangle((x, y), frame.cols, frame.rows, fill=False, lw=0.6, ec="0.15"))
        if annotate and 1 < len(views) <= 24:
            ax.text(x, y - frame.strip - 0.2, f"tile {view.index}", fontsize="x-small",
                    va="bottom", ha="left")
        if cols_per_adc is not None and cols_per_adc < frame.cols:
            edges = np.arange(cols_per_adc, frame.cols, cols_per_adc) + x
            ax.vlines(edges, y - frame.strip, y, colors="k", lw=0.8)
        at = np.flatnonzero(view.skipped_before)
        marks_y += list(y + at)
        marks_x += [x - frame.strip - frame.gap * 0.45] * len(at)
        if annotate and cell_px >= 8:
            _grid(ax, view, x, y, frame, cell_px)
    if marks_y:
        size = float(np.clip(frame.gap * cell_px * 0.4, 2.5, 6))
        ax.plot(marks_x, marks_y, ls="", marker=">", ms=size, color=_RED, clip_on=False)


def _grid(ax: Axes, view: TileView, x: int, y: int, frame: _Frame, cell_px: float) -> None:
    ax.hlines(np.arange(1, frame.rows) + y, x, x + frame.cols, colors="w", lw=0.4)
    ax.vlines(np.arange(1, frame.cols) + x, y, y + frame.rows, colors="w", lw=0.4)
    if cell_px < 22:
        return
    points = cell_px * 72 / ax.figure.dpi
    for i, j in zip(*np.nonzero(view.tap >= 0)):
        label = f"f{view.filter[i, j]}\nt{view.tap[i, j]}"
        ax.text(x + j + 0.5, y + i + 0.5, label, ha="center", va="center",
                fontsize=min(7.0, points / 2.6), color="k" if view.kind[i, j] != PRUNED else "w")


def _handles(views: list[TileView], color_by: ColorBy) -> list:
    """Legend entries for what these tiles show."""
    kinds = set().union(*(np.unique(v.kind).tolist() for v in views))
    handles = [Patch(fc=hsv_to_rgb((0.05, 0.75, 0.9)), label=f"weight (hue: {color_by}, shade: tap)")]
    labels = {EMPTY: "no weight (no tap lands here)", PRUNED: "weight stored as zero",
              UNUSED: "idle cell"}
    handles += [Patch(fc=str(_GREYS[k]), ec="0.6", label=text) for k, text in labels.items()
                if k in kinds]
    handles.append(Patch(fc=_CHANNEL[0], label="strips: word line channel / bit line copy"))
    if any(v.zero_rows.any() or v.zero_cols.any() for v in views):
        handles.append(Patch(fc=_RED, label="all-zero row / column"))
    if any(v.skipped_before.any() for v in views):
        handles.append(Line2D([], [], ls="", marker=">", color=_RED, label="all-zero rows skipped"))
    return handles


def _draw(mapping: LayerMapping, ax: Axes | None, tile: int | None, color_by: ColorBy,
          cols_per_adc: int | None, annotate: bool) -> tuple[Axes, list]:
    """Draw the tiles on ``ax`` (made if None); return it and its legend entries."""
    views = list(tile_views(mapping.placement, None if tile is None else [tile]))
    array = mapping.array
    frame = _frame(array.rows, array.cols, len(views))
    if ax is None:
        height, width = frame.shape
        ax = plt.figure(figsize=_figsize(height / width), layout="constrained").add_subplot()
    kernel = mapping.layer.kernel_size
    canvas = _canvas(views, frame, color_by, kernel[0] * kernel[1])
    px_h, px_w = _axes_pixels(ax)
    block = max(1, math.ceil(max(canvas.shape[0] / px_h, canvas.shape[1] / px_w)))
    image = _aggregate(canvas, block)
    ax.imshow(image, interpolation="nearest", aspect="equal",
              extent=(0, image.shape[1] * block, image.shape[0] * block, 0))
    ax.set_xlim(0, canvas.shape[1])
    ax.set_ylim(canvas.shape[0], 0)
    cell_px = min(px_h / canvas.shape[0], px_w / canvas.shape[1])
    _marks(ax, views, frame, cols_per_adc, cell_px, annotate)
    ax.set_xticks([])
    ax.set_yticks([])
    for spine in ax.spines.values():
        spine.set_visible(False)
    if annotate:
        ax.set_title(_title(mapping, views, tile, block, cols_per_adc), fontsize="small")
        ax.set_xlabel("bit lines (columns) →", fontsize="small")
        ax.set_ylabel("← word lines (rows)", fontsize="small")
    return ax, _handles(views, color_by)


def plot_placement(
    mapping: LayerMapping, ax: Axes | None = None, tile: int | None = None, *,
    color_by: ColorBy = "filter", cols_per_adc: int | None = None, annotate: bool = True,
) -> Axes:
    """Draw tile ``tile`` (or every tile) of ``mapping`` as images of the array.

    ``cols_per_adc``: bit lines one ADC serves (``chip.cost.adc.cols_per_adc``), drawn as
    ticks on the bit-line strip.  ``annotate=False`` draws cells only (no text, no legend).
    """
    ax, handles = _draw(mapping, ax, tile, color_by, cols_per_adc, annotate)
    if annotate:
        ax.legend(handles=handles, loc="upper center", bbox_to_anchor=(0.5, -0.06), ncols=2,
                  fontsize="x-small", frameon=False)
    return ax


def plot_placements(
    mappings: Sequence[LayerMapping], tile: int | None = None, *, color_by: ColorBy = "filter",
    cols_per_adc: int | None = None, annotate: bool = True, title: str | None = None,
) -> list[Axes]:
    """Several mappings side by side (im2col vs SDK vs VW-SDK; a low-rank pair's R and L),
    one legend below them."""
    frames = [_frame(m.array.rows, m.array.cols, 1 if tile is not None else m.tiles)
              for m in mappings]
    aspect = max(f.shape[0] / f.shape[1] for f in frames)
    fig = plt.figure(figsize=_figsize(aspect, len(mappings)), layout="constrained")
    axes = list(fig.subplots(1, len(mappings), squeeze=False)[0])
    legend: dict[str, object] = {}
    for ax, mapping in zip(axes, mappings):
        _, handles = _draw(mapping, ax, tile, color_by, cols_per_adc, annotate)
        legend.update({h.get_label(): h for h in handles})
    if annotate:
        fig.legend(handles=list(legend.values()), loc="outside lower center",
                   ncols=min(4, len(legend)), fontsize="small", frameon=False)
        if title:
            fig.suptitle(title)
    return axes
