"""Table 2 (inpainting): which rows the harness reproduces, and what its FID cells are measured on.

- Rows: the harness trains DiffIR and DiffRWKVIR for inpainting (``diffir_inpaint``, ``diffrwkvir_inpaint``; an
  unnamed result file of those models is the row ``diffir`` / ``diffrwkvir``). ICT, EdgeConnect, LDM, AOT-GAN and
  LaMa are not re-implemented: their rows show the paper's numbers only, every cell ``missing`` with the reason
  ``PUBLISHED_ONLY_REASON``, and the LaTeX marks the row label with a dagger explained once in the footer instead of
  a footnote on every cell (``ROW_MARKS``, read by ``repro.tables.latex``).
- FID: a set-level number whose bias depends on how many images it is computed over (strongly so below 2,000, and
  every set of the data mirror is far smaller). Each reproduced FID cell's ``note`` (CSV) and LaTeX footnote give
  that count, from the sidecar's ``fid`` record (``{"value", "n_images", "warning"}``, ``repro/evaluate_inpaint.py``),
  and the sidecar's warning; a sidecar without a warning below 2,000 images gets this module's.
- Mural, which is not public, is filled by FFHQ through the general stand-in mapping (``repro.tables.stand_in``,
  ``--dataset-as FFHQ Mural``).
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from repro.metrics.protocol import FID_MIN_IMAGES

PUBLISHED_ONLY = ("ict", "edgeconnect", "ldm", "aot_gan", "lama")
PUBLISHED_ONLY_REASON = "published only (not re-implemented by the harness)"
# reason shared by every cell of a row -> (mark on the row label, footer line); see repro.tables.latex
ROW_MARKS = {PUBLISHED_ONLY_REASON: (r"$^\dagger$", PUBLISHED_ONLY_REASON + ": the paper's numbers, nothing reproduced")}
MODEL_SUFFIX = "_inpaint"  # the registry names of the harness's inpainting networks


def row_models(reproduced: pd.DataFrame, published_models) -> pd.DataFrame:
    """Results of ``<model>_inpaint`` as the row ``<model>`` where the paper has that row."""
    if reproduced.empty:
        return reproduced
    known = set(published_models)

    def row(model: str) -> str:
        base = model.removesuffix(MODEL_SUFFIX)
        return base if base in known else model

    return reproduced.assign(model=reproduced["model"].map(row))


def mark_published_only(cells: pd.DataFrame) -> pd.DataFrame:
    """The cells of the rows the harness does not train, without a result, with ``PUBLISHED_ONLY_REASON``."""
    cells = cells.copy()
    rows = cells["model"].isin(PUBLISHED_ONLY) & (cells["status"] == "missing") & (cells["result_file"] == "")
    cells.loc[rows, "reason"] = PUBLISHED_ONLY_REASON
    return cells


def fid_note(record: dict | None, n_images) -> str:
    """What one sidecar's FID was computed over: "FID over N images", with the small-set warning below 2,000.

    Args:
        record: the sidecar's ``fid`` (``n_images``, ``warning``); None for a sidecar without one.
        n_images: the sidecar's ``n_images``, the count when ``record`` lacks its own.
    """
    record = record or {}
    n = record.get("n_images", n_images)
    if n is None:
        return "FID image count not recorded"
    count = f"FID over {int(n)} images"
    warning = record.get("warning") or (
        f"FID is strongly biased below {FID_MIN_IMAGES} images; compare it only between rows measured on the same "
        "images" if int(n) < FID_MIN_IMAGES else "")
    if not warning:
        return count
    # the harness's warning starts with the count itself ("FID over 100 images: ..."): not said twice
    return warning if str(warning).startswith(count) else f"{count}: {warning}"


def annotate_fid(cells: pd.DataFrame) -> pd.DataFrame:
    """Reproduced FID cells with their image count and warning, in ``note`` (CSV) and ``footnote`` (LaTeX)."""
    cells = cells.copy()
    if "footnote" not in cells.columns:
        cells["footnote"] = ""
    sidecars: dict[str, dict] = {}
    for i, cell in cells[(cells["metric"] == "fid") & cells["reproduced"].notna()].iterrows():
        notes = []
        for path in [p for p in str(cell["result_file"]).split("; ") if p]:
            if path not in sidecars:
                sidecars[path] = json.loads(Path(path).with_suffix(".json").read_text())
            notes.append(fid_note(sidecars[path].get("fid"), sidecars[path].get("n_images")))
        text = "; ".join(dict.fromkeys(notes))
        note = cell["note"] if isinstance(cell["note"], str) else ""
        cells.loc[i, "note"] = f"{note}; {text}" if note else text
        cells.loc[i, "footnote"] = text
    return cells


def finish(cells: pd.DataFrame) -> pd.DataFrame:
    """Table 2's joined cells: published-only rows marked, FID cells annotated (see the module docstring)."""
    return annotate_fid(mark_published_only(cells))
