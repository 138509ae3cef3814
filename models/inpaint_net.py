"""DiffRWKVIR's inpainting network: a 4-level U-Net of DSEBs (DiffIR's inpainting layout with DSEBs for its blocks)."""

from __future__ import annotations

import torch
from torch import nn

from layers.checks import check_image_batch
from layers.padding import pad_symmetric_to_multiple
from models.dseb import DSEB, check_variant

__all__ = ["DiffRWKVIRUNet"]


class DiffRWKVIRUNet(nn.Module):
    """Inpainting network ``G(lq, z)``: lq = cat(image * (1 - mask), mask) [B, 4, H, W] -> RGB [B, 3, H, W].

    Level l runs at ``width * 2**l`` channels and 1 / 2**l resolution; down: conv3x3 c -> c/2 + PixelUnshuffle(2);
    up: conv3x3 c -> 2c + PixelShuffle(2), concat the skip, 1x1 reduce. Inputs are padded to a multiple of 8 by
    ``pad_symmetric_to_multiple`` (numpy's ``symmetric``, as the official inpainting code pads image and mask).

    Args:
        width: channels of level 1.
            Default: 48.
        num_blocks: DSEBs at levels 1, 2, 3 (encoder and decoder each) and at the bottleneck.
            Default: (1, 1, 1, 9).
        head_size: channels per head (constant, so heads double per level).
            Default: 48.
        prior_dim: IPR size (None: no modulation).
            Default: 256.
        shift, mixer, ffn, scan: Table 5 switches.
            Default: ``"omni"``, ``"ttt"``, ``"cab"``, ``"2d"``.
        backend, chunk_size: state-evolution kernel settings.
            Default: ``"auto"``, 64.
    """

    size_multiple = 8

    def __init__(self, *, width: int = 48, num_blocks: tuple[int, int, int, int] = (1, 1, 1, 9), head_size: int = 48,
                 prior_dim: int | None = 256, shift: str = "omni", mixer: str = "ttt", ffn: str = "cab", scan: str = "2d",
                 backend: str = "auto", chunk_size: int = 64) -> None:
        super().__init__()
        check_variant(shift=shift, mixer=mixer, ffn=ffn, scan=scan)
        if len(num_blocks) != 4:
            raise ValueError(f"num_blocks must give 4 levels, got {num_blocks}")
        kwargs = {"head_size": head_size, "prior_dim": prior_dim, "shift": shift, "mixer": mixer, "ffn": ffn, "scan": scan,
                  "backend": backend, "chunk_size": chunk_size}
        widths = [width * 2**level for level in range(4)]
        # Block order for the SEB initialisation: encoder, bottleneck, decoder.
        depth_order = list(num_blocks) + list(num_blocks[2::-1])
        n_layers, starts = sum(depth_order), [sum(depth_order[:i]) for i in range(len(depth_order))]

        def stage(level: int, position: int) -> nn.ModuleList:
            return nn.ModuleList(DSEB(dim=widths[level], layer_id=starts[position] + i, n_layers=n_layers, **kwargs)
                                 for i in range(depth_order[position]))

        self.conv_first = nn.Conv2d(4, width, 3, padding=1)
        self.encoders = nn.ModuleList(stage(level, level) for level in range(3))
        self.downs = nn.ModuleList(nn.Sequential(nn.Conv2d(c, c // 2, 3, padding=1), nn.PixelUnshuffle(2)) for c in widths[:3])
        self.bottleneck = stage(3, 3)
        self.ups = nn.ModuleList(nn.Sequential(nn.Conv2d(c, 2 * c, 3, padding=1), nn.PixelShuffle(2)) for c in widths[1:])
        self.reduces = nn.ModuleList(nn.Conv2d(2 * c, c, 1) for c in widths[:3])
        self.decoders = nn.ModuleList(stage(level, 6 - level) for level in range(3))
        self.conv_last = nn.Conv2d(width, 3, 3, padding=1)

    @staticmethod
    def _run(blocks: nn.ModuleList, x: torch.Tensor, z: torch.Tensor | None) -> torch.Tensor:
        for block in blocks:
            x = block(x, z)
        return x

    def forward(self, lq: torch.Tensor, z: torch.Tensor | None = None) -> torch.Tensor:
        check_image_batch(lq, channels=4, name="DiffRWKVIRUNet", what="cat(masked image, mask)")
        h, w = lq.shape[-2:]
        x = self.conv_first(pad_symmetric_to_multiple(lq, self.size_multiple))
        skips = []
        for level in range(3):
            x = self._run(self.encoders[level], x, z)
            skips.append(x)
            x = self.downs[level](x)
        x = self._run(self.bottleneck, x, z)
        for level in reversed(range(3)):
            x = self.reduces[level](torch.cat([self.ups[level](x), skips[level]], dim=1))
            x = self._run(self.decoders[level], x, z)
        return self.conv_last(x)[..., :h, :w]
