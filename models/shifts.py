"""Token shifts of the SEB (Table 5): each maps a feature map [B, C, H, W] to its "shifted" version of the same shape.

The SEB mixes the input with the shift through learned interpolations (LeRP), so a shift only has to supply
neighbourhood information; it never needs to be an identity.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["SHIFTS", "OmniShift", "QuadShift", "UniShift", "build_shift"]

SHIFTS = ("uni", "quad", "omni")


class UniShift(nn.Module):
    """RWKV's 1-D token shift: every token takes the previous token of the row-major scan (zero for the first)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c, h, w = x.shape
        flat = x.flatten(2)
        return F.pad(flat, (1, -1)).view(b, c, h, w)


class QuadShift(nn.Module):
    """Vision-RWKV's Q-Shift: channel quarters take the left, right, upper and lower neighbour (zero at borders)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        c = x.shape[1]
        q = c // 4
        out = torch.zeros_like(x)
        out[:, 0 * q:1 * q, :, 1:] = x[:, 0 * q:1 * q, :, :-1]
        out[:, 1 * q:2 * q, :, :-1] = x[:, 1 * q:2 * q, :, 1:]
        out[:, 2 * q:3 * q, 1:, :] = x[:, 2 * q:3 * q, :-1, :]
        out[:, 3 * q:4 * q, :-1, :] = x[:, 3 * q:4 * q, 1:, :]
        # Channels left over when C is not a multiple of 4 pass through unchanged, as in Vision-RWKV.
        out[:, 4 * q:] = x[:, 4 * q:]
        return out


class OmniShift(nn.Module):
    """Restore-RWKV's Omni-Shift: ``alpha_0 x + alpha_1 dw1x1(x) + alpha_2 dw3x3(x) + alpha_3 dw5x5(x)``.

    The four branches are linear in x, so they run as one depthwise 5x5 convolution whose kernel is their sum
    (``fused_weight``, recomputed from the current weights on every call, so it never goes stale). Restore-RWKV folds
    them so at inference only; folding in training too gives the same outputs and parameter gradients (the fold is
    differentiable) at about half the cost of three depthwise convolutions and their sum, forward and backward.
    ``branches`` is the four-branch form, the reference the tests hold the folded one to.

    Args:
        dim: channels.
    """

    def __init__(self, *, dim: int) -> None:
        super().__init__()
        self.dim = dim
        self.conv1x1 = nn.Conv2d(dim, dim, 1, groups=dim, bias=False)
        self.conv3x3 = nn.Conv2d(dim, dim, 3, padding=1, groups=dim, bias=False)
        self.conv5x5 = nn.Conv2d(dim, dim, 5, padding=2, groups=dim, bias=False)
        self.alpha = nn.Parameter(torch.full((4,), 0.25))

    def fused_weight(self) -> torch.Tensor:
        """The single depthwise 5x5 kernel [C, 1, 5, 5] equal to the sum of the four branches."""
        identity = torch.zeros_like(self.conv5x5.weight)
        identity[:, :, 2, 2] = 1.0
        return (self.alpha[0] * identity + self.alpha[1] * F.pad(self.conv1x1.weight, (2, 2, 2, 2))
                + self.alpha[2] * F.pad(self.conv3x3.weight, (1, 1, 1, 1)) + self.alpha[3] * self.conv5x5.weight)

    def branches(self, x: torch.Tensor) -> torch.Tensor:
        """The four branches summed, as Restore-RWKV trains them."""
        return (self.alpha[0] * x + self.alpha[1] * self.conv1x1(x) + self.alpha[2] * self.conv3x3(x)
                + self.alpha[3] * self.conv5x5(x))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.conv2d(x, self.fused_weight(), padding=2, groups=self.dim)


def build_shift(kind: str, *, dim: int) -> nn.Module:
    """The token shift named ``kind`` (one of ``SHIFTS``)."""
    if kind == "uni":
        return UniShift()
    if kind == "quad":
        return QuadShift()
    if kind == "omni":
        return OmniShift(dim=dim)
    raise ValueError(f"unknown shift {kind!r}; expected one of {SHIFTS}")
