"""Channel attention (RCAN's squeeze-and-excitation) and the channel attention block CAB (HAT; eq. 11 of the paper).

The module layout (``attention`` and ``cab`` as nn.Sequential) is HAT's and MambaIR's, so their official state-dict
keys (``...cab.3.attention.1.weight``) are these modules' keys.
"""

from __future__ import annotations

import torch
from torch import nn


class ChannelAttention(nn.Module):
    """``x * sigmoid(conv1x1(ReLU(conv1x1(GAP(x)))))``.

    Args:
        dim: channels.
        squeeze: reduction of the bottleneck, ``hidden = dim // squeeze``.
        min_hidden: smallest bottleneck width (the official networks use 1; DiffRWKVIR keeps 4 at small widths).
            Default: 1.
    """

    def __init__(self, *, dim: int, squeeze: int, min_hidden: int = 1) -> None:
        super().__init__()
        hidden = max(min_hidden, dim // squeeze)
        self.attention = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Conv2d(dim, hidden, 1), nn.ReLU(inplace=True),
                                       nn.Conv2d(hidden, dim, 1), nn.Sigmoid())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.attention(x)


class CAB(nn.Module):
    """Channel attention block: conv3x3 (dim -> dim / compress), GELU, conv3x3 back to dim, channel attention.

    Args:
        dim: channels.
        compress: reduction of the inner convolution (at least one channel is kept).
        squeeze, min_hidden: as ``ChannelAttention``.
    """

    def __init__(self, *, dim: int, compress: int, squeeze: int, min_hidden: int = 1) -> None:
        super().__init__()
        inner = max(1, dim // compress)
        self.cab = nn.Sequential(nn.Conv2d(dim, inner, 3, 1, 1), nn.GELU(), nn.Conv2d(inner, dim, 3, 1, 1),
                                 ChannelAttention(dim=dim, squeeze=squeeze, min_hidden=min_hidden))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.cab(x)
