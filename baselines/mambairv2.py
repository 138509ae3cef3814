"""MambaIRv2 (Guo et al., CVPR 2025): attentive state-space groups mixing shifted-window attention and the ASSM.

Re-implemented from the paper with the layer names of the official code (csguoh/MambaIR,
``basicsr/archs/mambairv2_arch.py`` and ``mambairv2light_arch.py``), so official checkpoints load with
``strict=True``. The light variant differs only in its feed-forward (gated MLP instead of ConvFFN) and its one-step
pixel-shuffle tail.

Routing (deterministic in eval). The official ASSM assigns every token to one of ``num_tokens`` prompts with
``gumbel_softmax(hard=True)`` in training *and* at inference, so its outputs are random. Here training keeps the
Gumbel straight-through estimator, while eval mode takes the mode of that distribution, the hard argmax of the route
logits; tokens are then sorted by prompt index with a stable sort (the official sort is unstable). Kept as in the
official code: the prompt is added to C in the original token order although the scanned tokens are sorted.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from baselines.mambair import SSMParams
from layers.init import init_transformer_weights
from layers.padding import pad_symmetric
from layers.registry import register_model
from layers.sr_skeleton import SRSkeleton
from layers.transformer import TokenEmbed
from layers.window_attention import WindowAttention, attend_in_windows, relative_position_index, shifted_window_mask


class DWConv(nn.Module):
    """Depthwise k x k conv + GELU on tokens, under the official ``depthwise_conv`` name."""

    def __init__(self, *, dim: int, kernel_size: int) -> None:
        super().__init__()
        self.depthwise_conv = nn.Sequential(nn.Conv2d(dim, dim, kernel_size, padding=kernel_size // 2, groups=dim), nn.GELU())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x [b, h, w, c]."""
        return self.depthwise_conv(x.permute(0, 3, 1, 2)).permute(0, 2, 3, 1)


class ConvFFN(nn.Module):
    """fc1, GELU, x + GELU(dwconv(x)), fc2."""

    def __init__(self, *, dim: int, hidden: int, kernel_size: int) -> None:
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden)
        self.act = nn.GELU()
        self.dwconv = DWConv(dim=hidden, kernel_size=kernel_size)
        self.fc2 = nn.Linear(hidden, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.act(self.fc1(x))
        return self.fc2(x + self.dwconv(x))


class Gate(nn.Module):
    """Spatial gate of the gated MLP: x1 * dwconv5x5(LN(x2)) for the two channel halves of x."""

    def __init__(self, *, dim: int) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(dim)
        self.conv = nn.Conv2d(dim, dim, 5, padding=2, groups=dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x1, x2 = x.chunk(2, dim=-1)
        return x1 * self.conv(self.norm(x2).permute(0, 3, 1, 2)).permute(0, 2, 3, 1)


class GatedMLP(nn.Module):
    """fc1 (C -> hidden), GELU, gate (-> hidden/2), fc2 (-> C): the light model's feed-forward."""

    def __init__(self, *, dim: int, hidden: int) -> None:
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden)
        self.act = nn.GELU()
        self.sg = Gate(dim=hidden // 2)
        self.fc2 = nn.Linear(hidden // 2, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(self.sg(self.act(self.fc1(x))))


class SelectiveScan(SSMParams):
    """The ASSM's single-direction S6 over ``d_model`` channels (official name ``selectiveScan``)."""

    def __init__(self, *, d_model: int, d_state: int) -> None:
        super().__init__(d_inner=d_model, d_state=d_state, dt_rank=-(-d_model // 16), k=1)


class ASSM(nn.Module):
    """Attentive state-space module: route tokens to prompts, scan them grouped by prompt, add the prompt to C."""

    def __init__(self, *, dim: int, d_state: int, num_tokens: int, inner_rank: int, mlp_ratio: float) -> None:
        super().__init__()
        hidden = int(dim * mlp_ratio)
        self.d_state, self.num_tokens = d_state, num_tokens
        self.selectiveScan = SelectiveScan(d_model=hidden, d_state=d_state)
        self.out_norm = nn.LayerNorm(hidden)
        self.out_proj = nn.Linear(hidden, dim)
        self.in_proj = nn.Sequential(nn.Conv2d(dim, hidden, 1))
        self.CPE = nn.Sequential(nn.Conv2d(hidden, hidden, 3, padding=1, groups=hidden))
        self.embeddingB = nn.Embedding(num_tokens, inner_rank)
        nn.init.uniform_(self.embeddingB.weight, -1 / num_tokens, 1 / num_tokens)
        self.route = nn.Sequential(nn.Linear(dim, dim // 3), nn.GELU(), nn.Linear(dim // 3, num_tokens), nn.LogSoftmax(dim=-1))

    def forward(self, x: torch.Tensor, embedding_a: torch.Tensor) -> torch.Tensor:
        """x [b, h, w, C]; embedding_a [inner_rank, d_state] (the layer's ``embeddingA``)."""
        b, h, w, c = x.shape
        logits = self.route(x).view(b, h * w, self.num_tokens)
        if self.training:
            policy = F.gumbel_softmax(logits, hard=True, dim=-1)
        else:
            policy = F.one_hot(logits.argmax(-1), self.num_tokens).to(logits.dtype)
        prompt = policy @ (self.embeddingB.weight @ embedding_a)  # [b, L, d_state]
        order = policy.detach().argmax(-1).sort(dim=-1, stable=True).indices
        inverse = torch.empty_like(order).scatter_(-1, order, torch.arange(h * w, device=x.device).expand(b, -1))
        u = self.in_proj(x.permute(0, 3, 1, 2))
        u = (u * torch.sigmoid(self.CPE(u))).flatten(2)  # [b, hidden, L]
        u = torch.gather(u, 2, order[:, None, :].expand_as(u))
        y = self.selectiveScan.scan(u[:, None], prompt.transpose(1, 2)[:, None])[:, 0]
        y = self.out_proj(self.out_norm(y.transpose(1, 2)))
        return torch.gather(y, 1, inverse[:, :, None].expand_as(y)).view(b, h, w, c)


class AttentiveLayer(nn.Module):
    """Window MHSA + FFN, then ASSM + FFN, each part wrapped by a 1e-4-initialised layer-scaled shortcut."""

    def __init__(self, *, dim: int, d_state: int, num_heads: int, window_size: int, shift_size: int, inner_rank: int,
                 num_tokens: int, convffn_kernel_size: int, mlp_ratio: float, light: bool) -> None:
        super().__init__()
        self.window_size, self.shift_size = window_size, shift_size
        self.norm1, self.norm2, self.norm3, self.norm4 = (nn.LayerNorm(dim) for _ in range(4))
        self.scale1 = nn.Parameter(1e-4 * torch.ones(dim))
        self.scale2 = nn.Parameter(1e-4 * torch.ones(dim))
        self.wqkv = nn.Linear(dim, 3 * dim)
        self.win_mhsa = WindowAttention(dim=dim, window_size=window_size, num_heads=num_heads, register_index=False,
                                        project_qkv=False)
        self.assm = ASSM(dim=dim, d_state=d_state, num_tokens=num_tokens, inner_rank=inner_rank, mlp_ratio=mlp_ratio)
        hidden = int(dim * mlp_ratio)
        if light:
            self.convffn1, self.convffn2 = GatedMLP(dim=dim, hidden=hidden), GatedMLP(dim=dim, hidden=hidden)
        else:
            self.convffn1 = ConvFFN(dim=dim, hidden=hidden, kernel_size=convffn_kernel_size)
            self.convffn2 = ConvFFN(dim=dim, hidden=hidden, kernel_size=convffn_kernel_size)
        self.embeddingA = nn.Embedding(inner_rank, d_state)
        nn.init.uniform_(self.embeddingA.weight, -1 / inner_rank, 1 / inner_rank)

    def forward(self, x: torch.Tensor, rpi: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """x [b, h, w, C] with h, w multiples of the window size."""
        attn = attend_in_windows(self.wqkv(self.norm1(x)), self.win_mhsa, shift=self.shift_size, mask=mask, rpi=rpi)
        x_win = attn + x
        x_win = x_win + self.convffn1(self.norm2(x_win))
        x = x * self.scale1 + x_win
        x_a = self.assm(self.norm3(x), self.embeddingA.weight) + x
        return x * self.scale2 + x_a + self.convffn2(self.norm4(x_a))


class ASSB(nn.Module):
    """Attentive state-space group: attentive layers (shift 0 / ws/2 alternating), conv3x3, plus the group input."""

    def __init__(self, *, dim: int, depth: int, **layer_kw) -> None:
        super().__init__()
        ws = layer_kw["window_size"]
        self.residual_group = nn.Module()
        self.residual_group.layers = nn.ModuleList(
            AttentiveLayer(dim=dim, shift_size=0 if i % 2 == 0 else ws // 2, **layer_kw) for i in range(depth))
        self.conv = nn.Conv2d(dim, dim, 3, padding=1)

    def forward(self, x: torch.Tensor, rpi: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        y = x
        for layer in self.residual_group.layers:
            y = layer(y, rpi, mask)
        return self.conv(y.permute(0, 3, 1, 2)).permute(0, 2, 3, 1) + x


def mirror_pad(x: torch.Tensor, h: int, w: int) -> torch.Tensor:
    """Pad [B, C, h0, w0] at the bottom/right to h x w as the official test code does (``pad_symmetric``)."""
    return pad_symmetric(x, h, w)


class MambaIRv2(SRSkeleton):
    """MambaIRv2 for SR. Pads the input to a multiple of the window size (flip-reflect) and crops the output.

    Args:
        scale: upscaling factor.
        embed_dim: feature width C.
        depths: attentive layers per group.
        num_heads: attention heads per group.
        d_state: SSM state size.
        window_size: attention window (and padding multiple).
        inner_rank: rank of the prompt factorisation embeddingB @ embeddingA.
        num_tokens: number of prompts the router chooses from.
        convffn_kernel_size: depthwise kernel of the ConvFFN.
        mlp_ratio: FFN and ASSM expansion.
        upsampler: ``"pixelshuffle"`` or ``"pixelshuffledirect"``.
        light: gated-MLP feed-forward of MambaIRv2-light instead of the ConvFFN.
    """

    def __init__(self, *, scale: int, embed_dim: int, depths: tuple[int, ...], num_heads: tuple[int, ...], d_state: int,
                 window_size: int, inner_rank: int, num_tokens: int, convffn_kernel_size: int, mlp_ratio: float,
                 upsampler: str, light: bool) -> None:
        super().__init__()
        if len(num_heads) != len(depths):
            raise ValueError(f"MambaIRv2: num_heads {num_heads} and depths {depths} must have the same length")
        self.window_size = window_size
        self.build_shallow(scale=scale, dim=embed_dim)
        self.patch_embed = TokenEmbed(dim=embed_dim)  # only its norm runs, on [b, h, w, C]
        self.register_buffer("relative_position_index_SA", relative_position_index(window_size))
        self.layers = nn.ModuleList(
            ASSB(dim=embed_dim, depth=dep, d_state=d_state, num_heads=heads, window_size=window_size, inner_rank=inner_rank,
                 num_tokens=num_tokens, convffn_kernel_size=convffn_kernel_size, mlp_ratio=mlp_ratio, light=light)
            for dep, heads in zip(depths, num_heads))
        self.norm = nn.LayerNorm(embed_dim)
        self.build_reconstruction(dim=embed_dim, upsampler=upsampler)
        self.apply(init_transformer_weights)

    def pad_input(self, lq: torch.Tensor) -> torch.Tensor:
        ws = self.window_size
        return mirror_pad(lq, -(-lq.shape[-2] // ws) * ws, -(-lq.shape[-1] // ws) * ws)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        h, w = x.shape[-2:]
        mask = shifted_window_mask(h, w, self.window_size, self.window_size // 2).to(x)
        y = self.patch_embed.norm(x.permute(0, 2, 3, 1))
        for layer in self.layers:
            y = layer(y, self.relative_position_index_SA, mask)
        return self.norm(y).permute(0, 3, 1, 2)


@register_model(family="mambairv2", size_multiple=16, paper="MambaIRv2[1]")
def mambairv2(*, scale: int = 4, **overrides) -> MambaIRv2:
    """MambaIRv2 classic SR, base size (official configuration: 23,050,713 parameters at x4)."""
    model_args = dict(embed_dim=174, depths=(6,) * 6, num_heads=(6,) * 6, d_state=16, window_size=16, inner_rank=64,
                      num_tokens=128, convffn_kernel_size=5, mlp_ratio=2.0, upsampler="pixelshuffle", light=False)
    return MambaIRv2(scale=scale, **{**model_args, **overrides})


@register_model(family="mambairv2", size_multiple=16)
def mambairv2_light(*, scale: int = 4, **overrides) -> MambaIRv2:
    """MambaIRv2 lightweight SR (official configuration: 789,680 parameters at x4)."""
    model_args = dict(embed_dim=48, depths=(5,) * 4, num_heads=(4,) * 4, d_state=8, window_size=16, inner_rank=32,
                      num_tokens=64, convffn_kernel_size=5, mlp_ratio=1.0, upsampler="pixelshuffledirect", light=True)
    return MambaIRv2(scale=scale, **{**model_args, **overrides})
