"""Drawing a PSNR trade-off figure: one labelled point per model, PSNR on y, parameters or seconds on a log x axis.

Both x quantities span orders of magnitude across the compared models (Bicubic's milliseconds to a diffusion model's
seconds; SRCNN's 8k parameters to HAT's 20M), so both axes are logarithmic. A point with an error bar is the mean of
two or more seeds, the bar one sample standard deviation. A model with no parameters has no place on the log axis of
parameters and is drawn as a dashed horizontal line at its PSNR instead, labelled at the left.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING

from matplotlib.figure import Figure

from repro.figures.output import new_figure

if TYPE_CHECKING:
    from repro.figures.tradeoff import TradeoffPoint

WIDTH_IN, HEIGHT_IN = 6.4, 4.8
POINT_COLOUR = "C0"
X_LABELS = {"params": "parameters (log scale)",
            "seconds": "inference time per image, s (median over the set; log scale)"}


def draw_tradeoff(points: Sequence[TradeoffPoint], *, quantity: str, title: str) -> Figure:
    """The figure of ``points`` against ``quantity`` (``"params"`` or ``"seconds"``) under ``title``."""
    fig = new_figure(WIDTH_IN, HEIGHT_IN)
    ax = fig.add_subplot()
    ax.set_xscale("log")
    on_axis = [p for p in points if p.x > 0]
    for p in on_axis:
        err = None if math.isnan(p.psnr_std) else p.psnr_std
        # one colour for all: the two figures hold different models, so a colour cycle would not match between them
        ax.errorbar([p.x], [p.psnr_mean], yerr=None if err is None else [[err], [err]], fmt="o", capsize=3,
                    markersize=5, color=POINT_COLOUR)
        ax.annotate(p.label, (p.x, p.psnr_mean), xytext=(5, 4), textcoords="offset points", fontsize=8)
    for p in points:
        if p.x <= 0:  # only parameters can be zero; a median time is always positive
            ax.axhline(p.psnr_mean, linestyle="--", linewidth=1, color="0.5")
            ax.annotate(f"{p.label} (no parameters)", (0.01, p.psnr_mean), xycoords=("axes fraction", "data"),
                        xytext=(0, 3), textcoords="offset points", fontsize=8, color="0.3")
    if on_axis:  # some room on the right for the labels
        lo, hi = min(p.x for p in on_axis), max(p.x for p in on_axis)
        ax.set_xlim(lo / 2, hi * 4)
    ax.set_xlabel(X_LABELS[quantity])
    ax.set_ylabel("PSNR (dB)")
    ax.set_title(title, fontsize=9)
    ax.grid(True, which="both", linewidth=0.3, alpha=0.6)
    fig.tight_layout()
    return fig
