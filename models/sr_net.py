"""DiffRWKVIR's SR network (Section 4.1): conv, residual groups of DSEBs, conv, pixel-shuffle upsampler."""

from __future__ import annotations

import math

import torch
from torch import nn

from models.dseb import DSEB, check_variant

__all__ = ["DiffRWKVIRSR", "ResidualGroup", "Upsampler"]

# DIV2K RGB mean, subtracted at the input and added back at the output (SwinIR / HAT convention).
_RGB_MEAN = (0.4488, 0.4371, 0.4040)


class ResidualGroup(nn.Module):
    """``x + conv3x3(DSEB_n(...DSEB_1(x)))``.

    Args:
        dim: channels.
        n_blocks: DSEBs in the group.
        first_layer, n_layers: index of the group's first block in the network and the network's block count.
        block_kwargs: the remaining DSEB arguments (head_size, prior_dim, switches, kernel settings).
    """

    def __init__(self, *, dim: int, n_blocks: int, first_layer: int, n_layers: int, block_kwargs: dict) -> None:
        super().__init__()
        self.blocks = nn.ModuleList(DSEB(dim=dim, layer_id=first_layer + i, n_layers=n_layers, **block_kwargs)
                                    for i in range(n_blocks))
        self.conv = nn.Conv2d(dim, dim, 3, padding=1)

    def forward(self, x: torch.Tensor, z: torch.Tensor | None = None) -> torch.Tensor:
        h = x
        for block in self.blocks:
            h = block(h, z)
        return x + self.conv(h)


class Upsampler(nn.Sequential):
    """Sub-pixel upsampler: (conv3x3 C -> 4C, PixelShuffle(2)) per factor 2, or conv3x3 C -> 9C, PixelShuffle(3)."""

    def __init__(self, *, scale: int, dim: int) -> None:
        layers: list[nn.Module] = []
        if scale & (scale - 1) == 0:
            for _ in range(int(math.log2(scale))):
                layers += [nn.Conv2d(dim, 4 * dim, 3, padding=1), nn.PixelShuffle(2)]
        elif scale == 3:
            layers += [nn.Conv2d(dim, 9 * dim, 3, padding=1), nn.PixelShuffle(3)]
        else:
            raise ValueError(f"unsupported scale {scale}; supported: 2, 3, 4")
        super().__init__(*layers)


class DiffRWKVIRSR(nn.Module):
    """SR network ``G(lq, z)``: any input size (the 2D scan needs no padding), output ``scale`` times larger.

    Args:
        scale: upscaling factor (2, 3 or 4).
            Default: 4.
        width: channels of the DSEBs.
            Default: 192.
        n_groups: residual groups.
            Default: 4.
        depth: DSEBs per group.
            Default: 6.
        head_size: channels per head.
            Default: 32.
        prior_dim: IPR size (None: no modulation, the network ignores priors).
            Default: 256.
        upsample_feats: width of the upsampler.
            Default: 64.
        shift, mixer, ffn, scan: Table 5 switches.
            Default: ``"omni"``, ``"ttt"``, ``"cab"``, ``"2d"``.
        backend, chunk_size: state-evolution kernel settings.
            Default: ``"auto"``, 64.
    """

    def __init__(self, *, scale: int = 4, width: int = 192, n_groups: int = 4, depth: int = 6, head_size: int = 32,
                 prior_dim: int | None = 256, upsample_feats: int = 64, shift: str = "omni", mixer: str = "ttt",
                 ffn: str = "cab", scan: str = "2d", backend: str = "auto", chunk_size: int = 64) -> None:
        super().__init__()
        check_variant(shift=shift, mixer=mixer, ffn=ffn, scan=scan)
        if scale not in (2, 3, 4):
            raise ValueError(f"unsupported scale {scale}; supported: 2, 3, 4")
        self.scale = scale
        self.register_buffer("rgb_mean", torch.tensor(_RGB_MEAN).view(1, 3, 1, 1), persistent=False)
        block_kwargs = {"head_size": head_size, "prior_dim": prior_dim, "shift": shift, "mixer": mixer, "ffn": ffn,
                        "scan": scan, "backend": backend, "chunk_size": chunk_size}
        self.conv_first = nn.Conv2d(3, width, 3, padding=1)
        n_layers = n_groups * depth
        self.groups = nn.ModuleList(ResidualGroup(dim=width, n_blocks=depth, first_layer=g * depth, n_layers=n_layers,
                                                  block_kwargs=block_kwargs) for g in range(n_groups))
        self.conv_after_body = nn.Conv2d(width, width, 3, padding=1)
        self.conv_before_upsample = nn.Sequential(nn.Conv2d(width, upsample_feats, 3, padding=1), nn.LeakyReLU(inplace=True))
        self.upsample = Upsampler(scale=scale, dim=upsample_feats)
        self.conv_last = nn.Conv2d(upsample_feats, 3, 3, padding=1)

    def forward(self, lq: torch.Tensor, z: torch.Tensor | None = None) -> torch.Tensor:
        if lq.ndim != 4 or lq.shape[1] != 3:
            raise ValueError(f"expected an RGB batch [B, 3, H, W], got {tuple(lq.shape)}")
        x = self.conv_first(lq - self.rgb_mean)
        h = x
        for group in self.groups:
            h = group(h, z)
        x = x + self.conv_after_body(h)
        return self.conv_last(self.upsample(self.conv_before_upsample(x))) + self.rgb_mean
