"""Per-image evaluation of a registered network on an SR benchmark, written as CSV (one row per image + a mean row).

Protocol (docs/protocol.md): HR cropped to a multiple of the scale, LR = MATLAB bicubic, the network output is
clamped and rounded to uint8, then measured by the frozen protocol of ``repro.metrics``. Grayscale images (Set14's
bridge) go through the network as three equal channels; the output's channel mean is their gray value, measured on
its own channel as the literature does.

The caller names the output CSV (the workflow's rule does); the JSON sidecar defaults to the same path with a
``.json`` suffix, where ``repro.tables`` looks for it. Rows are appended to ``<csv stem>.partial.csv`` beside the CSV
as they are computed, so an interrupted run resumes where it stopped (for the same model, checkpoint and protocol)
instead of starting over.
"""

from __future__ import annotations

import csv
import json
import math
import platform
import subprocess
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from repro import build_model
from repro.data.io import as_rgb, read_image
from repro.data.prepare import SRPair, load_pairs, make_pair
from repro.data.registry import get_dataset, image_files, locate


@dataclass(frozen=True)
class OutputPaths:
    """Where one evaluation writes: the result files, and the partial ones it resumes from."""

    csv: Path
    json: Path
    partial_csv: Path
    partial_json: Path


def output_paths(out_csv: str | Path, out_json: str | Path | None = None) -> OutputPaths:
    """The files of an evaluation writing ``out_csv``; the one place their names are derived.

    Args:
        out_csv: the per-image CSV, ending in ``.csv``.
        out_json: the sidecar; default ``out_csv`` with a ``.json`` suffix (where ``repro.tables`` reads it).
    """
    out_csv = Path(out_csv)
    if out_csv.suffix != ".csv" or out_csv.is_dir():
        raise ValueError(f"{out_csv}: the evaluation output must be a .csv file path (got a folder or another suffix)")
    out_json = out_csv.with_suffix(".json") if out_json is None else Path(out_json)
    if out_json == out_csv:
        raise ValueError(f"{out_json}: the JSON sidecar cannot be the CSV itself")
    return OutputPaths(csv=out_csv, json=out_json, partial_csv=out_csv.with_suffix(".partial.csv"),
                       partial_json=out_csv.with_suffix(".partial.json"))


def csv_in_folder(out_dir: str | Path, dataset: str, scale: int) -> Path:
    """``<out_dir>/<Set>_x<scale>.csv``, the layout the workflow uses, for runs by hand (``--out DIR``)."""
    return Path(out_dir) / f"{get_dataset(dataset).name}_x{scale}.csv"


@dataclass(frozen=True)
class EvalResult:
    csv_path: Path
    json_path: Path
    means: dict[str, float]
    missing: dict[str, str]


def to_tensor(img: np.ndarray) -> torch.Tensor:
    """uint8 HxW or HxWx3 -> float [1, 3, H, W] in [0, 1]."""
    return torch.from_numpy(as_rgb(img).astype(np.float32) / 255.0).permute(2, 0, 1).unsqueeze(0).contiguous()


def to_uint8(out: torch.Tensor, *, gray: bool) -> np.ndarray:
    """[1, 3, H, W] float -> uint8 HxWx3 (or HxW, the channel mean, for a grayscale reference)."""
    arr = out[0].detach().float().clamp(0, 1).mul(255).cpu().numpy().transpose(1, 2, 0).astype(np.float64)
    if gray:
        arr = arr.mean(axis=2)
    return np.floor(arr + 0.5).astype(np.uint8)


def load_checkpoint(model: torch.nn.Module, path: str | Path) -> None:
    """Load a checkpoint saved by the harness ({'model': ...}) or an official one ({'params_ema'|'params': ...})."""
    state = torch.load(path, map_location="cpu", weights_only=True)
    for key in ("model", "params_ema", "params", "state_dict"):
        if isinstance(state, dict) and key in state and isinstance(state[key], dict):
            state = state[key]
            break
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as err:
        raise RuntimeError(f"{path}: checkpoint does not fit the model: {err}") from err


def tiled_forward(model: torch.nn.Module, lr: torch.Tensor, scale: int, *, tile: int, context: int = 16) -> torch.Tensor:
    """Run ``model`` on LR tiles of ``tile`` pixels, each with ``context`` extra pixels around it, keeping the centres.

    Exact for networks whose receptive field reaches at most ``context`` LR pixels (convolutional ones); for global
    networks (attention windows, 2D scans) each tile only sees its surroundings, so use the largest tile that fits.
    """
    _, _, h, w = lr.shape
    if tile <= 0 or context < 0:
        raise ValueError(f"tile must be positive and context non-negative, got tile={tile}, context={context}")
    if tile >= max(h, w):
        return model(lr)
    out = lr.new_zeros(lr.shape[0], 3, h * scale, w * scale)
    for y in range(0, h, tile):
        for x in range(0, w, tile):
            y0, x0 = max(y - context, 0), max(x - context, 0)
            y1, x1 = min(y + tile + context, h), min(x + tile + context, w)
            patch = model(lr[..., y0:y1, x0:x1])
            core_h, core_w = min(tile, h - y), min(tile, w - x)
            out[..., y * scale:(y + core_h) * scale, x * scale:(x + core_w) * scale] = patch[
                ..., (y - y0) * scale:(y - y0 + core_h) * scale, (x - x0) * scale:(x - x0 + core_w) * scale]
    return out


def _git_sha() -> str:
    try:
        return subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                              check=True, cwd=Path(__file__).parent).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def _versions() -> dict[str, str]:
    import pyiqa

    return {"python": platform.python_version(), "torch": torch.__version__, "pyiqa": pyiqa.__version__,
            "numpy": np.__version__}


def iter_pairs(dataset: str, scale: int, *, data_mirror, data_dir, prepared_dir) -> list[tuple[str, object]]:
    """(name, loader) per image; loaders read and degrade lazily so a large set never sits in memory."""
    if prepared_dir is not None:
        return [(p.name, (lambda p=p: p)) for p in load_pairs(prepared_dir, scale)]
    folder = locate(dataset, data_mirror=data_mirror, data_dir=data_dir)
    return [(f.stem, (lambda f=f: make_pair(read_image(f), scale, name=str(f)))) for f in image_files(folder)]


def _resume(paths: OutputPaths, run_key: dict, columns: list[str]) -> dict[str, dict]:
    """The rows a stopped run of the same ``run_key`` left in the partial CSV; otherwise start a fresh partial CSV."""
    if paths.partial_json.exists() and paths.partial_csv.exists() and json.loads(paths.partial_json.read_text()) == run_key:
        with open(paths.partial_csv) as fh:
            return {r["image"]: r for r in csv.DictReader(fh)}
    paths.partial_json.write_text(json.dumps(run_key))
    paths.partial_csv.write_text(",".join(columns) + "\n")
    return {}


def evaluate(model_name: str, dataset: str, scale: int, out_csv: str | Path, *, out_json: str | Path | None = None,
             data_mirror: str | Path | None = None, data_dir: str | Path = "data", prepared_dir: str | Path | None = None,
             checkpoint: str | Path | None = None, overrides: dict | None = None, metric_weights: str | Path | None = None,
             device: str = "cpu", tile: int | None = None, metrics: tuple[str, ...] | None = None,
             progress: bool = True) -> EvalResult:
    """Evaluate ``model_name`` on ``dataset`` at ``scale``; writes the per-image CSV and its JSON sidecar.

    Args:
        model_name, dataset, scale: what to evaluate (registry names, SR scale).
        out_csv: the per-image CSV to write (``csv_in_folder`` gives the workflow's layout).
        out_json: the sidecar; default ``out_csv`` with a ``.json`` suffix.
        prepared_dir: a folder made by ``prepare`` (HR/, LR/); without one the set is located and degraded here.
        metrics: a subset of the protocol's metrics (default: all).
        tile: run large images in LR tiles of this size.
    """
    from repro.metrics import get_protocol

    spec = get_dataset(dataset)
    if spec.task != "sr":
        raise ValueError(f"evaluate: {spec.name} is a {spec.task} set; SR evaluation needs an SR set")
    paths = output_paths(out_csv, out_json)
    for path in (paths.csv, paths.json):
        path.parent.mkdir(parents=True, exist_ok=True)
    stem = paths.csv.stem

    model = build_model(model_name, scale=scale, **(overrides or {}))
    if checkpoint is not None:
        load_checkpoint(model, checkpoint)
    model.eval().to(device)
    protocol = get_protocol("sr", scale=scale, metric_weights=metric_weights, device=device, metrics=metrics)
    columns = ["image", *protocol.metrics]
    run_key = {"model": model_name, "overrides": overrides or {}, "checkpoint": str(checkpoint) if checkpoint else None,
               "protocol": protocol.name, "metrics": list(protocol.metrics), "tile": tile}

    done = _resume(paths, run_key, columns)

    pairs = iter_pairs(spec.name, scale, data_mirror=data_mirror, data_dir=data_dir, prepared_dir=prepared_dir)
    rows = []
    with open(paths.partial_csv, "a", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=columns)
        for name, load in tqdm(pairs, desc=f"{model_name} {stem}", disable=not progress, unit="img"):
            if name in done:
                rows.append({k: float(v) if k != "image" else v for k, v in done[name].items()})
                continue
            pair: SRPair = load()
            with torch.no_grad():
                lr = to_tensor(pair.lr).to(device)
                sr = model(lr) if tile is None else tiled_forward(model, lr, scale, tile=tile)
            scores = protocol.compute(to_uint8(sr, gray=pair.hr.ndim == 2), pair.hr)
            row = {"image": name, **{m: float(scores[m]) for m in protocol.metrics}}
            writer.writerow(row)
            fh.flush()
            rows.append(row)

    means, undefined = {}, {}
    for m in protocol.metrics:
        values = np.array([r[m] for r in rows], dtype=np.float64)
        # A metric can be undefined for some images (SAM of a grayscale image): the mean is over the others, and
        # the sidecar says which images were left out. A metric missing altogether stays NaN.
        means[m] = float(np.nanmean(values)) if not np.isnan(values).all() else math.nan
        if m not in protocol.missing and np.isnan(values).any():
            names = [r["image"] for r, v in zip(rows, values) if np.isnan(v)]
            undefined[m] = f"undefined for {len(names)} of {len(rows)} images ({', '.join(names)}); mean over the rest"
    with open(paths.csv, "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=columns)
        writer.writeheader()
        writer.writerows(rows)
        writer.writerow({"image": "mean", **means})
    meta = {"model": model_name, "dataset": spec.name, "scale": scale, "protocol": protocol.name,
            "n_images": len(rows), "missing": dict(protocol.missing), "undefined": undefined, "checkpoint": run_key["checkpoint"],
            "overrides": run_key["overrides"], "tile": tile, "device": device, "threads": torch.get_num_threads(), "git_sha": _git_sha(),
            "versions": _versions()}
    paths.json.write_text(json.dumps(meta, indent=2, default=str) + "\n")
    paths.partial_csv.unlink()
    paths.partial_json.unlink()
    return EvalResult(csv_path=paths.csv, json_path=paths.json, means=means, missing=dict(protocol.missing))


def format_means(result: EvalResult) -> str:
    def fmt(v: float) -> str:
        return "nan" if math.isnan(v) else f"{v:.4f}"

    return f"PSNR {fmt(result.means.get('psnr', math.nan))} dB  SSIM {fmt(result.means.get('ssim', math.nan))}"
