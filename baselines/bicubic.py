"""The Bicubic baseline: MATLAB-compatible bicubic upscaling (``repro.data.imresize``), no parameters."""

from __future__ import annotations

import torch
from torch import nn

from repro.data.imresize import imresize
from repro.registry import register_model

__all__ = ["Bicubic", "bicubic"]


class Bicubic(nn.Module):
    """RGB LR [B, 3, h, w] -> MATLAB ``imresize(lq, scale, 'bicubic')`` [B, 3, s*h, s*w], float, not clamped."""

    def __init__(self, *, scale: int = 4) -> None:
        super().__init__()
        if scale not in (2, 3, 4):
            raise ValueError(f"scale must be 2, 3 or 4, got {scale}")
        self.scale = scale

    def forward(self, lq: torch.Tensor) -> torch.Tensor:
        if lq.ndim != 4 or lq.shape[1] != 3:
            raise ValueError(f"Bicubic expects RGB lq of shape [B, 3, h, w], got {tuple(lq.shape)}")
        return imresize(lq, self.scale)


# supports_bf16=False: under bf16 autocast the resize matmuls would run in bf16 (errors of ~1e-2).
@register_model(name="bicubic", family="bicubic", scales=(2, 3, 4), supports_bf16=False, paper="Bicubic")
def bicubic(*, scale: int = 4) -> Bicubic:
    """Parameter-free MATLAB-bicubic upscaling."""
    return Bicubic(scale=scale)
