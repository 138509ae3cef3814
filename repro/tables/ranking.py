"""Best and second-best reproduced value per block and metric, as the paper marks them (bold, underlined).

Values are compared as printed (rounded to the cell's decimals), so that two entries that read the same get the
same mark. At least two rows must have a value: a lone entry is not the best of anything. Metrics without a
direction (Table 4's) are not ranked.
"""

from __future__ import annotations

import math

import pandas as pd

# +1: higher is better, -1: lower is better
DIRECTION = {"psnr": 1, "ssim": 1, "niqe": -1, "lpips": -1, "rmse": -1, "sam": -1, "fid": -1}
BEST, SECOND = "best", "second"


def rank_marks(block: pd.DataFrame) -> dict:
    """Index label of a cell in `block` (joined cells of one block) -> BEST or SECOND."""
    marks = {}
    for metric, cells in block.groupby("metric", sort=False):
        if metric not in DIRECTION:
            continue
        shown = {i: round(v, int(d)) for i, v, d in zip(cells.index, cells["reproduced"], cells["decimals"])
                 if not math.isnan(v)}
        if len(shown) < 2:
            continue
        ladder = sorted(set(shown.values()), key=lambda v: -DIRECTION[metric] * v)
        for i, value in shown.items():
            if value == ladder[0]:
                marks[i] = BEST
            elif len(ladder) > 1 and value == ladder[1]:
                marks[i] = SECOND
    return marks
