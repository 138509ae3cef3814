"""MambaIR (Guo et al., ECCV 2024): residual state-space groups of VSS blocks (2D selective scan + channel attention).

Re-implemented from the paper with the layer names of the official code (csguoh/MambaIR,
``basicsr/archs/mambair_arch.py``), so official checkpoints load with ``strict=True``. The selective scan runs in
PyTorch (``kernels.selective_scan``) unless mamba_ssm is installed. The network handles any input size (the scan
reads the whole feature map), so nothing is padded. ``SSMParams`` (the S6 parameters) is shared with MambaIRv2.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from timm.layers import DropPath
from torch import nn

from kernels import selective_scan
from layers.channel_attention import CAB, ChannelAttention
from layers.init import init_transformer_weights
from layers.registry import register_model
from layers.sr_skeleton import SRSkeleton
from layers.transformer import TokenEmbed, drop_path_rates


class LightCAB(nn.Module):
    """The lightweight models' CAB: 1x1 C->C/2, dw3x3, GELU, 1x1 ->C, dilated dw3x3, channel attention."""

    def __init__(self, *, dim: int, squeeze: int = 30) -> None:
        super().__init__()
        c = dim // 2
        self.cab = nn.Sequential(nn.Conv2d(dim, c, 1), nn.Conv2d(c, c, 3, padding=1, groups=c), nn.GELU(),
                                 nn.Conv2d(c, dim, 1), nn.Conv2d(dim, dim, 3, padding=2, groups=dim, dilation=2),
                                 ChannelAttention(dim=dim, squeeze=squeeze))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.cab(x)


def dt_bias_init(d: int, *, dt_min: float = 1e-3, dt_max: float = 0.1, floor: float = 1e-4) -> torch.Tensor:
    """Bias whose softplus is log-uniform in [dt_min, dt_max] (Mamba's Δ initialisation)."""
    dt = torch.exp(torch.rand(d) * (math.log(dt_max) - math.log(dt_min)) + math.log(dt_min)).clamp(min=floor)
    return dt + torch.log(-torch.expm1(-dt))  # inverse softplus


class SSMParams(nn.Module):
    """Per-direction S6 parameters of K scan directions over d channels (official names, stacked over K)."""

    def __init__(self, *, d_inner: int, d_state: int, dt_rank: int, k: int) -> None:
        super().__init__()
        self.dt_rank, self.d_state = dt_rank, d_state
        bound = d_inner**-0.5  # nn.Linear's default init, as the official per-direction Linears had
        self.x_proj_weight = nn.Parameter(torch.empty(k, dt_rank + 2 * d_state, d_inner).uniform_(-bound, bound))
        self.dt_projs_weight = nn.Parameter(torch.empty(k, d_inner, dt_rank).uniform_(-dt_rank**-0.5, dt_rank**-0.5))
        self.dt_projs_bias = nn.Parameter(torch.stack([dt_bias_init(d_inner) for _ in range(k)]))
        self.A_logs = nn.Parameter(torch.log(torch.arange(1, d_state + 1, dtype=torch.float32)).repeat(k * d_inner, 1))
        self.Ds = nn.Parameter(torch.ones(k * d_inner))

    def scan(self, xs: torch.Tensor, prompt: torch.Tensor | None = None) -> torch.Tensor:
        """xs [b, K, d, L] -> y [b, K, d, L] in xs's dtype; the scan runs in fp32 (fp64 for fp64 inputs).

        ``prompt`` [b, K, n, L] is added to C (MambaIRv2's ASE)."""
        b, k, d, L = xs.shape
        f = torch.float64 if xs.dtype == torch.float64 else torch.float32
        x_dbl = torch.einsum("bkdl,kcd->bkcl", xs, self.x_proj_weight.to(xs.dtype))
        dts, Bs, Cs = torch.split(x_dbl, [self.dt_rank, self.d_state, self.d_state], dim=2)
        dts = torch.einsum("bkrl,kdr->bkdl", dts, self.dt_projs_weight.to(dts.dtype))
        Cs = Cs.to(f) if prompt is None else Cs.to(f) + prompt.to(f)
        y = selective_scan(xs.to(f).reshape(b, k * d, L), dts.to(f).reshape(b, k * d, L), -torch.exp(self.A_logs.to(f)),
                           Bs.to(f), Cs, self.Ds.to(f), delta_bias=self.dt_projs_bias.to(f).reshape(-1), delta_softplus=True)
        return y.view(b, k, d, L).to(xs.dtype)


class SS2D(SSMParams):
    """2D selective scan: four scans (rows, columns, and both reversed) of a depthwise-conv-gated projection."""

    def __init__(self, *, dim: int, d_state: int = 16, expand: float = 2.0) -> None:
        d_inner = int(expand * dim)
        super().__init__(d_inner=d_inner, d_state=d_state, dt_rank=math.ceil(dim / 16), k=4)
        self.in_proj = nn.Linear(dim, 2 * d_inner, bias=False)
        self.conv2d = nn.Conv2d(d_inner, d_inner, 3, padding=1, groups=d_inner)
        self.out_norm = nn.LayerNorm(d_inner)
        self.out_proj = nn.Linear(d_inner, dim, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x [b, h, w, C] -> [b, h, w, C]."""
        b, h, w, _ = x.shape
        x, z = self.in_proj(x).chunk(2, dim=-1)
        x = F.silu(self.conv2d(x.permute(0, 3, 1, 2)))
        rows, cols = x.flatten(2), x.transpose(2, 3).flatten(2)
        xs = torch.stack([rows, cols, rows.flip(-1), cols.flip(-1)], dim=1)
        y = self.scan(xs)
        d = y.shape[2]
        y_cols = y[:, 1] + y[:, 3].flip(-1)
        y = y[:, 0] + y[:, 2].flip(-1) + y_cols.view(b, d, w, h).transpose(2, 3).reshape(b, d, h * w)
        y = self.out_norm(y.transpose(1, 2).reshape(b, h, w, d))
        return self.out_proj(y * F.silu(z))


class VSSBlock(nn.Module):
    """x = s1*x + SS2D(LN x);  x = s2*x + CAB(LN x), with learnable per-channel skip scales s1, s2."""

    def __init__(self, *, dim: int, d_state: int, expand: float, drop_path: float, light: bool) -> None:
        super().__init__()
        self.ln_1 = nn.LayerNorm(dim)
        self.self_attention = SS2D(dim=dim, d_state=d_state, expand=expand)
        self.drop_path = DropPath(drop_path) if drop_path > 0 else nn.Identity()
        self.skip_scale = nn.Parameter(torch.ones(dim))
        self.conv_blk = LightCAB(dim=dim) if light else CAB(dim=dim, compress=3, squeeze=30)
        self.ln_2 = nn.LayerNorm(dim)
        self.skip_scale2 = nn.Parameter(torch.ones(dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x [b, h, w, C]."""
        x = x * self.skip_scale + self.drop_path(self.self_attention(self.ln_1(x)))
        return x * self.skip_scale2 + self.conv_blk(self.ln_2(x).permute(0, 3, 1, 2)).permute(0, 2, 3, 1)


class BlockList(nn.Module):
    """Holder that reproduces the official ``residual_group.blocks`` key prefix."""

    def __init__(self, blocks: list[nn.Module]) -> None:
        super().__init__()
        self.blocks = nn.ModuleList(blocks)


class ResidualGroup(nn.Module):
    """RSSG: VSS blocks, then conv3x3, plus the group input."""

    def __init__(self, *, dim: int, depth: int, d_state: int, expand: float, drop_path: list[float], light: bool) -> None:
        super().__init__()
        self.residual_group = BlockList([VSSBlock(dim=dim, d_state=d_state, expand=expand, drop_path=p, light=light)
                                         for p in drop_path[:depth]])
        self.conv = nn.Conv2d(dim, dim, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x [b, h, w, C]."""
        y = x
        for blk in self.residual_group.blocks:
            y = blk(y)
        return self.conv(y.permute(0, 3, 1, 2)).permute(0, 2, 3, 1) + x


class MambaIR(SRSkeleton):
    """MambaIR for SR: conv stem, LayerNorm, residual state-space groups, LayerNorm, conv, pixel-shuffle tail.

    Args:
        scale: upscaling factor.
        embed_dim: feature width C.
        depths: VSS blocks per residual group.
        d_state: SSM state size N.
        mlp_ratio: SS2D expansion d_inner / C.
        upsampler: ``"pixelshuffle"`` (classic) or ``"pixelshuffledirect"`` (light, also selects the light CAB).
        drop_path_rate: stochastic depth, linearly increasing over blocks.
    """

    def __init__(self, *, scale: int, embed_dim: int, depths: tuple[int, ...], d_state: int, mlp_ratio: float,
                 upsampler: str, drop_path_rate: float) -> None:
        super().__init__()
        self.build_shallow(scale=scale, dim=embed_dim)
        self.patch_embed = TokenEmbed(dim=embed_dim)  # only its norm runs, on [b, h, w, C]
        light = upsampler == "pixelshuffledirect"
        self.layers = nn.ModuleList(
            ResidualGroup(dim=embed_dim, depth=dep, d_state=d_state, expand=mlp_ratio, light=light, drop_path=rates)
            for dep, rates in zip(depths, drop_path_rates(depths, drop_path_rate)))
        self.norm = nn.LayerNorm(embed_dim)
        self.build_reconstruction(dim=embed_dim, upsampler=upsampler)
        self.apply(init_transformer_weights)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        y = self.patch_embed.norm(x.permute(0, 2, 3, 1))
        for layer in self.layers:
            y = layer(y)
        return self.norm(y).permute(0, 3, 1, 2)


@register_model(family="mambair", paper="MambaIR[20]")
def mambair(*, scale: int = 4, **overrides) -> MambaIR:
    """MambaIR classic SR (official x2/x3/x4 configuration: 20,569,575 parameters at x4)."""
    model_args = dict(embed_dim=180, depths=(6,) * 6, d_state=16, mlp_ratio=2.0, upsampler="pixelshuffle",
                      drop_path_rate=0.1)
    return MambaIR(scale=scale, **{**model_args, **overrides})


@register_model(family="mambair")
def mambair_light(*, scale: int = 4, **overrides) -> MambaIR:
    """MambaIR lightweight SR (official configuration: 924,492 parameters at x4)."""
    model_args = dict(embed_dim=60, depths=(6,) * 4, d_state=10, mlp_ratio=1.2, upsampler="pixelshuffledirect",
                      drop_path_rate=0.1)
    return MambaIR(scale=scale, **{**model_args, **overrides})
