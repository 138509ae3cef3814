"""VDSR (Kim et al., CVPR'16): 20 3x3 conv layers predicting the residual of the bicubic-upscaled Y channel.

Colour path as SRCNN (``baselines.srcnn.YChannelSR``). The paper's MatConvNet model has biases (665,921 parameters,
the figure usually quoted as "665K"); ``bias=True`` is the default. ``bias=False`` gives the 664,704-parameter layout
of the popular PyTorch port twtygqyy/pytorch-vdsr.
"""

from __future__ import annotations

import torch
from torch import nn

from baselines.srcnn import YChannelSR
from layers.registry import register_model

__all__ = ["VDSR", "vdsr"]


class _ConvReLU(nn.Module):
    def __init__(self, *, width: int, bias: bool) -> None:
        super().__init__()
        self.conv = nn.Conv2d(width, width, 3, padding=1, bias=bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.relu(self.conv(x))


class VDSR(YChannelSR):
    """conv 1->w + ReLU, (depth-2) x [conv w->w + ReLU], conv w->1; output = Y + residual.

    Args:
        scale: upscaling factor of the bicubic pre-upsampling.
        depth: number of conv layers.
            Default: 20.
        width: channels of the hidden layers.
            Default: 64.
        bias: conv biases (paper model: True).
            Default: True.
    """

    def __init__(self, *, scale: int = 4, depth: int = 20, width: int = 64, bias: bool = True) -> None:
        super().__init__(scale=scale)
        if depth < 2:
            raise ValueError(f"depth must be >= 2, got {depth}")
        self.input = nn.Conv2d(1, width, 3, padding=1, bias=bias)
        self.residual_layer = nn.Sequential(*(_ConvReLU(width=width, bias=bias) for _ in range(depth - 2)))
        self.output = nn.Conv2d(width, 1, 3, padding=1, bias=bias)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                # He et al. initialisation, as the paper (fan-out, like the reference ports).
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
                if m.bias is not None:
                    nn.init.zeros_(m.bias)

    def restore_y(self, y: torch.Tensor) -> torch.Tensor:
        return y + self.output(self.residual_layer(torch.relu(self.input(y))))


# supports_bf16=False: as SRCNN (the colour path's matmuls would run in bf16 under autocast).
@register_model(family="vdsr", tiling="exact", supports_bf16=False, paper="VDSR[23]")
def vdsr(*, scale: int = 4, depth: int = 20, width: int = 64, bias: bool = True) -> VDSR:
    """VDSR, 20 layers x 64 channels (665,921 parameters with bias) on the bicubic-upscaled Y channel."""
    return VDSR(scale=scale, depth=depth, width=width, bias=bias)
