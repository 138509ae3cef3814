"""Sub-pixel upsamplers (EDSR's multi-step one and the one-step tail of the lightweight models)."""

from __future__ import annotations

import math

from torch import nn


def pixel_shuffle_upsampler(scale: int, channels: int) -> nn.Sequential:
    """(conv3x3 C -> 4C, PixelShuffle(2)) log2(scale) times, or conv3x3 C -> 9C, PixelShuffle(3) for x3.

    EDSR's ``Upsampler``, as SwinIR, HAT, MambaIR, DiffIR and DiffRWKVIR build it (convs with bias); the
    state-dict keys are ``0.*, 2.*, ...``.
    """
    if scale == 3:
        return nn.Sequential(nn.Conv2d(channels, 9 * channels, 3, 1, 1), nn.PixelShuffle(3))
    if scale < 2 or scale & (scale - 1):
        raise ValueError(f"pixel-shuffle upsampler supports scales 2^n and 3, not {scale}")
    layers: list[nn.Module] = []
    for _ in range(int(math.log2(scale))):
        layers += [nn.Conv2d(channels, 4 * channels, 3, 1, 1), nn.PixelShuffle(2)]
    return nn.Sequential(*layers)


def pixel_shuffle_direct(scale: int, channels: int, out_channels: int = 3) -> nn.Sequential:
    """One conv3x3 to ``out_channels * scale^2`` channels and PixelShuffle(scale): the lightweight models' tail."""
    return nn.Sequential(nn.Conv2d(channels, out_channels * scale**2, 3, 1, 1), nn.PixelShuffle(scale))
