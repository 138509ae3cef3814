"""Results of several training seeds for one cell, reduced to one row: the mean, the sample std and the seed count.

A cell (model, component, variant, dataset, scale, metric) may come from several result files that differ only in
the training seed (the sidecar's `seed`; a file without one counts as one seed of its own). Two files for the same
cell and the same seed are an error naming both: one of them would be silently dropped or double-counted.

Per cell: `reproduced` is the mean over the seeds that measured the metric, `std` their sample standard deviation
(ddof 1; NaN for a single seed), `n_seeds` how many went into the mean (0 when none measured it; the seeds' reasons
are then kept). All seeds of a cell must report the same image count: a mean over different image sets is no
seed-to-seed spread.
"""

from __future__ import annotations

import math

import pandas as pd

from repro.tables.published import KEY

AGGREGATED_COLUMNS = [*KEY, "reproduced", "std", "n_seeds", "reason", "protocol", "n_images", "git_sha", "result_file"]


def _distinct(values, sep: str) -> str:
    return sep.join(dict.fromkeys(str(v) for v in values if str(v)))


def _check_one_per_seed(results: pd.DataFrame) -> None:
    twice = results[results.duplicated([*KEY, "seed"], keep=False)]
    if twice.empty:
        return
    first = twice.iloc[0]
    same = twice[(twice[[*KEY, "seed"]] == first[[*KEY, "seed"]]).all(axis=1)]
    seed = first["seed"] or "none recorded"
    raise ValueError(f"two results for the same cell {dict(first[KEY])} and the same seed ({seed}): "
                     f"{list(same['result_file'])}")


def _image_count(group: pd.DataFrame):
    counts = set(group["n_images"].dropna())
    if len(counts) > 1:
        raise ValueError(f"the seeds of cell {dict(group.iloc[0][KEY])} were measured on different image counts "
                         f"{sorted(counts)}: {list(group['result_file'])}")
    return counts.pop() if counts else None


def aggregate_seeds(results: pd.DataFrame) -> pd.DataFrame:
    """One row per cell from per-file rows with a `seed` column ("" where the file records none); see the module."""
    if results.empty:
        return pd.DataFrame(columns=AGGREGATED_COLUMNS)
    _check_one_per_seed(results)
    rows = []
    for _, group in results.groupby(KEY, sort=False, dropna=False):
        measured = group["reproduced"].dropna()
        n = len(measured)
        rows.append({
            **group.iloc[0][KEY].to_dict(),
            "reproduced": float(measured.mean()) if n else math.nan,
            "std": float(measured.std(ddof=1)) if n >= 2 else math.nan,
            "n_seeds": n,
            "reason": "" if n else _distinct(group["reason"], "; "),
            "protocol": _distinct(group["protocol"], ", "),
            "n_images": _image_count(group),
            "git_sha": _distinct(group["git_sha"], ", "),
            "result_file": _distinct(group["result_file"], "; "),
        })
    return pd.DataFrame.from_records(rows, columns=AGGREGATED_COLUMNS)
