"""Frozen metric protocols (docs/protocol.md): pixel metrics in numpy float64, NIQE/LPIPS/FID through pyiqa.

`get_protocol("sr", scale=4, metric_weights=folder)` gives a protocol with a printable `name`
("sr-y601-crop4-fp64"), its `metrics`, the `missing` ones with reasons, and `compute(pred, ref)` for one uint8
image pair; `get_protocol("inpaint", ...)` adds `compute_fid(pred_dir, ref_dir)`.
"""

from repro.metrics.functional import crop, psnr, rgb_to_y, rmse, sam, ssim
from repro.metrics.protocol import Protocol, get_protocol, list_protocols
from repro.metrics.weights import METRIC_FILES, resolve_weights

__all__ = [
    "METRIC_FILES",
    "Protocol",
    "crop",
    "get_protocol",
    "list_protocols",
    "psnr",
    "resolve_weights",
    "rgb_to_y",
    "rmse",
    "sam",
    "ssim",
]
