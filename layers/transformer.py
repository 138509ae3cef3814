"""Token-level pieces of the Swin-style SR transformers: the MLP, the token embedding and the way back to a map."""

from __future__ import annotations

import torch
from torch import nn


class Mlp(nn.Module):
    """Token-wise feed-forward: Linear(dim, hidden), GELU, Linear(hidden, dim)."""

    def __init__(self, *, dim: int, hidden: int) -> None:
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden)
        self.act = nn.GELU()
        self.fc2 = nn.Linear(hidden, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(self.act(self.fc1(x)))


class TokenEmbed(nn.Module):
    """[B, C, H, W] -> LayerNorm'd tokens [B, H*W, C] (the official ``patch_embed`` with patch size 1)."""

    def __init__(self, *, dim: int) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.norm(x.flatten(2).transpose(1, 2))


def tokens_to_image(x: torch.Tensor, h: int, w: int) -> torch.Tensor:
    """[B, H*W, C] -> [B, C, H, W]."""
    return x.transpose(1, 2).reshape(x.shape[0], -1, h, w)
