"""Published SR numbers that contradict each other, or the weakest method, and so cannot be reproduced as printed.

RMSE vs PSNR. On the same pixels each image has RMSE_i = 255 * 10**(-PSNR_i / 20) (0-255 scale). That function of
PSNR is convex, so by Jensen's inequality the mean of the per-image RMSE is at least 255 * 10**(-mean PSNR / 20),
whatever the images. A published RMSE below that floor, given the same row's published PSNR, cannot come from one
protocol applied to the same images: the paper's RMSE follows some protocol it does not state.

SAM vs Bicubic. Bicubic upscaling is the weakest method of an SR table. A published SAM larger than the SAM that
Bicubic gives under our protocol on the same dataset would make the method worse than Bicubic, which its PSNR denies;
the paper's SAM follows some other, unstated definition (it prints 0.14-0.18 rad for every method, where Bicubic
measures 0.03-0.06 rad here). This check needs a reproduced Bicubic SAM; without one nothing is flagged.

Flagged cells keep their status; they get a `note` (appended to any transcription note) and a `published_flag`
naming the kind, which the LaTeX writer turns into one footnote per kind on the affected column.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import pandas as pd

RMSE_FLAG = "rmse_below_psnr_floor"
SAM_FLAG = "sam_above_bicubic"
BICUBIC = "bicubic"
ROW = ["model", "component", "variant", "dataset", "scale"]


def rmse_floor(mean_psnr_db: float) -> float:
    """The least mean RMSE (0-255 scale) any set of images with this mean PSNR can have."""
    return 255.0 * 10.0 ** (-mean_psnr_db / 20.0)


def _published(cells: pd.DataFrame, metric: str) -> pd.Series:
    return cells[cells["metric"] == metric].set_index(ROW)["published"].astype(float)


def rmse_contradictions(cells: pd.DataFrame) -> pd.DataFrame:
    """Rows whose published RMSE is below the floor of their published PSNR: ROW columns, psnr, rmse, floor, ratio."""
    both = pd.concat({"psnr": _published(cells, "psnr"), "rmse": _published(cells, "rmse")}, axis=1,
                     join="inner").dropna()
    both["floor"] = [rmse_floor(p) for p in both["psnr"]]
    both["ratio"] = both["rmse"] / both["floor"]
    return both[both["rmse"] < both["floor"]].reset_index()


def bicubic_sam(*frames: pd.DataFrame) -> dict[tuple[str, str], float]:
    """Reproduced Bicubic SAM per (dataset, scale), from joined cells or read evaluation results."""
    found: dict[tuple[str, str], float] = {}
    for frame in frames:
        if "reproduced" not in frame.columns:  # published numbers only: nothing measured here
            continue
        rows = frame[(frame["model"] == BICUBIC) & (frame["metric"] == "sam") & frame["reproduced"].notna()]
        for dataset, scale, value in rows[["dataset", "scale", "reproduced"]].itertuples(index=False):
            found.setdefault((str(dataset), str(scale)), float(value))
    return found


def sam_contradictions(cells: pd.DataFrame, bicubic: Mapping[tuple[str, str], float]) -> pd.DataFrame:
    """Rows of another method whose published SAM exceeds the reproduced Bicubic SAM: ROW columns, sam, bicubic."""
    sam = _published(cells, "sam").dropna().rename("sam").reset_index()
    sam["bicubic"] = [bicubic.get((str(d), str(s)), math.nan) for d, s in zip(sam["dataset"], sam["scale"])]
    return sam[(sam["model"] != BICUBIC) & (sam["sam"] > sam["bicubic"])].reset_index(drop=True)


def _rmse_note(row) -> str:
    return (f"published RMSE {row.rmse:.2f} < {row.floor:.2f}, the least any set of images with mean PSNR "
            f"{row.psnr:.2f} dB allows: RMSE protocol not stated, not reproducible from the paper's numbers")


def _sam_note(row) -> str:
    return (f"published SAM {row.sam:.4f} > {row.bicubic:.4f}, the SAM of Bicubic upscaling (the weakest method) "
            f"reproduced on {row.dataset}: SAM protocol not stated, these values cannot be reproduced")


def _flag(cells: pd.DataFrame, found: pd.DataFrame, metric: str, kind: str, note) -> None:
    index = cells[cells["metric"] == metric].reset_index().set_index(ROW)["index"]
    for row in found.itertuples(index=False):
        i = index[tuple(getattr(row, c) for c in ROW)]
        old = cells.at[i, "note"]
        cells.at[i, "note"] = f"{old}; {note(row)}" if old else note(row)
        cells.at[i, "published_flag"] = kind


def flag_published(cells: pd.DataFrame, bicubic: Mapping[tuple[str, str], float] | None = None) -> pd.DataFrame:
    """Joined cells with the contradictory published RMSE and SAM cells noted and flagged (see the module).

    Args:
        cells: joined cells (`repro.tables.join.join`).
        bicubic: reproduced Bicubic SAM per (dataset, scale) beyond the Bicubic rows of `cells` (Table 5 has none).
    """
    cells = cells.copy()
    cells["note"] = cells["note"].fillna("").astype(str)
    if "published_flag" not in cells.columns:
        cells["published_flag"] = ""
    cells["published_flag"] = cells["published_flag"].fillna("").astype(str)
    _flag(cells, rmse_contradictions(cells), "rmse", RMSE_FLAG, _rmse_note)
    reference = {**(bicubic or {}), **bicubic_sam(cells)}
    _flag(cells, sam_contradictions(cells, reference), "sam", SAM_FLAG, _sam_note)
    return cells


def flag_footnote(kind: str, flagged: int, published: int) -> str:
    """The table footnote for one kind of flag: which column, how many of its published values, and why."""
    if kind == RMSE_FLAG:
        return (f"RMSE column: {flagged} of {published} published values lie below 255*10^(-PSNR/20) of their row's "
                "published PSNR, the least mean RMSE any set of images with that mean PSNR allows (Jensen's "
                "inequality); the RMSE protocol is not stated, and these values are not reproducible from the "
                "paper's numbers.")
    if kind == SAM_FLAG:
        return (f"SAM column: {flagged} of {published} published values exceed the SAM of Bicubic upscaling (the "
                "weakest method) reproduced on the same dataset; the SAM protocol is not stated, and these values "
                "cannot be reproduced.")
    raise ValueError(f"unknown flag {kind!r}; expected {RMSE_FLAG!r} or {SAM_FLAG!r}")


FLAGGED_METRIC = {RMSE_FLAG: "rmse", SAM_FLAG: "sam"}
