"""Prepared SR pairs: HR cropped top-left to a multiple of the scale, LR = MATLAB-bicubic(HR, 1/scale) in uint8.

Layout of a prepared folder: ``<out>/HR/<stem>.png`` and ``<out>/LR/<stem>.png``. Grayscale images stay grayscale
(the literature resizes and measures them on their own channel).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from layers.imresize import imresize
from repro.data.io import ImageError, modcrop, read_image, write_png
from repro.data.registry import image_files, locate


@dataclass(frozen=True)
class SRPair:
    name: str
    hr: np.ndarray  # uint8, HxW or HxWx3, a multiple of the scale
    lr: np.ndarray  # uint8, (H/s)x(W/s)[x3]


def make_pair(hr: np.ndarray, scale: int, *, name: str = "<array>") -> SRPair:
    """The benchmark degradation: modcrop, then MATLAB bicubic downscaling with uint8 rounding."""
    hr = modcrop(hr, scale, path=name)
    return SRPair(name=name, hr=hr, lr=imresize(hr, 1 / scale))


def prepare_sr(dataset: str, scale: int, out_dir: str | Path, *, data_mirror: str | Path | None = None,
               data_dir: str | Path = "data") -> list[Path]:
    """Write the HR/LR pairs of ``dataset`` at ``scale`` under ``out_dir``; returns the LR paths.

    The set is checked against its manifest first, and nothing is written when a file fails (the workflow plans its
    jobs from the files present without hashing them, so this is where a corrupted copy is caught, by name).

    Args:
        dataset: registry name of an SR set.
        scale: 2, 3, 4 or 8.
        out_dir: gets ``HR/`` and ``LR/``.
        data_mirror, data_dir: where to look for the set (see ``repro.data.registry.locate``).
    """
    if scale not in (2, 3, 4, 8):
        raise ValueError(f"prepare_sr: unsupported scale {scale} (expected 2, 3, 4 or 8)")
    folder = locate(dataset, data_mirror=data_mirror, data_dir=data_dir, checksums=True)
    out_dir = Path(out_dir)
    written = []
    for path in image_files(folder):
        pair = make_pair(read_image(path), scale, name=str(path))
        write_png(out_dir / "HR" / f"{path.stem}.png", pair.hr)
        write_png(out_dir / "LR" / f"{path.stem}.png", pair.lr)
        written.append(out_dir / "LR" / f"{path.stem}.png")
    return written


def load_pairs(prepared_dir: str | Path, scale: int) -> list[SRPair]:
    """Read a prepared folder back, checking that every LR has its HR and that the sizes agree with ``scale``."""
    prepared_dir = Path(prepared_dir)
    lr_dir, hr_dir = prepared_dir / "LR", prepared_dir / "HR"
    if not lr_dir.is_dir() or not hr_dir.is_dir():
        raise ImageError(f"{prepared_dir}: not a prepared pair folder (needs HR/ and LR/)")
    pairs = []
    for lr_path in image_files(lr_dir):
        hr_path = hr_dir / lr_path.name
        lr, hr = read_image(lr_path), read_image(hr_path)
        if hr.shape[:2] != (lr.shape[0] * scale, lr.shape[1] * scale) or hr.ndim != lr.ndim:
            raise ImageError(f"{hr_path}: shape {hr.shape} does not match LR {lr_path.name} {lr.shape} at x{scale}")
        pairs.append(SRPair(name=lr_path.stem, hr=hr, lr=lr))
    if not pairs:
        raise ImageError(f"{lr_dir}: no images")
    return pairs
