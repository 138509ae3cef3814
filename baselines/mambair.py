"""MambaIR (Guo et al., ECCV 2024): residual state-space groups of VSS blocks (2D selective scan + channel attention).

Re-implemented from the paper with the layer names of the official code (csguoh/MambaIR,
``basicsr/archs/mambair_arch.py``), so official checkpoints load with ``strict=True``. The selective scan runs in
PyTorch (``baselines.selective_scan``) unless mamba_ssm is installed. The network handles any input size (the scan
reads the whole feature map), so nothing is padded. Also the home of the SR skeleton pieces MambaIRv2 shares.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from timm.layers import DropPath, trunc_normal_
from torch import nn

from baselines.selective_scan import selective_scan
from repro.registry import register_model

RGB_MEAN = (0.4488, 0.4371, 0.4040)


class ChannelAttention(nn.Module):
    """Squeeze-and-excitation over channels (RCAN): x * sigmoid(W2 relu(W1 avgpool(x)))."""

    def __init__(self, *, dim: int, squeeze: int) -> None:
        super().__init__()
        self.attention = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Conv2d(dim, dim // squeeze, 1), nn.ReLU(inplace=True),
                                       nn.Conv2d(dim // squeeze, dim, 1), nn.Sigmoid())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.attention(x)


class CAB(nn.Module):
    """Channel-attention block. Classic: conv3x3 C->C/3, GELU, conv3x3 ->C, CA. Light: 1x1 C->C/2, dw3x3, GELU,
    1x1 ->C, dilated dw3x3, CA (the light layout of the released lightweight checkpoints)."""

    def __init__(self, *, dim: int, light: bool = False, squeeze: int = 30) -> None:
        super().__init__()
        if light:
            c = dim // 2
            self.cab = nn.Sequential(nn.Conv2d(dim, c, 1), nn.Conv2d(c, c, 3, padding=1, groups=c), nn.GELU(),
                                     nn.Conv2d(c, dim, 1), nn.Conv2d(dim, dim, 3, padding=2, groups=dim, dilation=2),
                                     ChannelAttention(dim=dim, squeeze=squeeze))
        else:
            c = dim // 3
            self.cab = nn.Sequential(nn.Conv2d(dim, c, 3, padding=1), nn.GELU(), nn.Conv2d(c, dim, 3, padding=1),
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
        self.conv_blk = CAB(dim=dim, light=light)
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


class PatchNorm(nn.Module):
    """Holder that reproduces the official ``patch_embed.norm`` key (the LayerNorm after the stem)."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(dim)


def make_upsampler(*, upsampler: str, scale: int, dim: int, num_feat: int = 64) -> dict[str, nn.Module]:
    """Reconstruction modules by official name. ``pixelshuffle``: conv+LReLU, (conv, PixelShuffle)*, conv;
    ``pixelshuffledirect``: one conv to 3*s^2 channels and PixelShuffle(s)."""
    if upsampler == "pixelshuffledirect":
        return {"upsample": nn.Sequential(nn.Conv2d(dim, 3 * scale**2, 3, padding=1), nn.PixelShuffle(scale))}
    if upsampler != "pixelshuffle":
        raise ValueError(f"unknown upsampler {upsampler!r}; expected 'pixelshuffle' or 'pixelshuffledirect'")
    steps = [(4, 2)] * int(math.log2(scale)) if scale & (scale - 1) == 0 else [(9, 3)]
    layers: list[nn.Module] = []
    for mult, s in steps:
        layers += [nn.Conv2d(num_feat, mult * num_feat, 3, padding=1), nn.PixelShuffle(s)]
    return {"conv_before_upsample": nn.Sequential(nn.Conv2d(dim, num_feat, 3, padding=1), nn.LeakyReLU(inplace=True)),
            "upsample": nn.Sequential(*layers), "conv_last": nn.Conv2d(num_feat, 3, 3, padding=1)}


def init_weights(m: nn.Module) -> None:
    """Official init: Linear weights trunc-normal(0.02) with zero bias; LayerNorm weight 1, bias 0."""
    if isinstance(m, nn.Linear):
        trunc_normal_(m.weight, std=0.02)
        if m.bias is not None:
            nn.init.zeros_(m.bias)
    elif isinstance(m, nn.LayerNorm):
        nn.init.ones_(m.weight)
        nn.init.zeros_(m.bias)


def check_sr_input(lq: torch.Tensor, name: str) -> None:
    if lq.dim() != 4 or lq.shape[1] != 3:
        raise ValueError(f"{name}: expected lq of shape [B, 3, h, w], got {tuple(lq.shape)}")


def check_scale(scale: int, name: str) -> None:
    if scale not in (2, 3, 4):
        raise ValueError(f"{name}: unsupported scale {scale}; expected 2, 3 or 4")


class MambaIR(nn.Module):
    """MambaIR for SR: conv stem, LayerNorm, residual state-space groups, LayerNorm, conv, pixel-shuffle tail.

    Args:
        scale: upscaling factor (2, 3 or 4).
        embed_dim: feature width C. Default: ``180``.
        depths: VSS blocks per residual group. Default: ``(6,) * 6``.
        d_state: SSM state size N. Default: ``16``.
        mlp_ratio: SS2D expansion d_inner / C. Default: ``2.0``.
        upsampler: ``"pixelshuffle"`` (classic) or ``"pixelshuffledirect"`` (light, also selects the light CAB).
        drop_path_rate: stochastic depth, linearly increasing over blocks. Default: ``0.1`` (official default).
    """

    def __init__(self, *, scale: int = 4, embed_dim: int = 180, depths: tuple[int, ...] = (6,) * 6, d_state: int = 16,
                 mlp_ratio: float = 2.0, upsampler: str = "pixelshuffle", drop_path_rate: float = 0.1) -> None:
        super().__init__()
        check_scale(scale, "MambaIR")
        self.scale, self.upsampler = scale, upsampler
        self.register_buffer("mean", torch.tensor(RGB_MEAN).view(1, 3, 1, 1), persistent=False)
        self.conv_first = nn.Conv2d(3, embed_dim, 3, padding=1)
        self.patch_embed = PatchNorm(embed_dim)
        n_blocks = sum(depths)
        dpr = [drop_path_rate * i / max(1, n_blocks - 1) for i in range(n_blocks)]  # linearly increasing, as linspace
        light = upsampler == "pixelshuffledirect"
        self.layers = nn.ModuleList(
            ResidualGroup(dim=embed_dim, depth=dep, d_state=d_state, expand=mlp_ratio, light=light,
                          drop_path=dpr[sum(depths[:i]):sum(depths[:i + 1])]) for i, dep in enumerate(depths))
        self.norm = nn.LayerNorm(embed_dim)
        self.conv_after_body = nn.Conv2d(embed_dim, embed_dim, 3, padding=1)
        for name, module in make_upsampler(upsampler=upsampler, scale=scale, dim=embed_dim).items():
            self.add_module(name, module)
        self.apply(init_weights)

    def forward(self, lq: torch.Tensor) -> torch.Tensor:
        check_sr_input(lq, "MambaIR")
        x = self.conv_first(lq - self.mean)
        y = self.patch_embed.norm(x.permute(0, 2, 3, 1))
        for layer in self.layers:
            y = layer(y)
        x = self.conv_after_body(self.norm(y).permute(0, 3, 1, 2)) + x
        if self.upsampler == "pixelshuffle":
            x = self.conv_last(self.upsample(self.conv_before_upsample(x)))
        else:
            x = self.upsample(x)
        return x + self.mean


@register_model(name="mambair", family="mambair", size_multiple=1, supports_bf16=True, paper="MambaIR[20]")
def mambair(*, scale: int = 4, embed_dim: int = 180, depths: tuple[int, ...] = (6,) * 6, d_state: int = 16,
            mlp_ratio: float = 2.0, drop_path_rate: float = 0.1) -> MambaIR:
    """MambaIR classic SR (official x2/x3/x4 configuration: 20,569,575 parameters at x4)."""
    return MambaIR(scale=scale, embed_dim=embed_dim, depths=depths, d_state=d_state, mlp_ratio=mlp_ratio,
                   upsampler="pixelshuffle", drop_path_rate=drop_path_rate)


@register_model(name="mambair_light", family="mambair", size_multiple=1, supports_bf16=True, paper="")
def mambair_light(*, scale: int = 4, embed_dim: int = 60, depths: tuple[int, ...] = (6,) * 4, d_state: int = 10,
                  mlp_ratio: float = 1.2, drop_path_rate: float = 0.1) -> MambaIR:
    """MambaIR lightweight SR (official configuration: 924,492 parameters at x4)."""
    return MambaIR(scale=scale, embed_dim=embed_dim, depths=depths, d_state=d_state, mlp_ratio=mlp_ratio,
                   upsampler="pixelshuffledirect", drop_path_rate=drop_path_rate)
