"""The paper's numbers (and literature figures such as the Bicubic rows), read from `tables/published/*.csv`.

Every published file is long format, one value per row. Values are kept as printed: `decimals` records how many
digits the source printed, so a reproduced number can be shown at the same precision and a `match` means agreement to
that precision, nothing looser.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

TABLE_IDS = ("table2", "table3", "table4", "table5")

# Columns that identify one cell. component/variant are only used by Table 5 (the ablation); empty elsewhere.
KEY = ["model", "component", "variant", "dataset", "scale", "metric"]


def printed_decimals(text: str) -> int:
    """Digits after the decimal point in a number as printed ("0.9299" -> 4, "190" -> 0)."""
    text = text.strip()
    return len(text.split(".", 1)[1]) if "." in text else 0


def _normalise(frame: pd.DataFrame, origin: str) -> pd.DataFrame:
    required = {"model", "dataset", "scale", "metric", "value"}
    absent = required - set(frame.columns)
    if absent:
        raise ValueError(f"{origin}: published table lacks column(s) {sorted(absent)}")
    frame = frame.fillna("").astype(str)
    for column in ("component", "variant", "label", "protocol_id", "note", "paper_ref", "source"):
        if column not in frame.columns:
            frame[column] = ""
    frame["scale"] = frame["scale"].map(lambda s: str(int(float(s))) if s else "")
    frame["decimals"] = frame["value"].map(printed_decimals)
    frame["published"] = pd.to_numeric(frame["value"].mask(frame["value"] == ""), errors="raise").astype(float)
    # `source` names where a number comes from; the paper's own tables carry it as paper_ref.
    frame["source"] = frame["source"].where(frame["source"] != "", frame["paper_ref"])
    frame["label"] = frame["label"].where(frame["label"] != "", frame["model"])
    return frame


def read_published(path: str | Path) -> pd.DataFrame:
    """One published long table, with `published` (float, NaN where the source prints a dash) and `decimals`."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"published table not found: {path}")
    return _normalise(pd.read_csv(path, dtype=str, keep_default_na=False), str(path))


def load_published(table_id: str, published_dir: str | Path) -> pd.DataFrame:
    """The paper's Table N from `<published_dir>/<table_id>.csv`."""
    if table_id not in TABLE_IDS:
        raise ValueError(f"unknown table {table_id!r}; expected one of {TABLE_IDS}")
    return read_published(Path(published_dir) / f"{table_id}.csv")


def load_extra(extra: str | Path | pd.DataFrame) -> pd.DataFrame:
    """Extra published rows (e.g. `bicubic_literature.csv`) from a path or an already loaded DataFrame."""
    if isinstance(extra, pd.DataFrame):
        return _normalise(extra.copy(), "extra_published DataFrame")
    return read_published(extra)
