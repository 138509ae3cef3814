"""HAT (Chen et al., CVPR 2023): Hybrid Attention Transformer for image super-resolution.

Registered as ``hat`` (20.8 M parameters at x4) and ``hat_s`` (HAT-S, 9.6 M). Each residual hybrid attention group
(RHAG) stacks hybrid attention blocks (window self-attention plus a scaled channel-attention conv branch) and one
overlapping cross-attention block (OCAB), then a conv and the group's input. The state-dict keys (including the
network-level ``relative_position_index_SA`` / ``relative_position_index_OCA`` buffers) are those of the official
``hat/archs/hat_arch.py``, so a released checkpoint (its ``params_ema`` entry) loads with ``strict=True``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from layers.channel_attention import CAB
from layers.init import init_transformer_weights
from layers.padding import pad_reflect_to_multiple
from layers.registry import register_model
from layers.sr_skeleton import SRSkeleton
from layers.transformer import Mlp, SwinBlockBase, TokenEmbed, drop_path_rates, tokens_to_image
from layers.window_attention import (
    attend_in_windows,
    relative_position_index,
    shifted_window_mask,
    window_partition,
    window_reverse,
)

# HATModel.test reflect-pads the input to a multiple of the window (nothing if already one).
pad_like_hat_test = pad_reflect_to_multiple


def overlapping_relative_position_index(window_size: int, overlap_size: int) -> torch.Tensor:
    """Bias-table index for OCAB, [window_size^2, overlap_size^2] int64, built as the official ``calculate_rpi_oca``.

    With e = key row in the overlapping window and o = query row in the window, the row index is
    ``(e - o) + window_size - overlap_size + 1`` (same for columns), flattened with stride
    ``window_size + overlap_size - 1``. The official offset does not centre the displacement, so some indices are
    negative; PyTorch indexing wraps them, which makes the map a cyclic relabelling of the (w + o - 1)^2 table
    entries: still one entry per displacement. Kept as is because the index is a buffer of the checkpoints.
    """
    qy, qx = (t.flatten() for t in torch.meshgrid(torch.arange(window_size), torch.arange(window_size), indexing="ij"))
    ky, kx = (t.flatten() for t in torch.meshgrid(torch.arange(overlap_size), torch.arange(overlap_size), indexing="ij"))
    offset = window_size - overlap_size + 1
    dy = ky[None, :] - qy[:, None] + offset
    dx = kx[None, :] - qx[:, None] + offset
    return dy * (window_size + overlap_size - 1) + dx


class HAB(SwinBlockBase):
    """Hybrid attention block: ``x + (S)W-MSA(LN x) + conv_scale * CAB(LN x)``, then ``x + MLP(LN x)``."""

    def __init__(self, *, dim: int, input_resolution: tuple[int, int], num_heads: int, window_size: int, shift: int,
                 compress_ratio: int, squeeze_factor: int, conv_scale: float, mlp_ratio: float, drop_path: float) -> None:
        super().__init__(dim=dim, input_resolution=input_resolution, num_heads=num_heads, window_size=window_size,
                         shift=shift, mlp_ratio=mlp_ratio, drop_path=drop_path, register_index=False)
        self.conv_scale = conv_scale
        self.conv_block = CAB(dim=dim, compress=compress_ratio, squeeze=squeeze_factor)

    def forward(self, x: torch.Tensor, x_size: tuple[int, int], rpi: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
        h, w = x_size
        b, n, c = x.shape
        y = self.norm1(x).view(b, h, w, c)
        conv = self.conv_block(y.permute(0, 3, 1, 2)).permute(0, 2, 3, 1).reshape(b, n, c)
        attn = attend_in_windows(y, self.attn, shift=self.shift, mask=mask, rpi=rpi).reshape(b, n, c)
        return self.mlp_residual(x + self.drop_path(attn) + self.conv_scale * conv)


class OCAB(nn.Module):
    """Overlapping cross-attention: queries from each window, keys/values from a larger window around it.

    The key/value window has side ``window_size + int(overlap_ratio * window_size)`` and is cut from the zero-padded
    k/v maps with ``F.unfold`` (stride window_size), as in the official code; a relative position bias table
    covers all query/key displacements. Then ``x + proj(attn)`` and ``x + MLP(LN x)``.
    """

    def __init__(self, *, dim: int, window_size: int, overlap_ratio: float, num_heads: int, mlp_ratio: float) -> None:
        super().__init__()
        self.window_size = window_size
        self.overlap_size = window_size + int(overlap_ratio * window_size)
        self.num_heads = num_heads
        self.scale = (dim // num_heads) ** -0.5
        self.norm1 = nn.LayerNorm(dim)
        self.qkv = nn.Linear(dim, 3 * dim)
        self.relative_position_bias_table = nn.Parameter(torch.zeros((window_size + self.overlap_size - 1) ** 2, num_heads))
        nn.init.trunc_normal_(self.relative_position_bias_table, std=0.02)
        self.proj = nn.Linear(dim, dim)
        self.norm2 = nn.LayerNorm(dim)
        self.mlp = Mlp(dim=dim, hidden=int(dim * mlp_ratio))

    def forward(self, x: torch.Tensor, x_size: tuple[int, int], rpi: torch.Tensor) -> torch.Tensor:
        h, w = x_size
        b, n, c = x.shape
        ws, os_, nh = self.window_size, self.overlap_size, self.num_heads
        q, k, v = self.qkv(self.norm1(x)).view(b, h, w, 3, c).unbind(3)
        q = window_partition(q, ws)  # [b*nW, ws^2, c]
        kv = torch.cat([k, v], dim=-1).permute(0, 3, 1, 2)  # [b, 2c, h, w]
        kv = F.unfold(kv, kernel_size=os_, stride=ws, padding=(os_ - ws) // 2)  # [b, 2c*os^2, nW]
        k, v = kv.view(b, 2, c, os_ * os_, -1).permute(1, 0, 4, 3, 2).reshape(2, -1, os_ * os_, c).unbind(0)
        q, k, v = (t.reshape(t.shape[0], t.shape[1], nh, c // nh).transpose(1, 2) for t in (q, k, v))
        bias = self.relative_position_bias_table[rpi.reshape(-1)].view(ws * ws, os_ * os_, nh).permute(2, 0, 1)
        out = F.scaled_dot_product_attention(q, k, v, attn_mask=bias.unsqueeze(0).to(q.dtype), scale=self.scale)
        out = window_reverse(out.transpose(1, 2).reshape(-1, ws * ws, c), ws, h, w).reshape(b, n, c)
        x = x + self.proj(out)
        return x + self.mlp(self.norm2(x))


class AttenBlocks(nn.Module):
    """The ``residual_group`` of an RHAG: HABs (shift on odd positions), then one OCAB (``overlap_attn``)."""

    def __init__(self, *, dim: int, input_resolution: tuple[int, int], depth: int, num_heads: int, window_size: int,
                 compress_ratio: int, squeeze_factor: int, conv_scale: float, overlap_ratio: float, mlp_ratio: float,
                 drop_path: list[float]) -> None:
        super().__init__()
        self.blocks = nn.ModuleList(
            HAB(dim=dim, input_resolution=input_resolution, num_heads=num_heads, window_size=window_size,
                shift=0 if i % 2 == 0 else window_size // 2, compress_ratio=compress_ratio, squeeze_factor=squeeze_factor,
                conv_scale=conv_scale, mlp_ratio=mlp_ratio, drop_path=drop_path[i])
            for i in range(depth))
        self.overlap_attn = OCAB(dim=dim, window_size=window_size, overlap_ratio=overlap_ratio, num_heads=num_heads,
                                 mlp_ratio=mlp_ratio)

    def forward(self, x: torch.Tensor, x_size: tuple[int, int], rpi_sa: torch.Tensor, rpi_oca: torch.Tensor,
                mask: torch.Tensor | None) -> torch.Tensor:
        for block in self.blocks:
            x = block(x, x_size, rpi_sa, mask)
        return self.overlap_attn(x, x_size, rpi_oca)


class RHAG(nn.Module):
    """Residual hybrid attention group: AttenBlocks, conv3x3 on the image layout, plus the group input."""

    def __init__(self, *, dim: int, **blocks) -> None:
        super().__init__()
        self.residual_group = AttenBlocks(dim=dim, **blocks)
        self.conv = nn.Conv2d(dim, dim, 3, 1, 1)

    def forward(self, x: torch.Tensor, x_size: tuple[int, int], *args) -> torch.Tensor:
        y = tokens_to_image(self.residual_group(x, x_size, *args), *x_size)
        return self.conv(y).flatten(2).transpose(1, 2) + x


class HAT(SRSkeleton):
    """HAT for classical SR (pixel-shuffle reconstruction).

    ``forward(lq)`` (``SRSkeleton``): RGB in [0, 1], [B, 3, h, w] of any size -> [B, 3, s*h, s*w], not clamped. The
    input is reflect-padded to a multiple of the window (`pad_like_hat_test`, the official ``HATModel.test``); the
    output is cropped back.

    Args:
        scale: upscaling factor.
        img_size: training patch size; only matters if not larger than the window (the window then shrinks).
        embed_dim, depths, num_heads, window_size, mlp_ratio: the transformer body.
        compress_ratio, squeeze_factor, conv_scale: the CAB branch of every HAB.
        overlap_ratio: OCAB key/value window = window_size + int(overlap_ratio * window_size).
        drop_path_rate: stochastic depth, rising linearly over all HABs from 0 to this value.
        img_range: multiplier applied after subtracting the mean (1.0 in all SR checkpoints).
    """

    def __init__(self, *, scale: int, img_size: int, embed_dim: int, depths: tuple[int, ...], num_heads: tuple[int, ...],
                 window_size: int, compress_ratio: int, squeeze_factor: int, conv_scale: float, overlap_ratio: float,
                 mlp_ratio: float, drop_path_rate: float, img_range: float) -> None:
        super().__init__()
        if len(depths) != len(num_heads):
            raise ValueError(f"depths {depths} and num_heads {num_heads} must have the same length")
        if embed_dim < max(compress_ratio, squeeze_factor):
            raise ValueError(f"embed_dim {embed_dim} is smaller than compress_ratio {compress_ratio} or squeeze_factor "
                             f"{squeeze_factor}: the CAB would have no channels")
        self.window_size = window_size
        self.shift = window_size // 2
        overlap_size = window_size + int(overlap_ratio * window_size)
        self.register_buffer("relative_position_index_SA", relative_position_index(window_size))
        self.register_buffer("relative_position_index_OCA", overlapping_relative_position_index(window_size, overlap_size))
        self.build_shallow(scale=scale, dim=embed_dim, img_range=img_range)
        self.patch_embed = TokenEmbed(dim=embed_dim)
        self.layers = nn.ModuleList(
            RHAG(dim=embed_dim, input_resolution=(img_size, img_size), depth=d, num_heads=nh, window_size=window_size,
                 compress_ratio=compress_ratio, squeeze_factor=squeeze_factor, conv_scale=conv_scale,
                 overlap_ratio=overlap_ratio, mlp_ratio=mlp_ratio, drop_path=rates)
            for d, nh, rates in zip(depths, num_heads, drop_path_rates(depths, drop_path_rate)))
        self.norm = nn.LayerNorm(embed_dim)
        self.build_reconstruction(dim=embed_dim)
        self.apply(init_transformer_weights)

    def pad_input(self, lq: torch.Tensor) -> torch.Tensor:
        return pad_like_hat_test(lq, self.window_size)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        h, w = x.shape[-2:]
        # One mask for the whole network, computed per input size (the official forward does the same).
        mask = shifted_window_mask(h, w, self.window_size, self.shift).to(x.device)
        tokens = self.patch_embed(x)
        for layer in self.layers:
            tokens = layer(tokens, (h, w), self.relative_position_index_SA, self.relative_position_index_OCA, mask)
        return tokens_to_image(self.norm(tokens), h, w)


@register_model(family="hat", scales=(2, 3, 4), size_multiple=16, paper="HAT[22]")
def hat(*, scale: int = 4, **overrides) -> HAT:
    """HAT as in ``options/test/HAT_SRx{2,3,4}.yml`` (checkpoints ``HAT_SRx{s}.pth``)."""
    model_args = dict(img_size=64, embed_dim=180, depths=(6,) * 6, num_heads=(6,) * 6, window_size=16, compress_ratio=3,
                      squeeze_factor=30, conv_scale=0.01, overlap_ratio=0.5, mlp_ratio=2.0, drop_path_rate=0.1,
                      img_range=1.0)
    return HAT(scale=scale, **{**model_args, **overrides})


@register_model(family="hat", scales=(2, 3, 4), size_multiple=16)
def hat_s(*, scale: int = 4, **overrides) -> HAT:
    """HAT-S as in ``options/test/HAT-S_SRx{2,3,4}.yml`` (checkpoints ``HAT-S_SRx{s}.pth``)."""
    model_args = dict(img_size=64, embed_dim=144, depths=(6,) * 6, num_heads=(6,) * 6, window_size=16, compress_ratio=24,
                      squeeze_factor=24, conv_scale=0.01, overlap_ratio=0.5, mlp_ratio=2.0, drop_path_rate=0.1,
                      img_range=1.0)
    return HAT(scale=scale, **{**model_args, **overrides})
