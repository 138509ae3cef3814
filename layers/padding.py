"""Padding of feature maps [B, C, H, W] at the bottom and right, the two ways the official test scripts do it.

- ``pad_symmetric``: append the flipped map (edge pixel repeated), numpy's ``symmetric`` mode; SwinIR's
  ``main_test_swinir.py`` and MambaIRv2's test code. ``pad_symmetric_to_multiple``: the same up to a multiple, as
  LaMa's ``pad_img_to_modulo`` pads image and mask, which DiffIR's inpainting code copies; both inpainting models
  pad this way.
- ``pad_reflect_to_multiple``: ``F.pad(..., "reflect")`` (edge pixel not repeated); HAT's ``HATModel.test``,
  DiffIR's ``pad_test`` and DiffRWKVIR.

Both extend the official rule to maps smaller than the padding (the official calls fail there): the mirroring is
repeated, and a side of one pixel is replicated.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def pad_symmetric(x: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """Pad [B, C, h, w] to at least [.., height, width] by appending flipped copies, then cut to that size."""
    for dim, target in ((2, height), (3, width)):
        while x.shape[dim] < target:
            x = torch.cat([x, x.flip(dim)], dim)
        x = x.narrow(dim, 0, target)
    return x


def pad_symmetric_to_multiple(x: torch.Tensor, multiple: int) -> torch.Tensor:
    """Pad [B, C, h, w] at the bottom and right up to multiples of ``multiple`` by ``pad_symmetric``."""
    h, w = x.shape[-2:]
    return pad_symmetric(x, h + -h % multiple, w + -w % multiple)


def pad_reflect_to_multiple(x: torch.Tensor, multiple: int) -> torch.Tensor:
    """Reflect-pad [B, C, h, w] up to multiples of ``multiple`` (nothing if already there).

    Reflection needs the padding to be smaller than the side, so tiny maps are padded in several reflect steps.
    """
    for dim in (2, 3):
        missing = -x.shape[dim] % multiple
        while missing:
            side = x.shape[dim]
            step = min(missing, side - 1) if side > 1 else missing
            pad = (0, step, 0, 0) if dim == 3 else (0, 0, 0, step)
            x = F.pad(x, pad, mode="reflect" if side > 1 else "replicate")
            missing -= step
    return x
