"""The Bicubic baseline: MATLAB-compatible bicubic upscaling (``layers.imresize``), no parameters."""

from __future__ import annotations

import torch
from torch import nn

from layers.checks import check_sr_input
from layers.imresize import imresize
from layers.registry import register_model

__all__ = ["Bicubic", "bicubic"]


class Bicubic(nn.Module):
    """RGB LR [B, 3, h, w] -> MATLAB ``imresize(lq, scale, 'bicubic')`` [B, 3, s*h, s*w], float, not clamped."""

    def __init__(self, *, scale: int = 4) -> None:
        super().__init__()
        self.scale = scale

    def forward(self, lq: torch.Tensor) -> torch.Tensor:
        check_sr_input(lq, "Bicubic")
        return imresize(lq, self.scale)


# supports_bf16=False: under bf16 autocast the resize matmuls would run in bf16 (errors of ~1e-2).
@register_model(family="bicubic", tiling="exact", supports_bf16=False, paper="Bicubic")
def bicubic(*, scale: int = 4) -> Bicubic:
    """Parameter-free MATLAB-bicubic upscaling."""
    return Bicubic(scale=scale)
