"""SwinIR (Liang et al., ICCVW 2021): residual Swin Transformer blocks for image super-resolution.

Registered as ``swinir`` (classical SR, 11.9 M parameters at x4) and ``swinir_light`` (lightweight SR, 0.93 M).
The state-dict keys (buffers included) are those of the official ``models/network_swinir.py``, so a released
checkpoint (after taking its ``params`` entry) loads with ``strict=True``; the shape of the ``attn_mask`` buffers
depends on ``img_size`` (the training patch size: 64 for the DF2K x4 classical and all lightweight checkpoints,
48 for the DIV2K classical ones).
"""

from __future__ import annotations

import torch
from torch import nn

from layers.init import init_transformer_weights
from layers.padding import pad_symmetric
from layers.registry import register_model
from layers.sr_skeleton import SRSkeleton
from layers.transformer import SwinBlockBase, TokenEmbed, drop_path_rates, tokens_to_image
from layers.window_attention import attend_in_windows, shifted_window_mask


def pad_like_swinir_test(x: torch.Tensor, window_size: int) -> torch.Tensor:
    """Mirror-pad bottom and right as the official ``main_test_swinir.py`` does before inference.

    Each side grows to ``(n // window_size + 1) * window_size``, so a side that is already a multiple of the window
    still gains a full window (the official rule, kept because it changes the border pixels of the output). The
    padding is the flipped image appended after the last row/column (``pad_symmetric``).
    """
    h, w = x.shape[-2:]
    return pad_symmetric(x, (h // window_size + 1) * window_size, (w // window_size + 1) * window_size)


class SwinTransformerBlock(SwinBlockBase):
    """``x + (S)W-MSA(LN x)``, then ``x + MLP(LN x)``, on tokens [B, H*W, C].

    Args:
        dim: channels.
        input_resolution: (H, W) of the training patches; sets the ``attn_mask`` buffer of shifted blocks and, if
            not larger than the window, shrinks the window to it and turns the shift off (official behaviour).
        num_heads: attention heads.
        window_size: window side.
        shift: cyclic shift of the windows (0 or window_size // 2).
        mlp_ratio: MLP hidden width / dim.
        drop_path: stochastic depth rate of both residual branches.
    """

    def __init__(self, *, dim: int, input_resolution: tuple[int, int], num_heads: int, window_size: int, shift: int,
                 mlp_ratio: float, drop_path: float) -> None:
        super().__init__(dim=dim, input_resolution=input_resolution, num_heads=num_heads, window_size=window_size,
                         shift=shift, mlp_ratio=mlp_ratio, drop_path=drop_path, register_index=True)
        mask = shifted_window_mask(*input_resolution, self.window_size, self.shift) if self.shift else None
        self.register_buffer("attn_mask", mask)

    def forward(self, x: torch.Tensor, x_size: tuple[int, int], mask: torch.Tensor | None) -> torch.Tensor:
        """``mask`` is the shift mask for ``x_size``; the stored buffer is used when the size is the training one."""
        h, w = x_size
        if self.shift and tuple(x_size) == tuple(self.input_resolution):
            mask = self.attn_mask
        attn = attend_in_windows(self.norm1(x).view(x.shape[0], h, w, -1), self.attn, shift=self.shift, mask=mask)
        return self.mlp_residual(x + self.drop_path(attn.reshape(x.shape)))


class BlockStack(nn.Module):
    """The ``residual_group`` of an RSTB: its Swin blocks, shift off on even and on on odd positions."""

    def __init__(self, *, dim: int, input_resolution: tuple[int, int], depth: int, num_heads: int, window_size: int,
                 mlp_ratio: float, drop_path: list[float]) -> None:
        super().__init__()
        self.blocks = nn.ModuleList(
            SwinTransformerBlock(dim=dim, input_resolution=input_resolution, num_heads=num_heads, window_size=window_size,
                                 shift=0 if i % 2 == 0 else window_size // 2, mlp_ratio=mlp_ratio, drop_path=drop_path[i])
            for i in range(depth))

    def forward(self, x: torch.Tensor, x_size: tuple[int, int], mask: torch.Tensor | None) -> torch.Tensor:
        for block in self.blocks:
            x = block(x, x_size, mask)
        return x


class RSTB(nn.Module):
    """Residual Swin Transformer Block: Swin blocks, conv3x3 on the image layout, plus the group input."""

    def __init__(self, *, dim: int, drop_path: list[float], **stack) -> None:
        super().__init__()
        self.residual_group = BlockStack(dim=dim, drop_path=drop_path, **stack)
        self.conv = nn.Conv2d(dim, dim, 3, 1, 1)

    def forward(self, x: torch.Tensor, x_size: tuple[int, int], mask: torch.Tensor | None) -> torch.Tensor:
        y = tokens_to_image(self.residual_group(x, x_size, mask), *x_size)
        return self.conv(y).flatten(2).transpose(1, 2) + x


class SwinIR(SRSkeleton):
    """SwinIR for classical (``upsampler="pixelshuffle"``) and lightweight (``"pixelshuffledirect"``) SR.

    ``forward(lq)`` (``SRSkeleton``): RGB in [0, 1], [B, 3, h, w] of any size -> [B, 3, s*h, s*w], not clamped. The
    input is mirror-padded as the official test script does (`pad_like_swinir_test`); the output is cropped back.

    Args:
        scale: upscaling factor.
        img_size: training patch size; only sets the ``attn_mask`` buffers' shape (see module docstring).
        embed_dim, depths, num_heads, window_size, mlp_ratio: the transformer body.
        drop_path_rate: stochastic depth, rising linearly over all blocks from 0 to this value.
        img_range: multiplier applied after subtracting the mean (1.0 in all SR checkpoints).
        upsampler: ``"pixelshuffle"`` or ``"pixelshuffledirect"`` (see ``SRSkeleton.build_skeleton``).
    """

    def __init__(self, *, scale: int, img_size: int, embed_dim: int, depths: tuple[int, ...], num_heads: tuple[int, ...],
                 window_size: int, mlp_ratio: float, drop_path_rate: float, img_range: float, upsampler: str) -> None:
        super().__init__()
        if len(depths) != len(num_heads):
            raise ValueError(f"depths {depths} and num_heads {num_heads} must have the same length")
        self.window_size = window_size
        self.build_shallow(scale=scale, dim=embed_dim, img_range=img_range)
        self.patch_embed = TokenEmbed(dim=embed_dim)
        self.layers = nn.ModuleList(
            RSTB(dim=embed_dim, input_resolution=(img_size, img_size), depth=d, num_heads=nh, window_size=window_size,
                 mlp_ratio=mlp_ratio, drop_path=rates)
            for d, nh, rates in zip(depths, num_heads, drop_path_rates(depths, drop_path_rate)))
        self.norm = nn.LayerNorm(embed_dim)
        self.build_reconstruction(dim=embed_dim, upsampler=upsampler)
        self.apply(init_transformer_weights)

    def _shift_mask(self, h: int, w: int, device: torch.device) -> torch.Tensor | None:
        block = next((b for layer in self.layers for b in layer.residual_group.blocks if b.shift), None)
        if block is None:
            return None
        return shifted_window_mask(h, w, block.window_size, block.shift).to(device)

    def pad_input(self, lq: torch.Tensor) -> torch.Tensor:
        return pad_like_swinir_test(lq, self.window_size)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        h, w = x.shape[-2:]
        mask = self._shift_mask(h, w, x.device)
        tokens = self.patch_embed(x)
        for layer in self.layers:
            tokens = layer(tokens, (h, w), mask)
        return tokens_to_image(self.norm(tokens), h, w)


@register_model(family="swinir", scales=(2, 3, 4), size_multiple=8, paper="SwinIR[21]")
def swinir(*, scale: int = 4, **overrides) -> SwinIR:
    """Classical-SR SwinIR (``001_classicalSR_DF2K_s64w8_SwinIR-M_x{s}.pth``); ``img_size=48`` for the DIV2K ones."""
    model_args = dict(img_size=64, embed_dim=180, depths=(6,) * 6, num_heads=(6,) * 6, window_size=8, mlp_ratio=2.0,
                      drop_path_rate=0.1, img_range=1.0, upsampler="pixelshuffle")
    return SwinIR(scale=scale, **{**model_args, **overrides})


@register_model(family="swinir", scales=(2, 3, 4), size_multiple=8)
def swinir_light(*, scale: int = 4, **overrides) -> SwinIR:
    """Lightweight-SR SwinIR (``002_lightweightSR_DIV2K_s64w8_SwinIR-S_x{s}.pth``)."""
    model_args = dict(img_size=64, embed_dim=60, depths=(6,) * 4, num_heads=(6,) * 4, window_size=8, mlp_ratio=2.0,
                      drop_path_rate=0.1, img_range=1.0, upsampler="pixelshuffledirect")
    return SwinIR(scale=scale, **{**model_args, **overrides})
