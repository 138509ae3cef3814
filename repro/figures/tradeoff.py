"""PSNR against model size and against inference time, one point per model, from evaluation results.

Input: the JSON sidecars ``python -m repro evaluate`` writes (``results/eval/<model>/seed<k>/<Dataset>_x<s>.json``),
each beside its per-image CSV (same path, ``.csv``). A sidecar gives ``n_params`` (parameters of the network
evaluated) and ``forward_seconds`` (``median``: the network's time per image, metrics excluded); the PSNR is the CSV's
``mean`` row, read by ``repro.tables.results.read_eval`` as the tables read it.

- Only the sidecars of the chosen dataset (and scale) count; the others are passed over silently.
- A sidecar without ``n_params`` (or without a timed image, ``forward_seconds.median``) predates those fields: it is
  left out of that figure with a ``SkippedResult`` warning naming the file.
- One point per model (and ablation ``component=variant``): several files of one model (the training seeds) give
  the mean PSNR and, with two or more, an error bar of their sample standard deviation (ddof 1, as
  ``repro.tables.seeds`` reports seeds); the time is the mean of the files' medians. Their parameter counts must agree.
- A model without parameters (Bicubic) cannot sit on the log axis of parameters; it is drawn there as a horizontal
  reference line, and plotted as a point against time.
- Points are labelled with the paper's row label (the registry descriptor's ``paper``), else the model name.

The titles name the dataset, the scale, the protocol and the device and threads recorded in the sidecars; times
measured on different devices or thread counts are plotted together only with a warning.
"""

from __future__ import annotations

import dataclasses
import json
import math
import statistics
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from repro.data.registry import get_dataset
from repro.figures.output import check_png_path, csv_beside, save_png, write_csv
from repro.figures.tradeoff_draw import draw_tradeoff

QUANTITIES = ("params", "seconds")
POINT_COLUMNS = ("label", "model", "component", "variant", "dataset", "scale", "n_seeds", "psnr_mean", "psnr_std")
CSV_COLUMNS = {
    "params": (*POINT_COLUMNS, "n_params", "drawn_as", "files"),
    "seconds": (*POINT_COLUMNS, "seconds_per_image", "device", "threads", "files"),
}


class SkippedResult(UserWarning):
    """An evaluation result left out of a figure because its sidecar lacks what the figure plots."""


@dataclass(frozen=True)
class EvalRecord:
    """What the figures need from one evaluation (a sidecar and the mean row of its CSV)."""

    path: Path
    model: str
    component: str
    variant: str
    dataset: str
    scale: int
    protocol: str
    psnr: float
    n_params: int | None
    seconds: float | None  # median network time per image
    device: str
    threads: int | None


@dataclass(frozen=True)
class TradeoffPoint:
    """One model's point: the mean over its files (seeds)."""

    label: str
    model: str
    component: str
    variant: str
    dataset: str
    scale: int
    records: tuple[EvalRecord, ...]
    x: float  # parameters or seconds per image

    @property
    def n_seeds(self) -> int:
        return len(self.records)

    @property
    def psnr_mean(self) -> float:
        return statistics.fmean(r.psnr for r in self.records)

    @property
    def psnr_std(self) -> float:
        """Sample standard deviation over the seeds; NaN for one seed (no error bar)."""
        return statistics.stdev(r.psnr for r in self.records) if self.n_seeds >= 2 else math.nan


def setups_text(records: Sequence[EvalRecord]) -> str:
    """The device(s) and thread count(s) of ``records``, e.g. ``"cpu, 2 threads"``."""
    seen = dict.fromkeys((r.device, r.threads) for r in records)
    return "; ".join(f"{d}, {t} thread{'s' if t != 1 else ''}" if t is not None else d for d, t in seen)


def _psnr_of(csv_path: Path) -> float:
    from repro.tables.results import read_eval  # the tables' reader: the same mean row, the same checks

    rows = read_eval(csv_path)
    psnr = rows[rows["metric"] == "psnr"]["reproduced"]
    if psnr.empty or math.isnan(float(psnr.iloc[0])):
        raise ValueError(f"{csv_path}: the mean row has no PSNR")
    return float(psnr.iloc[0])


def _load_sidecar(json_path: Path) -> dict:
    if not json_path.is_file():
        raise FileNotFoundError(f"{json_path}: no such evaluation sidecar")
    try:
        meta = json.loads(json_path.read_text())
    except json.JSONDecodeError as err:
        raise ValueError(f"{json_path}: not a JSON sidecar ({err})") from err
    if not isinstance(meta, dict):
        raise ValueError(f"{json_path}: not a JSON sidecar (it holds a {type(meta).__name__})")
    return meta


def read_record(json_path: str | Path) -> EvalRecord:
    """One sidecar and the PSNR of the CSV beside it; fields the figures can do without are None when absent."""
    json_path = Path(json_path)
    meta = _load_sidecar(json_path)
    for key in ("model", "dataset", "scale"):
        if key not in meta:
            raise ValueError(f"{json_path}: the sidecar lacks {key!r}")
    csv_path = json_path.with_suffix(".csv")
    if not csv_path.is_file():
        raise FileNotFoundError(f"{csv_path}: the per-image CSV of {json_path} is missing")
    timing = meta.get("forward_seconds")
    seconds = timing.get("median") if isinstance(timing, dict) else None
    n_params = meta.get("n_params")
    threads = meta.get("threads")
    return EvalRecord(path=json_path, model=str(meta["model"]), component=str(meta.get("component", "") or ""),
                      variant=str(meta.get("variant", "") or ""), dataset=str(meta["dataset"]), scale=int(meta["scale"]),
                      protocol=str(meta.get("protocol", "")), psnr=_psnr_of(csv_path),
                      n_params=None if n_params is None else int(n_params),
                      seconds=None if seconds is None else float(seconds), device=str(meta.get("device", "unknown")),
                      threads=None if threads is None else int(threads))


def select_records(json_paths: Sequence[str | Path], dataset: str, scale: int | None = None) -> list[EvalRecord]:
    """The records of ``dataset`` (and ``scale``; default: the only scale among them), each file once."""
    name = get_dataset(dataset).name
    paths = list({Path(p).resolve(): Path(p) for p in json_paths}.values())  # a file named twice counts once
    # the dataset and scale are read first, so that another set's CSVs are never opened
    metas = {p: _load_sidecar(p) for p in paths}
    wanted = [p for p in paths if metas[p].get("dataset") == name]
    scales = sorted({int(metas[p]["scale"]) for p in wanted if "scale" in metas[p]})
    if scale is None:
        if len(scales) > 1:
            raise ValueError(f"the {name} results are at several scales ({', '.join(f'x{s}' for s in scales)}); "
                             "pass --scale")
        scale = scales[0] if scales else None
    # a sidecar without a scale is kept, for read_record to refuse by name
    records = [read_record(p) for p in wanted if "scale" not in metas[p] or int(metas[p]["scale"]) == scale]
    if not records:
        at = f" x{scale}" if scale is not None else ""
        raise ValueError(f"none of the {len(paths)} sidecars is a {name}{at} result")
    protocols = sorted({r.protocol for r in records})
    if len(protocols) > 1:
        raise ValueError(f"the {name} x{scale} results were measured under different protocols {protocols}; "
                         "their PSNRs are not comparable")
    return records


def paper_label(model: str) -> str:
    """The model's row label in the paper's tables (registry descriptor ``paper``), else its registry name."""
    from repro import get_descriptor

    try:
        return get_descriptor(model).paper or model
    except KeyError:  # a model no longer registered still gets a point, under its name
        return model


def _x_of(record: EvalRecord, quantity: str) -> float | None:
    """The record's parameters or seconds per image; None when its sidecar does not have them."""
    if quantity == "params":
        return None if record.n_params is None else float(record.n_params)
    return record.seconds


def tradeoff_points(records: Sequence[EvalRecord], quantity: str) -> list[TradeoffPoint]:
    """One point per model (and ablation variant) against ``quantity`` (``"params"`` or ``"seconds"``)."""
    if quantity not in QUANTITIES:
        raise ValueError(f"quantity must be one of {QUANTITIES}, got {quantity!r}")
    why = {"params": "no n_params (results older than that field?)",
           "seconds": "no forward_seconds median (results older than that field, or no image was timed)"}[quantity]
    groups: dict[tuple[str, str, str], list[EvalRecord]] = {}
    for record in records:
        if _x_of(record, quantity) is None:
            warnings.warn(f"{record.path}: the sidecar has {why}; left out of the PSNR-{quantity} figure",
                          SkippedResult, stacklevel=2)
            continue
        groups.setdefault((record.model, record.component, record.variant), []).append(record)
    points = []
    for (model, component, variant), group in groups.items():
        xs = [_x_of(r, quantity) for r in group]
        if quantity == "params" and len(set(xs)) > 1:
            raise ValueError(f"the results of {model} count different parameters ({sorted(set(xs))}): "
                             f"{', '.join(str(r.path) for r in group)}")
        label = paper_label(model) + (f" ({component}={variant})" if component else "")
        points.append(TradeoffPoint(label=label, model=model, component=component, variant=variant,
                                    dataset=group[0].dataset, scale=group[0].scale, records=tuple(group),
                                    x=statistics.fmean(xs)))
    return _distinct_labels(points)


def _distinct_labels(points: list[TradeoffPoint]) -> list[TradeoffPoint]:
    # two registry models may share a paper label (a light variant without its own row): name them apart
    counts: dict[str, int] = {}
    for p in points:
        counts[p.label] = counts.get(p.label, 0) + 1
    return [p if counts[p.label] == 1 else dataclasses.replace(p, label=f"{p.label} [{p.model}]") for p in points]


def point_rows(points: Sequence[TradeoffPoint], quantity: str) -> list[dict]:
    """The CSV rows of a figure's points."""
    rows = []
    for p in points:
        row = {"label": p.label, "model": p.model, "component": p.component, "variant": p.variant,
               "dataset": p.dataset, "scale": p.scale, "n_seeds": p.n_seeds, "psnr_mean": p.psnr_mean,
               "psnr_std": p.psnr_std, "files": ";".join(str(r.path) for r in p.records)}
        if quantity == "params":
            row |= {"n_params": int(p.x), "drawn_as": "line" if p.x <= 0 else "point"}
        else:
            row |= {"seconds_per_image": p.x, "device": "; ".join(dict.fromkeys(r.device for r in p.records)),
                    "threads": "; ".join(dict.fromkeys(str(r.threads) for r in p.records))}
        rows.append(row)
    return rows


def tradeoff_title(records: Sequence[EvalRecord], quantity: str) -> str:
    first = records[0]
    against = "parameters" if quantity == "params" else "inference time per image"
    return (f"{first.dataset} x{first.scale}: PSNR ({first.protocol}) against {against}\n"
            f"measured on {setups_text(records)}")


def make_tradeoff(json_paths: Sequence[str | Path], dataset: str, *, out_params: str | Path, out_time: str | Path,
                  scale: int | None = None) -> dict[str, tuple[Path, Path]]:
    """Draw both figures and write their CSVs; returns {"params": (PNG, CSV), "seconds": (PNG, CSV)}."""
    outputs = {"params": check_png_path(out_params), "seconds": check_png_path(out_time)}
    records = select_records(json_paths, dataset, scale)
    written = {}
    for quantity, png in outputs.items():
        points = tradeoff_points(records, quantity)
        used = [r for p in points for r in p.records]
        if not points:
            raise ValueError(f"no {records[0].dataset} x{records[0].scale} result has the fields the PSNR-{quantity} "
                             f"figure needs (see the warnings above)")
        if quantity == "seconds" and len({(r.device, r.threads) for r in used}) > 1:
            warnings.warn(f"the times were measured on different setups ({setups_text(used)}); they are not "
                          "comparable", UserWarning, stacklevel=2)
        fig = draw_tradeoff(points, quantity=quantity, title=tradeoff_title(used, quantity))
        written[quantity] = (save_png(fig, png), write_csv(csv_beside(png), CSV_COLUMNS[quantity],
                                                           point_rows(points, quantity)))
    return written
