"""Per-image evaluation of an inpainting network on a prepared set (Table 2), written as CSV + JSON sidecar.

Protocol ``inpaint-rgb-full-fp64`` (docs/protocol.md): the network sees cat(image * (1 - mask), mask) of the image
and its fixed mask from the set's manifest (``repro.data.inpaint``), pads inside its forward as the official
inpainting code does (numpy ``symmetric``), and its output is clamped, rounded to uint8 and the known pixels pasted
back before anything is measured: PSNR and SSIM on RGB over the whole image, LPIPS, and FID between the folder of
completed images and the folder of originals. FID needs the Inception weights (``metric_weights``); without them
it is missing with the reason. It is always reported with the number of images, and flagged below 2,000 images,
where FID is strongly biased (every set of the data mirror is far smaller).

Layout and resume follow ``repro.evaluate``: ``<out>.csv`` (one row per image, a last ``mean`` row whose ``fid`` is
the set-level FID), ``<out>.json``, partial files an interrupted run resumes from; the completed images go to
``save_images`` (default: ``<csv stem>_images/`` beside the CSV), which FID and the Fig. 9 grid read.
"""

from __future__ import annotations

import csv
import json
import math
import time
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from repro import build_model
from repro.data.io import write_png
from repro.data.manifest import sha256_file
from repro.evaluate import (
    Checkpoint,
    EvalResult,
    _git_sha,
    _resume,
    _versions,
    check_restoration_model,
    load_checkpoint,
    output_paths,
    read_checkpoint,
    resolve_model,
    timing_record,
    to_uint8,
    write_results,
)
from repro.metrics.protocol import FID_MIN_IMAGES


def masked_input(image: np.ndarray, hole: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
    """(lq, gt) for one image: lq = cat(image * (1 - mask), mask) [1, 4, H, W], gt [1, 3, H, W], both in [0, 1]."""
    gt = torch.from_numpy(image.astype(np.float32) / 255.0).permute(2, 0, 1).unsqueeze(0).contiguous()
    mask = torch.from_numpy(hole.astype(np.float32))[None, None]
    return torch.cat([gt * (1 - mask), mask], dim=1), gt


def paste_back(pred: np.ndarray, image: np.ndarray, hole: np.ndarray) -> np.ndarray:
    """The prediction inside the hole, the original pixels outside it (uint8 HxWx3)."""
    return np.where(hole[..., None], pred, image)


@torch.no_grad()
def complete(model: torch.nn.Module, image: np.ndarray, hole: np.ndarray, *, device: str | torch.device = "cpu",
             seed: int = 0, with_gt: bool = False) -> np.ndarray:
    """The completed image (uint8, known pixels pasted back) of one (image, hole) pair.

    Stage-2 networks start from noise drawn from a generator seeded with ``seed`` for this image alone, so the
    output depends neither on the other images nor on resuming. ``with_gt``: stage-1 networks (validation during
    training) encode the ground truth.
    """
    lq, gt = (t.to(device) for t in masked_input(image, hole))
    stage = model.descriptor.stage
    if stage == 1:
        if not with_gt:
            raise ValueError("a stage-1 network needs the ground truth (with_gt=True)")
        out = model(lq, gt)
    elif stage == 2:
        out = model(lq, generator=torch.Generator(device=device).manual_seed(seed))
    else:
        out = model(lq)
    return paste_back(to_uint8(out, gray=False), image, hole)


def evaluate_inpaint(model_name: str | None, dataset: str, prepared_dir: str | Path, out_csv: str | Path, *,
                     out_json: str | Path | None = None, checkpoint: str | Path | Checkpoint | None = None,
                     overrides: dict | None = None, weights: str | None = None, seed: int = 0,
                     save_images: str | Path | None = None, metric_weights: str | Path | None = None,
                     device: str = "cpu", progress: bool = True) -> EvalResult:
    """Evaluate an inpainting network on a set made by ``repro.data.inpaint.prepare_inpaint_set``.

    Args:
        model_name: registry name (default: a harness checkpoint's).
        dataset: the Table 2 set the prepared folder holds (``repro.data.inpaint.INPAINT_SETS``).
        prepared_dir: the prepared set (``images/``, ``masks/``, ``manifest.tsv``).
        out_csv, out_json: the per-image CSV and its sidecar (default: the CSV with ``.json``).
        checkpoint, weights, overrides: as in ``repro.evaluate.evaluate``.
        seed: the noise seed of stage-2 networks, the same for every image.
        save_images: where the completed images go (default ``<csv stem>_images`` beside the CSV).
        metric_weights: folder holding the LPIPS and FID weight files.
    """
    from repro.data.inpaint import INPAINT_SETS, load_inpaint_pairs
    from repro.metrics import get_protocol

    if dataset not in INPAINT_SETS:
        raise ValueError(f"evaluate-inpaint: unknown set {dataset!r}; Table 2's sets: {', '.join(INPAINT_SETS)}")
    prepared_dir = Path(prepared_dir)
    manifest = prepared_dir / "manifest.tsv"
    if not manifest.is_file():
        raise FileNotFoundError(f"{manifest}: no manifest; prepare the set first (python -m repro prepare-inpaint)")
    ckpt = checkpoint if isinstance(checkpoint, Checkpoint) or checkpoint is None else read_checkpoint(checkpoint)
    spec = resolve_model(model_name, None, overrides, ckpt)
    model_name, overrides = spec.name, spec.overrides
    desc = check_restoration_model(model_name, None, overrides, context="evaluate-inpaint", task="inpaint")
    weights_label = ckpt.select(weights)[0] if ckpt is not None else None
    paths = output_paths(out_csv, out_json)
    for path in (paths.csv, paths.json):
        path.parent.mkdir(parents=True, exist_ok=True)
    save_dir = Path(save_images) if save_images is not None else paths.csv.with_name(f"{paths.csv.stem}_images")
    save_dir.mkdir(parents=True, exist_ok=True)

    model = build_model(model_name, **overrides)
    if ckpt is not None:
        weights_label = load_checkpoint(model, ckpt, weights=weights)
    model.eval().to(device)
    protocol = get_protocol("inpaint", metric_weights=metric_weights, device=device)
    per_image = [m for m in protocol.metrics if m != "fid"]
    columns = ["image", *protocol.metrics]
    run_key = json.loads(json.dumps({
        "model": model_name, "overrides": overrides, "checkpoint": str(ckpt.path) if ckpt else None,
        "checkpoint_sha256": ckpt.sha256 if ckpt else None, "weights": weights_label,
        "seed": seed if desc.stage == 2 else None, "protocol": protocol.name, "prepared": str(prepared_dir),
        "manifest_sha256": sha256_file(manifest)}, default=str))
    done = _resume(paths, run_key, columns)

    pairs = load_inpaint_pairs(prepared_dir)
    rows, forward_seconds = [], []
    with open(paths.partial_csv, "a", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=columns)
        for pair in tqdm(pairs, desc=f"{model_name} {dataset}", disable=not progress, unit="img"):
            out_png = save_dir / f"{pair.name}.png"
            if pair.name in done and out_png.exists():
                rows.append({k: float(v) if k != "image" else v for k, v in done[pair.name].items()})
                continue
            start = time.perf_counter()
            completed = complete(model, pair.image, pair.hole, device=device, seed=seed)
            forward_seconds.append(time.perf_counter() - start)
            write_png(out_png, completed)
            scores = protocol.compute(completed, pair.image)
            row = {"image": pair.name, **{m: float(scores[m]) for m in per_image}, "fid": math.nan}
            if pair.name not in done:
                writer.writerow(row)
                fh.flush()
            rows.append(row)

    means = {m: float(np.mean([r[m] for r in rows])) for m in per_image}
    fid = protocol.compute_fid(save_dir, prepared_dir / "images")
    means["fid"] = fid
    n = len(rows)
    fid_warning = (f"FID over {n} images: FID is strongly biased below {FID_MIN_IMAGES} images; compare it only "
                   "between rows measured on the same images") if n < FID_MIN_IMAGES else None
    meta = {"model": model_name, "dataset": dataset, "scale": None, "protocol": protocol.name,
            "n_images": n, "missing": dict(protocol.missing),
            "fid": {"value": None if math.isnan(fid) else fid, "n_images": n, "warning": fid_warning},
            "prepared": str(prepared_dir), "manifest_sha256": run_key["manifest_sha256"],
            "checkpoint": run_key["checkpoint"], "weights": weights_label, "step": ckpt.step if ckpt else None,
            "train_seed": ckpt.train_seed if ckpt else None, "n_params": sum(p.numel() for p in model.parameters()),
            "forward_seconds": timing_record(forward_seconds),
            "model_overrides": overrides, "seed": run_key["seed"], "save_images": str(save_dir), "device": device,
            "threads": torch.get_num_threads(), "git_sha": _git_sha(), "versions": _versions()}
    write_results(paths, columns, rows, means, meta)
    return EvalResult(csv_path=paths.csv, json_path=paths.json, means=means, missing=dict(protocol.missing),
                      model=model_name, scale=1)
