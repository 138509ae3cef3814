"""The SR network skeleton that SwinIR introduced and HAT, MambaIR, MambaIRv2 and DiffRWKVIR reuse.

shallow conv -> deep features -> conv, plus a long skip from the shallow features -> reconstruction, with the
dataset mean subtracted before and added after. The module names are the official ones (``conv_first``,
``conv_after_body``, ``conv_before_upsample``, ``upsample``, ``conv_last``), so the subclasses keep the official
state-dict keys.
"""

from __future__ import annotations

import torch
from torch import nn

from layers.checks import check_sr_input
from layers.constants import RGB_MEAN
from layers.upsample import pixel_shuffle_direct, pixel_shuffle_upsampler

UPSAMPLERS = ("pixelshuffle", "pixelshuffledirect")


class SRSkeleton(nn.Module):
    """Base class: subclasses call ``build_shallow`` first and ``build_reconstruction`` after their body (the
    official creation order, so that state dicts list their keys in the official order), and define
    ``forward_features``.

    ``forward(lq, *extra)``: RGB [B, 3, h, w] in [0, 1] -> [B, 3, s*h, s*w], not clamped. ``pad_input`` (identity
    unless overridden) pads the input first; the output is cropped back to ``s*h x s*w``. ``extra`` (DiffRWKVIR's
    IPR z) goes to ``forward_features``.
    """

    def build_shallow(self, *, scale: int, dim: int, img_range: float = 1.0) -> None:
        """The mean shift and the shallow conv ``conv_first`` (RGB -> ``dim``).

        Args:
            scale: upscaling factor.
            dim: width of the deep features.
            img_range: multiplier applied after subtracting the mean (1.0 in every released SR checkpoint).
        """
        self.scale, self.img_range = scale, img_range
        self.register_buffer("mean", torch.tensor(RGB_MEAN).view(1, 3, 1, 1), persistent=False)
        self.conv_first = nn.Conv2d(3, dim, 3, 1, 1)

    def build_reconstruction(self, *, dim: int, upsampler: str = "pixelshuffle", num_feat: int = 64) -> None:
        """``conv_after_body`` and the reconstruction.

        Args:
            dim: width of the deep features.
            upsampler: ``"pixelshuffle"`` (conv + LeakyReLU to ``num_feat``, ``pixel_shuffle_upsampler``, conv to
                RGB) or ``"pixelshuffledirect"`` (``pixel_shuffle_direct`` only, the lightweight models).
            num_feat: width of the pixel-shuffle stages.
        """
        if upsampler not in UPSAMPLERS:
            raise ValueError(f"unknown upsampler {upsampler!r}; expected one of {UPSAMPLERS}")
        self.upsampler = upsampler
        self.conv_after_body = nn.Conv2d(dim, dim, 3, 1, 1)
        if upsampler == "pixelshuffledirect":
            self.upsample = pixel_shuffle_direct(self.scale, dim)
        else:
            self.conv_before_upsample = nn.Sequential(nn.Conv2d(dim, num_feat, 3, 1, 1), nn.LeakyReLU(inplace=True))
            self.upsample = pixel_shuffle_upsampler(self.scale, num_feat)
            self.conv_last = nn.Conv2d(num_feat, 3, 3, 1, 1)

    def pad_input(self, lq: torch.Tensor) -> torch.Tensor:
        return lq

    def forward_features(self, x: torch.Tensor, *extra) -> torch.Tensor:
        raise NotImplementedError

    def reconstruct(self, x: torch.Tensor) -> torch.Tensor:
        if self.upsampler == "pixelshuffledirect":
            return self.upsample(x)
        return self.conv_last(self.upsample(self.conv_before_upsample(x)))

    def forward(self, lq: torch.Tensor, *extra) -> torch.Tensor:
        check_sr_input(lq, type(self).__name__)
        h, w = lq.shape[-2:]
        x = self.conv_first((self.pad_input(lq) - self.mean) * self.img_range)
        x = self.conv_after_body(self.forward_features(x, *extra)) + x
        x = self.reconstruct(x) / self.img_range + self.mean
        return x[..., : h * self.scale, : w * self.scale]
