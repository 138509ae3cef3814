"""Reproduced results, read into the same long format as the published tables.

Evaluation: one CSV per (model, dataset, scale), `results/eval/<model>/<Dataset>_x<s>.csv`, with columns
`image, <metric>...` (NaN where not measured) and a last row whose image is `mean`, plus a sidecar
`<Dataset>_x<s>.json` with `model, dataset, scale, protocol, n_images, missing, git_sha, versions`; `missing` maps a
metric to the reason it was not measured. Inpainting (Table 2) writes `<Set>_inpaint.csv` with `scale: null` (the
published table's empty scale), its `mean` row's `fid` the set-level FID and the sidecar's `fid` its image count
(read by `repro/tables/table2.py`). Profiling (Table 4): one JSON per model with `params_m, flops_g,
train_time_s, infer_time_s, l2_hit_pct, dram_read_gbps, device, missing` (and, from `python -m repro profile`, a
`protocol` per column and the device, input and kernel forms that `repro/tables/table4.py` checks).

Callers pass the files explicitly, as a list whose items are a file (the row is named by the sidecar's `model`, and for
ablations its `component`/`variant`) or a pair (row name, file), or as a mapping from a row name to the file. A row
name is a model (`"bicubic"`) or, for Table 5, `"[model:]component=variant"` (`"shift=uni"`, model defaulting to
diffrwkvir). One file may serve several rows under different names (the "Ours" run as each Table 5 block's own row).

The sidecar's optional `train_seed` (else `seed`) is the training seed; files that differ only in it are reduced to one row per cell by
`repro.tables.seeds.aggregate_seeds` (mean, sample std, seed count).
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from pathlib import Path

import pandas as pd

from repro.tables.seeds import aggregate_seeds

# Table 5 ablates DiffRWKVIR; its rows are keyed by component and variant.
ABLATION_MODEL = "diffrwkvir"
PROFILE_METRICS = ("params_m", "flops_g", "train_time_s", "infer_time_s", "l2_hit_pct", "dram_read_gbps")

Files = Mapping[str, str | Path] | Sequence[str | Path | tuple[str, str | Path]]


def _named(files: Files) -> list[tuple[str | None, Path]]:
    if isinstance(files, Mapping):
        return [(str(name), Path(path)) for name, path in files.items()]
    if isinstance(files, (str, Path)):
        raise TypeError("pass a list of result files (or a mapping name -> file), not a single path")
    # a pair names its row; a plain path is named by its sidecar
    return [(str(item[0]), Path(item[1])) if isinstance(item, (tuple, list)) else (None, Path(item)) for item in files]


def _seed(meta: dict) -> str:
    """The training seed as a key ("" when the sidecar records none: such a file counts as one seed).

    `python -m repro evaluate` writes it as `train_seed` (from the checkpoint's config); `seed` there is the noise
    seed of a stage-2 model, which the workflow sets to the training seed, and older sidecars have only that.
    """
    seed = meta.get("train_seed", meta.get("seed"))
    return "" if seed is None else str(seed)


def _row_name(name: str | None, meta: dict, origin: Path) -> dict[str, str]:
    """model/component/variant of a result, from the caller's name if given, else from its metadata."""
    if name is not None and "=" in name:
        model, _, switch = name.rpartition(":")
        component, variant = switch.split("=", 1)
        return {"model": model or ABLATION_MODEL, "component": component, "variant": variant}
    model = name if name is not None else meta.get("model")
    if not model:
        raise ValueError(f"{origin}: no model name (sidecar lacks 'model' and the caller gave none)")
    return {"model": str(model), "component": str(meta.get("component", "")), "variant": str(meta.get("variant", ""))}


def _read_json(path: Path) -> dict:
    if not path.is_file():
        raise FileNotFoundError(f"result metadata not found: {path}")
    with open(path) as f:
        return json.load(f)


def _protocol_of(protocol: str | Mapping[str, str] | None, metric: str) -> str:
    if isinstance(protocol, Mapping):
        return str(protocol.get(metric, ""))
    return "" if protocol is None else str(protocol)


def _value(raw) -> float:
    return float("nan") if raw is None else float(raw)


def _scale(raw) -> str:
    """The scale as the published tables key it: "4", or "" for a task without one (inpainting writes null)."""
    return "" if raw is None or raw == "" else str(int(raw))


def read_eval(path: str | Path, name: str | None = None) -> pd.DataFrame:
    """One evaluation CSV (and its JSON sidecar) as long rows: key columns, `reproduced`, `reason`, `protocol`, ..."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"evaluation results not found: {path}")
    meta = _read_json(path.with_suffix(".json"))
    table = pd.read_csv(path)
    if "image" not in table.columns:
        raise ValueError(f"{path}: no 'image' column")
    if table.empty or str(table["image"].iloc[-1]) != "mean":
        raise ValueError(f"{path}: the last row must be the per-dataset mean (image == 'mean')")
    mean = table.iloc[-1]
    missing = meta.get("missing") or {}
    for key in ("dataset", "scale"):
        if key not in meta:
            raise ValueError(f"{path.with_suffix('.json')}: sidecar lacks {key!r}")
    row = _row_name(name, meta, path)
    records = []
    for metric in [c for c in table.columns if c != "image"] + [m for m in missing if m not in table.columns]:
        value = _value(mean[metric]) if metric in table.columns else float("nan")
        reason = "" if not math.isnan(value) else str(missing.get(metric, "not measured (no reason recorded)"))
        records.append({
            **row, "dataset": str(meta["dataset"]), "scale": _scale(meta["scale"]), "metric": metric,
            "reproduced": value, "reason": reason, "protocol": _protocol_of(meta.get("protocol"), metric),
            "n_images": meta.get("n_images", len(table) - 1), "git_sha": str(meta.get("git_sha", "")),
            "result_file": str(path), "seed": _seed(meta),
        })
    return pd.DataFrame.from_records(records)


def read_profile(path: str | Path, name: str | None = None) -> pd.DataFrame:
    """One profile JSON (Table 4) as long rows; `protocol` is the JSON's per-column `protocol` (what each was measured
    under, as `python -m repro profile` writes it), else its `device`."""
    path = Path(path)
    meta = _read_json(path)
    missing = meta.get("missing") or {}
    model = name or meta.get("model") or path.stem
    records = []
    for metric in PROFILE_METRICS:
        value = _value(meta.get(metric))
        reason = "" if not math.isnan(value) else str(missing.get(metric, "not measured (no reason recorded)"))
        records.append({
            "model": str(model), "component": "", "variant": "", "dataset": "", "scale": "", "metric": metric,
            "reproduced": value, "reason": reason, "protocol": _protocol_of(meta.get("protocol", meta.get("device")), metric),
            "n_images": None, "git_sha": str(meta.get("git_sha", "")), "result_file": str(path), "seed": _seed(meta),
        })
    return pd.DataFrame.from_records(records)


def _per_cell(frames: list[pd.DataFrame]) -> pd.DataFrame:
    return aggregate_seeds(pd.concat(frames, ignore_index=True) if frames else pd.DataFrame())


def read_eval_files(files: Files) -> pd.DataFrame:
    """All evaluation results the caller names, one row per cell (several seeds aggregated, see `repro.tables.seeds`)."""
    return _per_cell([read_eval(path, name) for name, path in _named(files)])


def read_profile_files(files: Files) -> pd.DataFrame:
    """All profile JSONs the caller names, one row per cell (like `read_eval_files`)."""
    return _per_cell([read_profile(path, name) for name, path in _named(files)])
