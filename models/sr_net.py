"""DiffRWKVIR's SR network (Section 4.1): conv, residual groups of DSEBs, conv, pixel-shuffle upsampler."""

from __future__ import annotations

import torch
from torch import nn

from layers.sr_skeleton import SRSkeleton
from models.dseb import DSEB, check_variant

__all__ = ["DiffRWKVIRSR", "ResidualGroup"]


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


class DiffRWKVIRSR(SRSkeleton):
    """SR network ``G(lq, z)``: any input size (the 2D scan needs no padding), output ``scale`` times larger.

    SwinIR's skeleton (``layers.sr_skeleton``): conv, residual groups of DSEBs, conv plus the shallow features,
    pixel-shuffle reconstruction.

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
        self.build_shallow(scale=scale, dim=width)
        block_kwargs = {"head_size": head_size, "prior_dim": prior_dim, "shift": shift, "mixer": mixer, "ffn": ffn,
                        "scan": scan, "backend": backend, "chunk_size": chunk_size}
        n_layers = n_groups * depth
        self.groups = nn.ModuleList(ResidualGroup(dim=width, n_blocks=depth, first_layer=g * depth, n_layers=n_layers,
                                                  block_kwargs=block_kwargs) for g in range(n_groups))
        self.build_reconstruction(dim=width, num_feat=upsample_feats)

    def forward_features(self, x: torch.Tensor, z: torch.Tensor | None = None) -> torch.Tensor:
        # The trunk runs channels-last: the blocks' LayerNorms, token views and SEB outputs are per-pixel rows of C,
        # so in [B, C, H, W] order every residual add and norm would read one operand across layouts (7% of a CPU
        # training step at 64x64, x4); the reconstruction gets the usual layout back.
        x = x.contiguous(memory_format=torch.channels_last)
        for group in self.groups:
            x = group(x, z)
        return x.contiguous()
