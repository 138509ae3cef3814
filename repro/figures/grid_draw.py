"""Drawing the qualitative grid: a fixed pixel layout of square cells, so the PNG's size follows from rows and columns.

Layout, in PNG pixels (``GridLayout``): a title band (as many lines as the wrapped caption needs), a header band with
the column names, then one band per image: a row of ``CELL`` x ``CELL`` cells with a caption strip under them.
Cells are ``GAP`` apart, with a ``MARGIN`` around. The HR image is fitted into its cell with its aspect kept; crops
are square and fill theirs, magnified with nearest-neighbour interpolation so that the pixels the metrics compare
are the pixels one sees. ``draw_cells`` lays out any such grid of whole images with a caption each (the inpainting
grid, ``repro.figures.inpaint_grid``); ``draw_grid`` is the SR grid with its crop box.
"""

from __future__ import annotations

import textwrap
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle

from repro.figures.output import DPI, new_figure

if TYPE_CHECKING:
    from repro.figures.grid import GridRow

CELL, GAP, MARGIN = 180, 6, 10  # pixels
CAPTION, HEADER, TITLE_LINE = 26, 26, 16  # pixels
FONT_PT = 9
BOX_COLOUR = "red"


@dataclass(frozen=True)
class GridLayout:
    """Pixel geometry of a grid of ``n_rows`` images by ``n_cols`` columns under a title of ``title_lines`` lines."""

    n_rows: int
    n_cols: int
    title_lines: int

    @property
    def width(self) -> int:
        return 2 * MARGIN + self.n_cols * CELL + (self.n_cols - 1) * GAP

    @property
    def top_of_rows(self) -> int:
        return MARGIN + self.title_lines * TITLE_LINE + HEADER

    @property
    def height(self) -> int:
        return self.top_of_rows + self.n_rows * (CELL + CAPTION) + (self.n_rows - 1) * GAP + MARGIN

    def cell(self, row: int, col: int) -> tuple[int, int]:
        """(left, top) in pixels of a cell, from the image's top-left corner."""
        return MARGIN + col * (CELL + GAP), self.top_of_rows + row * (CELL + CAPTION + GAP)


def wrap_title(title: str, n_cols: int) -> list[str]:
    """The caption broken into lines that fit the figure's width (about 7 pixels per character at 9 pt)."""
    return textwrap.wrap(title, width=max(20, GridLayout(1, n_cols, 0).width // 7))


def _fit_font(text: str) -> float:
    # a long model label shrinks rather than running into the next column (about 26 characters fit a cell at 9 pt)
    return min(FONT_PT, FONT_PT * 26 / max(len(text), 1))


def _show(fig: Figure, layout: GridLayout, row: int, col: int, img: np.ndarray):
    left, top = layout.cell(row, col)
    w, h = layout.width, layout.height
    ax = fig.add_axes((left / w, 1 - (top + CELL) / h, CELL / w, CELL / h))
    gray = img.ndim == 2
    ax.imshow(img, cmap="gray" if gray else None, vmin=0, vmax=255, interpolation="nearest")
    ax.set_xticks([])
    ax.set_yticks([])
    for spine in ax.spines.values():
        spine.set_linewidth(0.5)
        spine.set_color("0.6")
    return ax


def _text(fig: Figure, layout: GridLayout, x_px: float, y_px: float, text: str, **kw) -> None:
    fig.text(x_px / layout.width, 1 - y_px / layout.height, text, ha="center", va="center",
             fontsize=kw.pop("fontsize", _fit_font(text)), **kw)


def draw_grid(rows: Sequence[GridRow], *, title: str) -> Figure:
    """The figure of ``rows`` (``repro.figures.grid.build_rows``) under ``title``: ``draw_cells`` with the crop box
    drawn on each row's HR image."""
    headers = ["HR", *(p.model.label for p in rows[0].panels), "Ground truth"] if rows else []
    cells = [[(row.hr, f"{row.image}  ({row.box.top}, {row.box.left})"),
              *((p.pixels, f"{p.psnr:.2f} dB") for p in row.panels), (row.truth, "reference")] for row in rows]
    fig, axes = _draw_cells(headers, cells, title=title)
    for row, ax in zip(rows, (row_axes[0] for row_axes in axes)):
        box = row.box
        # pixel centres sit on integer coordinates in imshow, so the box's outer edge is half a pixel further out
        ax.add_patch(Rectangle((box.left - 0.5, box.top - 0.5), box.size, box.size, fill=False,
                               edgecolor=BOX_COLOUR, linewidth=1.5))
    return fig


def draw_cells(headers: Sequence[str], rows: Sequence[Sequence[tuple[np.ndarray, str]]], *, title: str) -> Figure:
    """A grid of images under ``title``: one column per header, one band per row, each cell an (image, caption) pair.

    Every row has one cell per header; images are fitted into their cell with the aspect kept.
    """
    return _draw_cells(headers, rows, title=title)[0]


def _draw_cells(headers, rows, *, title):
    """``draw_cells``, and the axes of every cell (row by row), for overlays."""
    n_cols = len(headers)
    if any(len(row) != n_cols for row in rows):
        raise ValueError(f"every row needs {n_cols} cells, one per column {list(headers)}")
    lines = wrap_title(title, n_cols)
    layout = GridLayout(n_rows=len(rows), n_cols=n_cols, title_lines=len(lines))
    fig = new_figure(layout.width / DPI, layout.height / DPI)
    fig.text(0.5, 1 - MARGIN / layout.height, "\n".join(lines), ha="center", va="top", fontsize=FONT_PT,
             linespacing=1.25)
    for col, header in enumerate(headers):
        left, top = layout.cell(0, col)
        _text(fig, layout, left + CELL / 2, top - HEADER / 2, header, fontweight="bold")
    axes = []
    for r, row in enumerate(rows):
        axes.append([_show(fig, layout, r, col, pixels) for col, (pixels, _) in enumerate(row)])
        for col, (_, caption) in enumerate(row):
            left, top = layout.cell(r, col)
            _text(fig, layout, left + CELL / 2, top + CELL + CAPTION / 2, caption)
    return fig, axes
