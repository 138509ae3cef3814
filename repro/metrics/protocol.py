"""The frozen evaluation protocols (docs/protocol.md), one per kind of table.

- "sr" (Tables 3 and 5): PSNR, SSIM, RMSE and NIQE on the BT.601 Y channel (a gray image on its own channel),
  SAM on RGB, all with crop_border = scale, float64; LPIPS (AlexNet v0.1) on the full RGB image.
- "inpaint" (Table 2): PSNR and SSIM on RGB, LPIPS, all over the whole image; FID between folders.

A metric whose parameter files are absent is listed in `missing` with the reason and reported as NaN.
"""

import math
from collections.abc import Callable
from pathlib import Path
from types import MappingProxyType

import numpy as np
import torch

from repro.metrics import functional as F
from repro.metrics import networks
from repro.metrics.weights import NIQE_PARAMS, resolve_weights

SR_METRICS = ("psnr", "ssim", "niqe", "lpips", "rmse", "sam")
# Below this many images FID is strongly biased upwards (Chong & Forsyth 2020): reported with a warning.
FID_MIN_IMAGES = 2000
INPAINT_METRICS = ("psnr", "ssim", "lpips", "fid")
PROTOCOL_TABLES = MappingProxyType({"sr": ("table3", "table5"), "inpaint": ("table2",)})


def _check_pair(pred: np.ndarray, ref: np.ndarray) -> None:
    for role, img in (("prediction", pred), ("reference", ref)):
        if not isinstance(img, np.ndarray) or img.dtype != np.uint8:
            kind = img.dtype if isinstance(img, np.ndarray) else type(img).__name__
            raise TypeError(f"{role} must be a uint8 numpy array (clamp and round the output first), got {kind}")
        if not (img.ndim == 2 or (img.ndim == 3 and img.shape[2] == 3)):
            raise ValueError(f"{role} must be HxWx3 RGB or HxW gray, got shape {img.shape}")
    if pred.shape != ref.shape:
        raise ValueError(
            f"prediction {pred.shape} and reference {ref.shape} differ; a gray reference needs a gray prediction "
            "(convert the output to its gray channel first)"
        )


class Protocol:
    """A frozen metric protocol: `compute(pred, ref)` returns {metric: float} for one image pair.

    Inputs are uint8 numpy arrays, HxWx3 RGB or HxW gray (both the same). Networks load on first use.
    """

    def __init__(
        self,
        *,
        task: str,
        scale: int | None,
        metric_weights: str | Path | None,
        device: str | torch.device = "cpu",
        metrics: tuple[str, ...] | None = None,
    ) -> None:
        self.task = task
        self.scale = scale
        self.crop_border = scale if task == "sr" else 0
        self.device = torch.device(device)
        full = SR_METRICS if task == "sr" else INPAINT_METRICS
        if metrics is not None:
            unknown = sorted(set(metrics) - set(full))
            if unknown or not metrics:
                raise ValueError(f"the {task} protocol has metrics {full}; cannot select {unknown or 'none'}")
        # A subset keeps the protocol's order and definitions; it only skips work (e.g. NIQE for a PSNR-only check).
        self.metrics = full if metrics is None else tuple(m for m in full if m in metrics)
        self.name = f"sr-y601-crop{scale}-fp64" if task == "sr" else "inpaint-rgb-full-fp64"
        self.metric_weights = None if metric_weights is None else Path(metric_weights)
        self._files, self._missing = resolve_weights(metric_weights, self.metrics)
        self._cache: dict[str, object] = {}

    @property
    def missing(self) -> dict[str, str]:
        """{metric: why it cannot be computed (which file, where it was looked for)}; {} when all are available."""
        return dict(self._missing)

    @property
    def description(self) -> str:
        """One line for a table footnote."""
        if self.task == "sr":
            return (
                f"PSNR, SSIM, RMSE (0-255) and NIQE on the BT.601 Y channel (gray images on their own channel), "
                f"SAM on RGB in radians, all with {self.crop_border} px cropped from each side, float64; "
                "SSIM with an 11x11 Gaussian window (sigma 1.5) over the valid region; LPIPS AlexNet v0.1 on RGB, "
                "full image"
            )
        return "PSNR and SSIM on RGB over the whole image, float64; LPIPS AlexNet v0.1 on RGB; clean-FID between folders"

    def __repr__(self) -> str:
        return f"Protocol({self.name!r}, metrics={self.metrics}, missing={sorted(self._missing)})"

    def _get(self, key: str, build: Callable[[], object]) -> object:
        if key not in self._cache:
            self._cache[key] = build()
        return self._cache[key]

    def _niqe(self, channel: np.ndarray) -> float:
        mu, cov = self._get("niqe", lambda: networks.load_niqe_params(self._files["niqe"][NIQE_PARAMS.names[0]]))
        return networks.niqe_score(channel, mu, cov)

    def _lpips(self, pred: np.ndarray, ref: np.ndarray) -> float:
        model = self._get("lpips", lambda: networks.build_lpips(self._files["lpips"], self.device))
        return networks.lpips_score(model, pred, ref)

    def compute(self, pred: np.ndarray, ref: np.ndarray) -> dict[str, float]:
        """Per-image metrics, in `self.metrics` order; NaN for a missing metric (and for FID, a set-level one)."""
        _check_pair(pred, ref)
        gray = pred.ndim == 2
        if self.task == "sr":
            # the literature measures gray images (Set14 bridge) on their own channel, not on a converted luma
            pred_y = pred.astype(np.float64) if gray else F.rgb_to_y(pred)
            ref_y = ref.astype(np.float64) if gray else F.rgb_to_y(ref)
            crop = self.crop_border
            wanted = {
                "psnr": lambda: F.psnr(pred_y, ref_y, crop_border=crop),
                "ssim": lambda: F.ssim(pred_y, ref_y, crop_border=crop),
                "niqe": lambda: math.nan if "niqe" in self._missing else self._niqe(F.crop(pred_y, crop)),
                "rmse": lambda: F.rmse(pred_y, ref_y, crop_border=crop),
                "sam": lambda: math.nan if gray else F.sam(pred, ref, crop_border=crop),
            }
        else:
            wanted = {"psnr": lambda: F.psnr(pred, ref), "ssim": lambda: F.ssim(pred, ref), "fid": lambda: math.nan}
        wanted["lpips"] = lambda: math.nan if "lpips" in self._missing else self._lpips(pred, ref)
        return {metric: wanted[metric]() for metric in self.metrics}

    def compute_fid(self, pred_dir: str | Path, ref_dir: str | Path) -> float:
        """FID between two folders of images (inpaint protocol); NaN when the Inception weights are missing."""
        if "fid" not in self.metrics:
            raise ValueError(f"protocol {self.name} has no FID")
        for folder in (pred_dir, ref_dir):
            if not Path(folder).is_dir():
                raise FileNotFoundError(f"FID image folder {folder} does not exist")
        if "fid" in self._missing:
            return math.nan
        model = self._get("fid", lambda: networks.build_fid(self._files["fid"], self.device))
        return networks.fid_score(model, pred_dir, ref_dir)


def list_protocols() -> dict[str, tuple[str, ...]]:
    """Protocol kinds and the paper tables each one serves."""
    return dict(PROTOCOL_TABLES)


def get_protocol(
    task: str,
    *,
    scale: int | None = None,
    metric_weights: str | Path | None = None,
    device: str | torch.device = "cpu",
    metrics: tuple[str, ...] | None = None,
) -> Protocol:
    """The frozen protocol for `task` ("sr" needs the scale, which is also the crop border; "inpaint" takes none).

    `metrics` selects a subset (same definitions, less work); default: all of the protocol's metrics.
    """
    if task not in PROTOCOL_TABLES:
        raise ValueError(f"unknown protocol {task!r}; known: {sorted(PROTOCOL_TABLES)}")
    if task == "sr":
        if not isinstance(scale, int) or isinstance(scale, bool) or scale < 1:
            raise ValueError(f"the sr protocol needs a positive integer scale (its crop border), got {scale!r}")
    elif scale is not None:
        raise ValueError(f"the inpaint protocol measures the whole image and takes no scale, got {scale!r}")
    return Protocol(task=task, scale=scale, metric_weights=metric_weights, device=device, metrics=metrics)
