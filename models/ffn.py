"""Feed-forward parts of the DSEB on feature maps [B, C, H, W]: CAB (eq. 11, ``layers.channel_attention``) and the MLP
variants of Table 5.

The default widths give every variant about 6 C^2 weights, so the ablation compares designs, not sizes.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from layers.channel_attention import CAB

__all__ = ["FFNS", "MLP", "GatedMLP", "build_ffn"]

FFNS = ("cab", "mlp_relu", "mlp_gelu", "gated_mlp")


class MLP(nn.Module):
    """Per-pixel two-layer MLP (1x1 convs) with ReLU or GELU.

    Args:
        dim: channels.
        act: ``"relu"`` or ``"gelu"``.
        expansion: hidden width over ``dim``.
            Default: 3.
    """

    def __init__(self, *, dim: int, act: str, expansion: float = 3.0) -> None:
        super().__init__()
        if act not in ("relu", "gelu"):
            raise ValueError(f"MLP act must be 'relu' or 'gelu', got {act!r}")
        hidden = int(dim * expansion)
        self.fc1 = nn.Conv2d(dim, hidden, 1)
        self.fc2 = nn.Conv2d(hidden, dim, 1)
        self.act = nn.ReLU() if act == "relu" else nn.GELU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(self.act(self.fc1(x)))


class GatedMLP(nn.Module):
    """Per-pixel gated MLP: ``W_out (GELU(W_gate x) * W_value x)``.

    Args:
        dim: channels.
        expansion: hidden width over ``dim``.
            Default: 2.
    """

    def __init__(self, *, dim: int, expansion: float = 2.0) -> None:
        super().__init__()
        hidden = int(dim * expansion)
        self.fc_in = nn.Conv2d(dim, 2 * hidden, 1)
        self.fc_out = nn.Conv2d(hidden, dim, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        gate, value = self.fc_in(x).chunk(2, dim=1)
        return self.fc_out(F.gelu(gate) * value)


def build_ffn(kind: str, *, dim: int) -> nn.Module:
    """The feed-forward part named ``kind`` (one of ``FFNS``)."""
    if kind == "cab":
        # HAT's CAB (compress 3, squeeze 30); the attention bottleneck keeps 4 channels at small CPU widths.
        return CAB(dim=dim, compress=3, squeeze=30, min_hidden=4)
    if kind in ("mlp_relu", "mlp_gelu"):
        return MLP(dim=dim, act=kind.removeprefix("mlp_"))
    if kind == "gated_mlp":
        return GatedMLP(dim=dim)
    raise ValueError(f"unknown ffn {kind!r}; expected one of {FFNS}")
