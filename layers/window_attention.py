"""(Shifted) window self-attention with a relative position bias (Swin), shared by SwinIR, HAT and MambaIRv2.

Module and attribute names follow the official code (JingyunLiang/SwinIR, XPixelGroup/HAT, csguoh/MambaIR) because
they are the state-dict keys of the released checkpoints; the code itself is written from the papers.
"""

from __future__ import annotations

from functools import lru_cache

import torch
import torch.nn.functional as F
from torch import nn

# Additive logit for token pairs that a shifted window joins across the image border; the official value.
MASKED_LOGIT = -100.0


def window_partition(x: torch.Tensor, window_size: int) -> torch.Tensor:
    """[B, H, W, C] -> [B * nW, window_size**2, C], windows in row-major order per image."""
    b, h, w, c = x.shape
    x = x.view(b, h // window_size, window_size, w // window_size, window_size, c)
    return x.permute(0, 1, 3, 2, 4, 5).reshape(-1, window_size * window_size, c)


def window_reverse(windows: torch.Tensor, window_size: int, h: int, w: int) -> torch.Tensor:
    """Inverse of `window_partition`: [B * nW, window_size**2, C] -> [B, H, W, C]."""
    c = windows.shape[-1]
    x = windows.view(-1, h // window_size, w // window_size, window_size, window_size, c)
    return x.permute(0, 1, 3, 2, 4, 5).reshape(-1, h, w, c)


def relative_position_index(window_size: int) -> torch.Tensor:
    """Index into a (2w-1)^2 bias table for every (query, key) pair of one w x w window, [w^2, w^2] int64.

    The displacement (dy, dx) = query - key, each in [-(w-1), w-1], is shifted to start at 0 and flattened
    row-major: (dy + w - 1) * (2w - 1) + (dx + w - 1).
    """
    ys, xs = torch.meshgrid(torch.arange(window_size), torch.arange(window_size), indexing="ij")
    ys, xs = ys.flatten(), xs.flatten()
    dy = ys[:, None] - ys[None, :] + window_size - 1
    dx = xs[:, None] - xs[None, :] + window_size - 1
    return dy * (2 * window_size - 1) + dx


def shifted_window_mask(h: int, w: int, window_size: int, shift: int) -> torch.Tensor:
    """Additive attention mask for windows of the map rolled by (-shift, -shift), [nW, w^2, w^2] float32.

    After the roll, each window may contain pixels from up to four regions that are not neighbours in the image
    (the bands of width `shift` that wrapped around); pairs from different regions get MASKED_LOGIT, others 0.
    """
    return _shifted_window_mask(h, w, window_size, shift).clone()


# One entry: a network builds the same mask for every shifted block, and evaluation repeats an input size; masks
# of large inputs are big (nW x w^2 x w^2), so no more are kept.
@lru_cache(maxsize=1)
def _shifted_window_mask(h: int, w: int, window_size: int, shift: int) -> torch.Tensor:
    region = torch.zeros(1, h, w, 1)
    bands = (slice(0, -window_size), slice(-window_size, -shift), slice(-shift, None))
    for i, rows in enumerate(bands):
        for j, cols in enumerate(bands):
            region[:, rows, cols, :] = 3 * i + j
    labels = window_partition(region, window_size).squeeze(-1)
    differ = labels[:, None, :] != labels[:, :, None]
    return torch.zeros(differ.shape).masked_fill(differ, MASKED_LOGIT)


class WindowAttention(nn.Module):
    """Multi-head self-attention inside a window, with a learned relative position bias (Swin).

    Args:
        dim: channels.
        window_size: side of the square window.
        num_heads: heads; ``dim`` must be divisible by it.
        register_index: keep the relative position index as this module's buffer ``relative_position_index``
            (SwinIR does); HAT and MambaIRv2 keep one shared index on the network and pass it to ``forward``.
        project_qkv: own the ``qkv`` projection (SwinIR, HAT); MambaIRv2 computes q, k, v outside and passes them
            stacked as ``[..., 3C]``.
    """

    def __init__(self, *, dim: int, window_size: int, num_heads: int, register_index: bool,
                 project_qkv: bool = True) -> None:
        super().__init__()
        if dim % num_heads:
            raise ValueError(f"dim {dim} is not divisible by num_heads {num_heads}")
        self.window_size = window_size
        self.num_heads = num_heads
        self.scale = (dim // num_heads) ** -0.5
        self.relative_position_bias_table = nn.Parameter(torch.zeros((2 * window_size - 1) ** 2, num_heads))
        if register_index:
            self.register_buffer("relative_position_index", relative_position_index(window_size))
        self.qkv = nn.Linear(dim, 3 * dim) if project_qkv else None
        self.proj = nn.Linear(dim, dim)
        nn.init.trunc_normal_(self.relative_position_bias_table, std=0.02)

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None, rpi: torch.Tensor | None = None) -> torch.Tensor:
        """x: [B * nW, N, C] windows ([.., 3C] q, k, v without ``project_qkv``); mask: [nW, N, N] additive or None;
        rpi: [N, N] index (default: own buffer)."""
        qkv = x if self.qkv is None else self.qkv(x)
        bw, n, c = qkv.shape[0], qkv.shape[1], qkv.shape[2] // 3
        rpi = self.relative_position_index if rpi is None else rpi
        bias = self.relative_position_bias_table[rpi.reshape(-1)].view(n, n, -1).permute(2, 0, 1)
        q, k, v = qkv.view(bw, n, 3, self.num_heads, c // self.num_heads).permute(2, 0, 3, 1, 4).unbind(0)
        if mask is None:
            out = F.scaled_dot_product_attention(q, k, v, attn_mask=bias.unsqueeze(0).to(q.dtype), scale=self.scale)
        else:
            nw = mask.shape[0]
            logits_bias = (bias.unsqueeze(0) + mask.unsqueeze(1)).to(q.dtype)  # [nW, nH, N, N]
            shape = (bw // nw, nw, self.num_heads, n, -1)
            out = F.scaled_dot_product_attention(q.reshape(shape), k.reshape(shape), v.reshape(shape),
                                                 attn_mask=logits_bias, scale=self.scale)
        return self.proj(out.reshape(bw, self.num_heads, n, -1).transpose(1, 2).reshape(bw, n, c))


def attend_in_windows(x: torch.Tensor, attn: WindowAttention, *, shift: int, mask: torch.Tensor | None,
                      rpi: torch.Tensor | None = None) -> torch.Tensor:
    """(Shifted) window attention over a feature map [B, H, W, C] whose sides are multiples of the window.

    With ``shift > 0`` the map is rolled by (-shift, -shift) first and back afterwards, and ``mask`` (from
    `shifted_window_mask`) keeps the wrapped-around regions apart.
    """
    _, h, w, _ = x.shape
    ws = attn.window_size
    if shift:
        x = torch.roll(x, shifts=(-shift, -shift), dims=(1, 2))
    out = window_reverse(attn(window_partition(x, ws), mask if shift else None, rpi), ws, h, w)
    if shift:
        out = torch.roll(out, shifts=(shift, shift), dims=(1, 2))
    return out
