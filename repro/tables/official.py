"""Rows of baselines evaluated with their authors' released checkpoints ("official weights").

Such a row is keyed `<model>_official` and compared with the same published numbers as the retrained `<model>` row:
the paper's numbers for a method are what both a faithful retraining and the released weights should give. The
published rows of `<model>` are duplicated under the new key and placed right after the retrained row in each block.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import pandas as pd

SUFFIX = "_official"
LABEL_SUFFIX = " (official weights)"

# per model, one or more evaluation files (one per dataset), or (model, file) pairs
OfficialFiles = Mapping[str, str | Path | Sequence[str | Path]] | Sequence[tuple[str, str | Path]]


def official_key(model: str) -> str:
    return model + SUFFIX


def is_official(model: str) -> bool:
    """Whether a row is an official-weights copy (its published values duplicate another row's)."""
    return str(model).endswith(SUFFIX)


def _items(files: OfficialFiles) -> list[tuple[str, Path]]:
    if isinstance(files, Mapping):
        return [(str(model), Path(path)) for model, paths in files.items()
                for path in ([paths] if isinstance(paths, (str, Path)) else paths)]
    return [(str(model), Path(path)) for model, path in files]


def official_models(files: OfficialFiles) -> list[str]:
    """The retrained models that have official-weights results, in the order given."""
    return list(dict.fromkeys(model for model, _ in _items(files)))


def official_pairs(files: OfficialFiles) -> list[tuple[str, Path]]:
    """(row name `<model>_official`, evaluation file) pairs, as `repro.tables.results` takes them."""
    return [(official_key(model), path) for model, path in _items(files)]


def add_official_rows(published: pd.DataFrame, models: Sequence[str], table_id: str) -> pd.DataFrame:
    """`published` with a copy of each named model's rows, keyed `<model>_official`, after that model's rows."""
    models = list(dict.fromkeys(models))
    if not models:
        return published
    unknown = [m for m in models if m not in set(published["model"])]
    if unknown:
        raise ValueError(f"official weights given for {unknown}, which {table_id} does not publish; "
                         f"its models: {sorted(set(published['model']))}")
    pieces = []
    # groups in order of first appearance; a method's rows are contiguous inside a block, so order is kept
    for _, rows in published.groupby(["dataset", "scale", "model", "component", "variant"], sort=False):
        pieces.append(rows)
        if rows["model"].iloc[0] in models:
            pieces.append(rows.assign(model=rows["model"].map(official_key), label=rows["label"] + LABEL_SUFFIX))
    return pd.concat(pieces, ignore_index=True)
