"""What every figure writes: a PNG from matplotlib's Agg canvas, and the CSV of its plotted numbers beside it.

Figures are ``matplotlib.figure.Figure`` objects on an explicit ``FigureCanvasAgg``: no pyplot, so no global figure
state and no display backend, whatever ``MPLBACKEND`` says. The PNG is saved at the figure's own size (no
``bbox_inches="tight"``), so its pixel size is ``figsize * dpi`` as each figure lays it out.
"""

from __future__ import annotations

import csv
import math
from collections.abc import Iterable, Sequence
from pathlib import Path

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

DPI = 100


def new_figure(width_in: float, height_in: float) -> Figure:
    """A figure of ``width_in`` x ``height_in`` inches on an Agg canvas."""
    fig = Figure(figsize=(width_in, height_in), dpi=DPI)
    FigureCanvasAgg(fig)
    return fig


def check_png_path(path: str | Path) -> Path:
    """``path`` as a Path, which must end in ``.png`` (its CSV takes the same stem)."""
    path = Path(path)
    if path.suffix.lower() != ".png":
        raise ValueError(f"{path}: a figure is written as PNG; give a path ending in .png")
    return path


def csv_beside(png: str | Path) -> Path:
    """The CSV of a figure's numbers: the PNG's path with a ``.csv`` suffix."""
    return Path(png).with_suffix(".csv")


def save_png(fig: Figure, path: str | Path) -> Path:
    """Write ``fig`` as a PNG at ``DPI``, creating the folder."""
    path = check_png_path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=DPI, format="png")
    return path


def _cell(value) -> object:
    # NaN and None are written as empty cells; floats keep every digit (csv writes repr) so they read back exactly
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    return value


def write_csv(path: str | Path, columns: Sequence[str], rows: Iterable[dict]) -> Path:
    """Write ``rows`` (dicts with the keys ``columns``) as a CSV with a header."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(columns))
        writer.writeheader()
        for row in rows:
            writer.writerow({c: _cell(row.get(c)) for c in columns})
    return path
