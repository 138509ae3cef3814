"""SRCNN 9-1-5 (Dong et al., TPAMI'16) and the Y-channel colour path shared with VDSR.

Both networks restore the luma of the MATLAB-bicubic-upscaled image, as their papers do: the RGB LR input is upscaled
(``layers.imresize``), converted to BT.601 YCbCr (MATLAB ``rgb2ycbcr``: Y in [16, 235] / 255), the network maps
Y to Y, and the result is recombined with the bicubic Cb/Cr and converted back to RGB.

SRCNN padding: the paper trains with valid convolutions (33x33 in, 21x21 out). The authors' test code
(``SRCNN.m``) runs every layer as ``imfilter(..., 'same', 'replicate')``, i.e. "same" size with replicated borders;
``forward`` does the same, so the output has the input's size and border pixels are not lost.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from layers.checks import check_sr_input
from layers.imresize import imresize
from layers.registry import register_model

__all__ = ["SRCNN", "YChannelSR", "rgb_to_ycbcr", "srcnn", "ycbcr_to_rgb"]

# MATLAB rgb2ycbcr for RGB in [0, 1], output in [0, 1]: ycbcr = (offset + M @ rgb) / 255.
_RGB2YCBCR = torch.tensor([[65.481, 128.553, 24.966],
                           [-37.797, -74.203, 112.0],
                           [112.0, -93.786, -18.214]], dtype=torch.float64) / 255.0
_YCBCR_OFFSET = torch.tensor([16.0, 128.0, 128.0], dtype=torch.float64) / 255.0
# The exact inverse (MATLAB's ycbcr2rgb rounds these coefficients; the difference is far below 1/255).
_YCBCR2RGB = torch.linalg.inv(_RGB2YCBCR)


def rgb_to_ycbcr(rgb: torch.Tensor) -> torch.Tensor:
    """[B, 3, H, W] RGB in [0, 1] -> BT.601 YCbCr scaled to [0, 1] (Y in [16/255, 235/255])."""
    m, off = _RGB2YCBCR.to(rgb), _YCBCR_OFFSET.to(rgb)
    return torch.einsum("ij,bjhw->bihw", m, rgb) + off.view(1, 3, 1, 1)


def ycbcr_to_rgb(ycbcr: torch.Tensor) -> torch.Tensor:
    """Inverse of ``rgb_to_ycbcr``."""
    m, off = _YCBCR2RGB.to(ycbcr), _YCBCR_OFFSET.to(ycbcr)
    return torch.einsum("ij,bjhw->bihw", m, ycbcr - off.view(1, 3, 1, 1))


class YChannelSR(nn.Module):
    """RGB LR -> RGB SR through a luma-only network applied after bicubic upscaling (subclasses define ``restore_y``)."""

    def __init__(self, *, scale: int) -> None:
        super().__init__()
        self.scale = scale

    def restore_y(self, y: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def forward(self, lq: torch.Tensor) -> torch.Tensor:
        check_sr_input(lq, type(self).__name__)
        ycbcr = rgb_to_ycbcr(imresize(lq, self.scale))
        y = self.restore_y(ycbcr[:, :1])
        return ycbcr_to_rgb(torch.cat([y, ycbcr[:, 1:]], dim=1))


class SRCNN(YChannelSR):
    """Three conv layers f1-f2-f3 with n1, n2 filters, ReLU after the first two ("same" replicate padding).

    Args:
        scale: upscaling factor of the bicubic pre-upsampling.
        n1, n2: filters of layers 1 and 2.
            Default: 64, 32.
        f1, f2, f3: kernel sizes.
            Default: 9, 1, 5.
    """

    def __init__(self, *, scale: int = 4, n1: int = 64, n2: int = 32, f1: int = 9, f2: int = 1, f3: int = 5) -> None:
        super().__init__(scale=scale)
        if not all(f % 2 for f in (f1, f2, f3)):
            raise ValueError(f"kernel sizes must be odd for 'same' padding, got {(f1, f2, f3)}")
        self.conv1 = nn.Conv2d(1, n1, f1)
        self.conv2 = nn.Conv2d(n1, n2, f2)
        self.conv3 = nn.Conv2d(n2, 1, f3)
        for conv in (self.conv1, self.conv2, self.conv3):
            nn.init.normal_(conv.weight, std=1e-3)  # the paper's N(0, 0.001) initialisation
            nn.init.zeros_(conv.bias)

    @staticmethod
    def _same(conv: nn.Conv2d, x: torch.Tensor) -> torch.Tensor:
        p = conv.kernel_size[0] // 2
        return conv(F.pad(x, (p, p, p, p), mode="replicate") if p else x)

    def restore_y(self, y: torch.Tensor) -> torch.Tensor:
        x = F.relu(self._same(self.conv1, y))
        x = F.relu(self._same(self.conv2, x))
        return self._same(self.conv3, x)


# supports_bf16=False: under bf16 autocast the bicubic and colour-conversion matmuls would run in bf16.
@register_model(family="srcnn", tiling="exact", supports_bf16=False, paper="SRCNN[24]")
def srcnn(*, scale: int = 4, n1: int = 64, n2: int = 32, f1: int = 9, f2: int = 1, f3: int = 5) -> SRCNN:
    """SRCNN 9-1-5 (8,129 parameters) on the bicubic-upscaled Y channel."""
    return SRCNN(scale=scale, n1=n1, n2=n2, f1=f1, f2=f2, f3=f3)
