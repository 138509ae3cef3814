"""Token mixers of the DSEB: the SEB (``ttt``, ours) and the Table 5 backbone ablations, on maps [B, C, H, W]."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from models.seb import SEB

__all__ = ["MIXERS", "AttentionMixer", "ResNetMixer", "build_mixer"]

MIXERS = ("ttt", "attention", "resnet")


class AttentionMixer(nn.Module):
    """Plain multi-head softmax self-attention over all H*W tokens (the "Naive Attention" row).

    Args:
        dim: channels (a multiple of ``head_size``).
        head_size: channels per head.
            Default: 32.
    """

    def __init__(self, *, dim: int, head_size: int = 32) -> None:
        super().__init__()
        if dim % head_size:
            raise ValueError(f"attention width {dim} must be a multiple of head_size {head_size}")
        self.n_heads, self.head_size = dim // head_size, head_size
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)
        # Zero output projection: a fresh block is the identity, as the SEB.
        nn.init.zeros_(self.proj.weight)
        nn.init.zeros_(self.proj.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c, h, w = x.shape
        tokens = x.flatten(2).transpose(1, 2)
        q, k, v = self.qkv(tokens).view(b, h * w, 3, self.n_heads, self.head_size).permute(2, 0, 3, 1, 4)
        o = F.scaled_dot_product_attention(q, k, v)
        o = self.proj(o.transpose(1, 2).reshape(b, h * w, c))
        return o.transpose(1, 2).reshape(b, c, h, w)


class ResNetMixer(nn.Module):
    """A residual conv block body, conv3x3 -> GELU -> conv3x3 (the "ResNet" row).

    Args:
        dim: channels.
    """

    def __init__(self, *, dim: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(dim, dim, 3, padding=1)
        self.conv2 = nn.Conv2d(dim, dim, 3, padding=1)
        nn.init.zeros_(self.conv2.weight)
        nn.init.zeros_(self.conv2.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv2(F.gelu(self.conv1(x)))


def build_mixer(kind: str, *, dim: int, head_size: int, shift: str, scan: str, layer_id: int, n_layers: int,
                backend: str, chunk_size: int) -> nn.Module:
    """The token mixer named ``kind`` (one of ``MIXERS``); shift and scan only apply to the SEB."""
    if kind == "ttt":
        return SEB(dim=dim, head_size=head_size, shift=shift, scan=scan, layer_id=layer_id, n_layers=n_layers,
                   backend=backend, chunk_size=chunk_size)
    if kind == "attention":
        return AttentionMixer(dim=dim, head_size=head_size)
    if kind == "resnet":
        return ResNetMixer(dim=dim)
    raise ValueError(f"unknown mixer {kind!r}; expected one of {MIXERS}")
