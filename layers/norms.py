"""Normalisations over the channels of every pixel of a feature map [B, C, H, W]."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class ChannelLayerNorm(nn.LayerNorm):
    """LayerNorm over the channels of each pixel of [B, C, H, W] (weights ``weight``, ``bias`` as nn.LayerNorm)."""

    def __init__(self, dim: int, *, eps: float = 1e-5) -> None:
        super().__init__(dim, eps=eps)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.layer_norm(x.permute(0, 2, 3, 1), self.normalized_shape, self.weight, self.bias, self.eps).permute(0, 3, 1, 2)


class BiasFreeChannelNorm(nn.Module):
    """Restormer's "BiasFree" LayerNorm: ``x / sqrt(var + eps) * weight``; the mean is not subtracted, no bias."""

    def __init__(self, dim: int, *, eps: float = 1e-5) -> None:
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        var = x.var(1, keepdim=True, unbiased=False)
        return x * torch.rsqrt(var + self.eps) * self.weight.view(1, -1, 1, 1)
