"""Token-level pieces of the Swin-style SR transformers: the MLP, the Swin block's parts, the token embedding and
the way back to a map."""

from __future__ import annotations

import torch
from timm.layers import DropPath
from torch import nn

from layers.window_attention import WindowAttention


class Mlp(nn.Module):
    """Token-wise feed-forward: Linear(dim, hidden), GELU, Linear(hidden, dim)."""

    def __init__(self, *, dim: int, hidden: int) -> None:
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden)
        self.act = nn.GELU()
        self.fc2 = nn.Linear(hidden, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(self.act(self.fc1(x)))


def drop_path_rates(depths: tuple[int, ...] | list[int], max_rate: float) -> list[list[float]]:
    """Stochastic depth rising linearly from 0 to ``max_rate`` over all blocks, split per group of ``depths``."""
    rates = torch.linspace(0, max_rate, sum(depths), device="cpu").tolist()  # plain floats, also under a meta device
    starts = [sum(depths[:i]) for i in range(len(depths))]
    return [rates[s:s + d] for s, d in zip(starts, depths)]


class SwinBlockBase(nn.Module):
    """The parts of a Swin block that SwinIR's ``SwinTransformerBlock`` and HAT's ``HAB`` share, under the official
    names: ``norm1``, ``attn`` (window attention), ``drop_path``, ``norm2``, ``mlp``. Subclasses write ``forward``.

    As in both official codes, a window not smaller than ``input_resolution`` shrinks to it and the shift turns off.

    Args:
        dim: channels.
        input_resolution: (H, W) of the training patches.
        num_heads: attention heads.
        window_size: window side.
        shift: cyclic shift of the windows (0 or window_size // 2).
        mlp_ratio: MLP hidden width / dim.
        drop_path: stochastic depth rate of the residual branches.
        register_index: see ``WindowAttention``.
    """

    def __init__(self, *, dim: int, input_resolution: tuple[int, int], num_heads: int, window_size: int, shift: int,
                 mlp_ratio: float, drop_path: float, register_index: bool) -> None:
        super().__init__()
        if min(input_resolution) <= window_size:
            window_size, shift = min(input_resolution), 0
        self.input_resolution, self.window_size, self.shift = input_resolution, window_size, shift
        self.norm1 = nn.LayerNorm(dim)
        self.attn = WindowAttention(dim=dim, window_size=window_size, num_heads=num_heads, register_index=register_index)
        self.drop_path = DropPath(drop_path) if drop_path > 0 else nn.Identity()
        self.norm2 = nn.LayerNorm(dim)
        self.mlp = Mlp(dim=dim, hidden=int(dim * mlp_ratio))

    def mlp_residual(self, x: torch.Tensor) -> torch.Tensor:
        """``x + MLP(LN x)`` with stochastic depth."""
        return x + self.drop_path(self.mlp(self.norm2(x)))


class TokenEmbed(nn.Module):
    """[B, C, H, W] -> LayerNorm'd tokens [B, H*W, C] (the official ``patch_embed`` with patch size 1)."""

    def __init__(self, *, dim: int) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.norm(x.flatten(2).transpose(1, 2))


def tokens_to_image(x: torch.Tensor, h: int, w: int) -> torch.Tensor:
    """[B, H*W, C] -> [B, C, H, W]."""
    return x.transpose(1, 2).reshape(x.shape[0], -1, h, w)
