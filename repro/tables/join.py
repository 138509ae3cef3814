"""Join reproduced cells with published ones: delta = reproduced - published and a status per cell.

Statuses:
    match          |delta| within the match band: by default half a unit of the last digit the source printed,
                   i.e. the reproduced number rounds to the published one (a config may widen it, e.g. 0.01 dB for
                   official weights under the same protocol).
    within_noise   |delta| within the noise band of the metric (config, e.g. 0.06 dB PSNR for retrained models; with
                   several seeds at least twice their std, see below).
    below / above  a larger miss, by the sign of delta (for lower-is-better metrics "below" is the favourable side).
    missing        nothing reproduced for a published cell (NaN, or no result file); `reason` says why (for a dataset
                   the caller declares absent, its reason, e.g. "Manga109 not in the data mirror or data_dir").
    not_published  reproduced, but the source prints no number for it (a dash, or a row the paper does not have).

Several training seeds: `reproduced` is their mean, `std` the sample standard deviation, `n_seeds` the count
(`repro.tables.seeds`). With two or more seeds the noise band is max(config band, 2 * std): the config's band is an
assumed run-to-run noise, the seeds' spread a measured one, and a delta within two standard deviations is what
retraining with another seed could give. The match band is never widened.

Tolerances come from the caller (config), per metric, with an optional "default" entry:
    {"psnr": {"abs": 0.06}, "ssim": {"abs": 0.002}, "default": {"rel": 0.05}}
A bare number means an absolute band; `rel` is relative to |published|; with both, the wider band applies. An optional
`match` entry gives the match band explicitly. The comparison uses the unrounded values, so a miss never turns into a
match through rounding.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import pandas as pd

from repro.tables.published import KEY

STATUSES = ("match", "within_noise", "below", "above", "missing", "not_published")
JOINED_COLUMNS = ["table_id", *KEY, "label", "reproduced", "std", "n_seeds", "published", "delta", "band", "status",
                  "reason", "protocol", "published_protocol", "source", "n_images", "git_sha", "result_file", "note",
                  "published_flag", "decimals", "order"]

_FLOAT_SLACK = 1e-12

Tolerances = Mapping[str, float | Mapping[str, float]]


def noise_band(metric: str, published: float, tolerances: Tolerances) -> float:
    """The within-noise band for one published value."""
    rule = tolerances.get(metric, tolerances.get("default"))
    if rule is None:
        raise KeyError(f"no tolerance for metric {metric!r} (and no 'default' entry) in {dict(tolerances)}")
    if not isinstance(rule, Mapping):
        return float(rule)
    unknown = set(rule) - {"abs", "rel", "match"}
    if unknown:
        raise ValueError(f"tolerance for {metric!r} has unknown key(s) {sorted(unknown)}; use abs, rel, match")
    return max(float(rule.get("abs", 0.0)), float(rule.get("rel", 0.0)) * abs(published))


def match_band(metric: str, decimals: int, tolerances: Tolerances) -> float:
    """Half a unit in the last printed digit, unless the config names an explicit match band."""
    rule = tolerances.get(metric, tolerances.get("default"))
    if isinstance(rule, Mapping) and "match" in rule:
        return float(rule["match"])
    return 0.5 * 10.0 ** (-decimals)


def seed_band(band: float, std: float, n_seeds: int) -> float:
    """The noise band widened to twice the seeds' sample std when there are two or more seeds."""
    if n_seeds >= 2 and not math.isnan(std):
        return max(band, 2.0 * std)
    return band


def cell_status(reproduced: float, published: float, band: float, match: float) -> str:
    """Status of one cell (see the module docstring); NaN means absent."""
    if math.isnan(reproduced):
        return "missing"
    if math.isnan(published):
        return "not_published"
    # The slack only absorbs binary representation error (26.7141 - 26.7741 is not exactly -0.06 in floating point);
    # printed values have at most six decimals, so it cannot widen a band in any way that shows.
    miss = abs(reproduced - published) - _FLOAT_SLACK * max(1.0, abs(published))
    if miss <= match:
        return "match"
    if miss <= band:
        return "within_noise"
    delta = reproduced - published
    return "below" if delta < 0 else "above"


def join(published: pd.DataFrame, reproduced: pd.DataFrame, tolerances: Tolerances,
         absent_datasets: Mapping[str, str] | None = None) -> pd.DataFrame:
    """Outer join on the cell key; one row per cell with reproduced, published, delta, band, status and provenance.

    Rows keep the published order (an `order` column if the caller set one, else file order); cells only reproduced
    come last. `absent_datasets` maps a dataset to the reason its cells have no result file.
    """
    if "order" not in published.columns:
        published = published.assign(order=range(len(published)))
    cells = published.merge(reproduced, on=KEY, how="outer", indicator=True)
    only_reproduced = cells["_merge"] == "right_only"
    cells.loc[only_reproduced, "label"] = [
        f"{component}: {variant}" if variant else model
        for model, component, variant in cells.loc[only_reproduced, ["model", "component", "variant"]].itertuples(index=False)
    ]
    cells.loc[only_reproduced, "order"] = published["order"].max() + 1 + cells.index[only_reproduced]
    for column in ("reason", "protocol", "protocol_id", "source", "git_sha", "result_file", "note"):
        cells[column] = cells[column].fillna("")
    no_file = cells["_merge"] == "left_only"
    cells.loc[no_file, "reason"] = [(absent_datasets or {}).get(d, "no result file") for d in cells.loc[no_file, "dataset"]]
    cells["n_seeds"] = cells["n_seeds"].fillna(0).astype(int)
    cells["std"] = cells["std"].astype(float)
    cells["published_flag"] = ""
    cells["published"] = cells["published"].astype(float)
    cells["reproduced"] = cells["reproduced"].astype(float)
    cells["delta"] = cells["reproduced"] - cells["published"]
    # Precision of rows the source does not print: the most common precision of that metric in this table.
    typical = published.groupby("metric")["decimals"].agg(lambda d: int(d.mode().iloc[0])).to_dict()
    cells["decimals"] = [
        int(d) if not pd.isna(d) and not math.isnan(p) else typical.get(m, 4)
        for d, p, m in zip(cells["decimals"], cells["published"], cells["metric"])
    ]
    cells["band"] = [
        float("nan") if math.isnan(p) else seed_band(noise_band(m, p, tolerances), s, n)
        for m, p, s, n in zip(cells["metric"], cells["published"], cells["std"], cells["n_seeds"])
    ]
    cells["status"] = [
        cell_status(r, p, b, match_band(m, d, tolerances))
        for r, p, b, m, d in zip(cells["reproduced"], cells["published"], cells["band"], cells["metric"], cells["decimals"])
    ]
    cells.loc[(cells["status"] == "missing") & (cells["reason"] == ""), "reason"] = "no result"
    cells = cells.rename(columns={"protocol_id": "published_protocol"}).sort_values("order", kind="stable")
    return cells.reset_index(drop=True).reindex(columns=JOINED_COLUMNS)
