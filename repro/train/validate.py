"""Validation during training: mean PSNR / SSIM of the frozen protocol on a held-out set (``train.val_set``).

SR networks are validated on an SR benchmark under ``sr-y601-crop{s}-fp64``; inpainting networks on a Table 2 set
with its fixed masks (prepared once under ``train.cache_dir``) under ``inpaint-rgb-full-fp64``, known pixels pasted
back. Only ``best.pt`` depends on validation; the workflow evaluates ``final.pt``.
"""

from __future__ import annotations

import functools
from pathlib import Path

import numpy as np
import torch
from torch import nn

from repro.data.prepare import SRPair


@functools.cache
def _pairs(dataset: str, scale: int, data_mirror: str | None, data_dir: str) -> tuple[SRPair, ...]:
    from repro.evaluate import iter_pairs

    return tuple(load() for _, load in iter_pairs(dataset, scale, data_mirror=data_mirror, data_dir=data_dir,
                                                  prepared_dir=None))


@functools.cache
def _inpaint_pairs(dataset: str, data_mirror: str | None, data_dir: str, cache_dir: str) -> tuple:
    from repro.data.inpaint import load_inpaint_pairs, prepare_inpaint_set

    folder = Path(cache_dir) / "validation" / dataset
    if not (folder / "manifest.tsv").is_file():
        prepare_inpaint_set(dataset, folder, data_mirror=data_mirror, data_dir=data_dir)
    return tuple(load_inpaint_pairs(folder))


@torch.no_grad()
def validate_inpaint(model: nn.Module, cfg: dict, device: torch.device) -> tuple[float, float]:
    """(mean PSNR, mean SSIM) of an inpainting ``model`` on ``train.val_set`` (stage 1 sees the ground truth)."""
    from repro.evaluate_inpaint import complete
    from repro.metrics import get_protocol

    protocol = get_protocol("inpaint", metrics=("psnr", "ssim"))
    tc = cfg["train"]
    pairs = _inpaint_pairs(tc["val_set"], cfg.get("data_mirror"), cfg.get("data_dir", "data"),
                           tc.get("cache_dir") or "results/cache/lr")
    scores = []
    for pair in pairs:
        out = complete(model, pair.image, pair.hole, device=device, seed=0, with_gt=True)
        s = protocol.compute(out, pair.image)
        scores.append((s["psnr"], s["ssim"]))
    psnr, ssim = np.mean(scores, axis=0)
    return float(psnr), float(ssim)


@torch.no_grad()
def validate(model: nn.Module, cfg: dict, device: torch.device) -> tuple[float, float]:
    """(mean PSNR, mean SSIM) of ``model`` on ``cfg["train"]["val_set"]`` under ``sr-y601-crop{s}-fp64``.

    Stage-2 models sample their IPR from a generator seeded per image, so validation never draws from the global RNG
    (a run resumed between two validations sees the same random numbers as one that never stopped). Stage-1 models
    are validated with the ground truth they encode, as in DiffIR's stage-1 training.
    """
    from repro.evaluate import to_tensor, to_uint8
    from repro.metrics import get_protocol

    if model.descriptor.task == "inpaint":
        return validate_inpaint(model, cfg, device)
    scale = cfg["scale"]
    protocol = get_protocol("sr", scale=scale, metrics=("psnr", "ssim"))
    stage = model.descriptor.stage
    scores = []
    for pair in _pairs(cfg["train"]["val_set"], scale, cfg.get("data_mirror"), cfg.get("data_dir", "data")):
        lr = to_tensor(pair.lr).to(device)
        if stage == 1:
            sr = model(lr, to_tensor(pair.hr).to(device))
        elif stage == 2:
            sr = model(lr, generator=torch.Generator(device).manual_seed(0))
        else:
            sr = model(lr)
        s = protocol.compute(to_uint8(sr, gray=pair.hr.ndim == 2), pair.hr)
        scores.append((s["psnr"], s["ssim"]))
    psnr, ssim = np.mean(scores, axis=0)
    return float(psnr), float(ssim)
