"""DiffIR (Xia et al., ICCV'23): DIRformer restoration U-Net with IPR modulation, stage 1 and stage 2.

Follows the official ``DiffIR-SRGAN/DiffIR/archs/S{1,2}_arch.py`` (SR) and ``DiffIR-inpainting/archs/S{1,2}_arch.py``
(4-channel input, no refinement, no tail, no global residual). Module names match the official ones, so official
state dicts load with ``strict=True`` at x2 and x4 and for inpainting.

Scales, as the official SR code builds them: x4 runs G at the LR size with a x4 tail. x2 pixel-unshuffles the LR
input by 2 first (a 12-channel patch embedding; the U-Net runs at half the LR size, so inputs pad to a multiple of
16) and keeps the x4 tail; the global residual is the nearest upscale of the LR input by 2. CPEN_S1 always sees the
ground truth pixel-unshuffled to the size G runs at (by 4 at x2 and x4), beside the (unshuffled) LR input; CPEN_S2
unshuffles the LR input by 2 at x2. DiffIR has no official x3: ours is an extension (3-channel input, a x3 tail,
CPEN_S1 on cat[LQ, PixelUnshuffle_3(GT)]).

Stage 1 (``DiffIRS1``): CPEN_S1 encodes [LQ, PixelUnshuffle(GT)] into the IPR z; G restores LQ under z; loss L1.
Stage 2 (``DiffIRS2``): CPEN_S2 encodes LQ into the condition c, a T-step diffusion over z (``diffir_prior``)
replaces CPEN_S1; loss L1(SR, GT) + L1(z_S2, z_S1). The official S2-GAN / LaMa losses are not part of this module.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from layers.norms import BiasFreeChannelNorm, ChannelLayerNorm
from layers.padding import pad_reflect_to_multiple, pad_symmetric_to_multiple
from layers.prior import CPEN, IPRDiffusion, MLPDenoiser
from layers.registry import register_model
from layers.upsample import pixel_shuffle_upsampler

__all__ = ["DIRformer", "DiffIRS1", "DiffIRS2", "diffir", "diffir_inpaint", "diffir_inpaint_s1", "diffir_s1"]

UNET_MULTIPLE = 8  # three 2x downsamplings in the U-Net


def lq_unshuffle(scale: int | None) -> int:
    """PixelUnshuffle factor of the LR input before G (and CPEN_S2): 2 at x2, as the official x2 models; else 1."""
    return 2 if scale == 2 else 1


def size_multiple(scale: int | None) -> int:
    """The input size multiple G needs at ``scale`` (None: inpainting)."""
    return UNET_MULTIPLE * lq_unshuffle(scale)


class LayerNorm(nn.Module):
    """Per-pixel LayerNorm over channels of a [B, C, H, W] map (``body`` holds the weights, as upstream)."""

    def __init__(self, *, dim: int, layernorm_type: str) -> None:
        super().__init__()
        if layernorm_type not in ("BiasFree", "WithBias"):
            raise ValueError(f"layernorm_type must be 'BiasFree' or 'WithBias', got {layernorm_type!r}")
        self.body = BiasFreeChannelNorm(dim) if layernorm_type == "BiasFree" else ChannelLayerNorm(dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x)


def _modulate(kernel: nn.Module, x: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
    """x * gamma + beta with (gamma, beta) = Linear(z), per channel."""
    gamma, beta = kernel(z).view(x.shape[0], 2 * x.shape[1], 1, 1).chunk(2, dim=1)
    return x * gamma + beta


class Attention(nn.Module):
    """DMTA: Restormer's transposed (channel) attention on IPR-modulated features."""

    def __init__(self, *, dim: int, num_heads: int, bias: bool, ipr_dim: int) -> None:
        super().__init__()
        if dim % num_heads:
            raise ValueError(f"dim {dim} is not divisible by num_heads {num_heads}")
        self.num_heads = num_heads
        self.temperature = nn.Parameter(torch.ones(num_heads, 1, 1))
        self.kernel = nn.Sequential(nn.Linear(ipr_dim, 2 * dim, bias=False))
        self.qkv = nn.Conv2d(dim, 3 * dim, 1, bias=bias)
        self.qkv_dwconv = nn.Conv2d(3 * dim, 3 * dim, 3, padding=1, groups=3 * dim, bias=bias)
        self.project_out = nn.Conv2d(dim, dim, 1, bias=bias)

    def forward(self, x: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        b, c, h, w = x.shape
        x = _modulate(self.kernel, x, z)
        q, k, v = (t.reshape(b, self.num_heads, c // self.num_heads, h * w) for t in self.qkv_dwconv(self.qkv(x)).chunk(3, 1))
        q, k = F.normalize(q, dim=-1), F.normalize(k, dim=-1)
        attn = (q @ k.transpose(-2, -1) * self.temperature).softmax(dim=-1)
        return self.project_out((attn @ v).reshape(b, c, h, w))


class FeedForward(nn.Module):
    """DGFN: gated depthwise-conv feed-forward on IPR-modulated features."""

    def __init__(self, *, dim: int, ffn_expansion_factor: float, bias: bool, ipr_dim: int) -> None:
        super().__init__()
        hidden = int(dim * ffn_expansion_factor)
        self.project_in = nn.Conv2d(dim, 2 * hidden, 1, bias=bias)
        self.dwconv = nn.Conv2d(2 * hidden, 2 * hidden, 3, padding=1, groups=2 * hidden, bias=bias)
        self.project_out = nn.Conv2d(hidden, dim, 1, bias=bias)
        self.kernel = nn.Sequential(nn.Linear(ipr_dim, 2 * dim, bias=False))

    def forward(self, x: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        x1, x2 = self.dwconv(self.project_in(_modulate(self.kernel, x, z))).chunk(2, dim=1)
        return self.project_out(F.gelu(x1) * x2)


class TransformerBlock(nn.Module):
    def __init__(self, *, dim: int, num_heads: int, ffn_expansion_factor: float, bias: bool, layernorm_type: str,
                 ipr_dim: int) -> None:
        super().__init__()
        self.norm1 = LayerNorm(dim=dim, layernorm_type=layernorm_type)
        self.attn = Attention(dim=dim, num_heads=num_heads, bias=bias, ipr_dim=ipr_dim)
        self.norm2 = LayerNorm(dim=dim, layernorm_type=layernorm_type)
        self.ffn = FeedForward(dim=dim, ffn_expansion_factor=ffn_expansion_factor, bias=bias, ipr_dim=ipr_dim)

    def forward(self, x: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(self.norm1(x), z)
        return x + self.ffn(self.norm2(x), z)


class _Blocks(nn.ModuleList):
    """A stack of TransformerBlocks sharing one IPR (same state-dict keys as upstream's nn.Sequential)."""

    def forward(self, x: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        for block in self:
            x = block(x, z)
        return x


class _Resample(nn.Module):
    """conv3x3 then Pixel(Un)Shuffle(2): Downsample halves the channels first, Upsample doubles them."""

    def __init__(self, *, n_feat: int, down: bool) -> None:
        super().__init__()
        out = n_feat // 2 if down else 2 * n_feat
        shuffle = nn.PixelUnshuffle(2) if down else nn.PixelShuffle(2)
        self.body = nn.Sequential(nn.Conv2d(n_feat, out, 3, padding=1, bias=False), shuffle)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x)


class _PatchEmbed(nn.Module):
    def __init__(self, *, in_channels: int, dim: int) -> None:
        super().__init__()
        self.proj = nn.Conv2d(in_channels, dim, 3, padding=1, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.proj(x)


class DIRformer(nn.Module):
    """Restormer-style 4-level U-Net whose every block is modulated by the IPR z.

    Args:
        in_channels: input channels (3 for SR, 4 = masked image + mask for inpainting).
        out_channels: output channels.
            Default: 3.
        scale: SR factor (2, 3, 4): sub-pixel tail and nearest-upsampled global residual; at x2 the input is
            pixel-unshuffled by 2 first and the tail is the x4 one (official layout). None: inpainting head (one
            conv3x3 2C->out, no residual).
            Default: 4.
        dim: level-1 width C; levels use C, 2C, 4C, 8C; decoder level 1 and refinement run at 2C.
        num_blocks: blocks per encoder level (the decoder mirrors levels 1-3).
        num_refinement_blocks: blocks after decoder level 1.
        heads: attention heads per level.
        ffn_expansion_factor: DGFN hidden-width factor.
        bias: bias in the block convs.
        layernorm_type: "BiasFree" or "WithBias".
        ipr_dim: size of z.
            Default: 256.
    """

    def __init__(self, *, in_channels: int = 3, out_channels: int = 3, scale: int | None = 4, dim: int = 64,
                 num_blocks: tuple[int, int, int, int] = (13, 1, 1, 1), num_refinement_blocks: int = 13,
                 heads: tuple[int, int, int, int] = (1, 2, 4, 8), ffn_expansion_factor: float = 2.2, bias: bool = False,
                 layernorm_type: str = "BiasFree", ipr_dim: int = 256) -> None:
        super().__init__()
        self.in_channels = in_channels
        self.scale = scale
        self.unshuffle = lq_unshuffle(scale)

        def blocks(n: int, width: int, n_heads: int) -> _Blocks:
            return _Blocks(TransformerBlock(dim=width, num_heads=n_heads, ffn_expansion_factor=ffn_expansion_factor,
                                            bias=bias, layernorm_type=layernorm_type, ipr_dim=ipr_dim) for _ in range(n))

        c1, c2, c3, c4 = dim, 2 * dim, 4 * dim, 8 * dim
        self.patch_embed = _PatchEmbed(in_channels=in_channels * self.unshuffle**2, dim=c1)
        self.encoder_level1 = blocks(num_blocks[0], c1, heads[0])
        self.down1_2 = _Resample(n_feat=c1, down=True)
        self.encoder_level2 = blocks(num_blocks[1], c2, heads[1])
        self.down2_3 = _Resample(n_feat=c2, down=True)
        self.encoder_level3 = blocks(num_blocks[2], c3, heads[2])
        self.down3_4 = _Resample(n_feat=c3, down=True)
        self.latent = blocks(num_blocks[3], c4, heads[3])
        self.up4_3 = _Resample(n_feat=c4, down=False)
        self.reduce_chan_level3 = nn.Conv2d(c4, c3, 1, bias=bias)
        self.decoder_level3 = blocks(num_blocks[2], c3, heads[2])
        self.up3_2 = _Resample(n_feat=c3, down=False)
        self.reduce_chan_level2 = nn.Conv2d(c3, c2, 1, bias=bias)
        self.decoder_level2 = blocks(num_blocks[1], c2, heads[1])
        # Level 1 concatenates the skip without a 1x1 reduce, so the rest runs at 2C.
        self.up2_1 = _Resample(n_feat=c2, down=False)
        self.decoder_level1 = blocks(num_blocks[0], c2, heads[0])
        self.refinement = blocks(num_refinement_blocks, c2, heads[0])
        if scale is None:
            self.output = nn.Conv2d(c2, out_channels, 3, padding=1, bias=bias)
        else:
            self.tail = nn.Sequential(pixel_shuffle_upsampler(scale * self.unshuffle, c2),
                                      nn.Conv2d(c2, out_channels, 3, padding=1))

    def forward(self, x: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        multiple = size_multiple(self.scale)
        if x.shape[-2] % multiple or x.shape[-1] % multiple:
            raise ValueError(f"DIRformer needs H and W divisible by {multiple}, got {tuple(x.shape[-2:])}")
        feat = F.pixel_unshuffle(x, self.unshuffle) if self.unshuffle > 1 else x
        e1 = self.encoder_level1(self.patch_embed(feat), z)
        e2 = self.encoder_level2(self.down1_2(e1), z)
        e3 = self.encoder_level3(self.down2_3(e2), z)
        lat = self.latent(self.down3_4(e3), z)
        d3 = self.decoder_level3(self.reduce_chan_level3(torch.cat([self.up4_3(lat), e3], 1)), z)
        d2 = self.decoder_level2(self.reduce_chan_level2(torch.cat([self.up3_2(d3), e2], 1)), z)
        d1 = self.refinement(self.decoder_level1(torch.cat([self.up2_1(d2), e1], 1), z), z)
        if self.scale is None:
            return self.output(d1)
        return self.tail(d1) + F.interpolate(x, scale_factor=self.scale, mode="nearest")


class _DiffIRBase(nn.Module):
    """Shared input checks, padding and the restoration network G."""

    def __init__(self, *, task: str, scale: int, dim: int, num_blocks: tuple[int, int, int, int], num_refinement_blocks: int,
                 heads: tuple[int, int, int, int], ffn_expansion_factor: float, bias: bool, layernorm_type: str) -> None:
        super().__init__()
        if task not in ("sr", "inpaint"):
            raise ValueError(f"task must be 'sr' or 'inpaint', got {task!r}")
        self.task = task
        self.scale = scale if task == "sr" else 1
        self.lq_channels = 3 if task == "sr" else 4
        self.G = DIRformer(in_channels=self.lq_channels, scale=scale if task == "sr" else None, dim=dim,
                           num_blocks=tuple(num_blocks), num_refinement_blocks=num_refinement_blocks, heads=tuple(heads),
                           ffn_expansion_factor=ffn_expansion_factor, bias=bias, layernorm_type=layernorm_type)

    def _pad_lq(self, lq: torch.Tensor) -> tuple[torch.Tensor, int, int]:
        if lq.ndim != 4 or lq.shape[1] != self.lq_channels:
            raise ValueError(f"DiffIR ({self.task}) expects lq of shape [B, {self.lq_channels}, H, W], got {tuple(lq.shape)}")
        h, w = lq.shape[-2:]
        # SR: DiffIR's pad_test (reflect); inpainting: LaMa's pad_img_to_modulo (numpy symmetric), which the official
        # inpainting code applies to image and mask before the network
        pad = pad_reflect_to_multiple if self.task == "sr" else pad_symmetric_to_multiple
        padded = pad(lq, size_multiple(self.G.scale))
        return padded, padded.shape[-2] - h, padded.shape[-1] - w

    def _pad_gt(self, gt: torch.Tensor, lq: torch.Tensor, ph: int, pw: int) -> torch.Tensor:
        want = (lq.shape[0], 3, self.scale * lq.shape[-2], self.scale * lq.shape[-1])
        if tuple(gt.shape) != want:
            raise ValueError(f"gt must have shape {want} for lq {tuple(lq.shape)} at scale {self.scale}, "
                             f"got {tuple(gt.shape)}")
        pad = pad_reflect_to_multiple if self.task == "sr" else pad_symmetric_to_multiple
        return pad(gt, size_multiple(self.G.scale) * self.scale)

    def _restore(self, lq_padded: torch.Tensor, z: torch.Tensor, h: int, w: int) -> torch.Tensor:
        return self.G(lq_padded, z)[..., : self.scale * h, : self.scale * w]


class DiffIRS1(_DiffIRBase):
    """Stage 1: G + CPEN_S1 (``E``), which sees the ground truth. See ``DIRformer`` for the G arguments.

    Args:
        task: "sr" or "inpaint".
        n_encoder_res: residual blocks in CPEN_S1.
    """

    def __init__(self, *, task: str = "sr", scale: int = 4, dim: int = 64,
                 num_blocks: tuple[int, int, int, int] = (13, 1, 1, 1), num_refinement_blocks: int = 13,
                 heads: tuple[int, int, int, int] = (1, 2, 4, 8), ffn_expansion_factor: float = 2.2, bias: bool = False,
                 layernorm_type: str = "BiasFree", n_encoder_res: int = 9) -> None:
        super().__init__(task=task, scale=scale, dim=dim, num_blocks=num_blocks, num_refinement_blocks=num_refinement_blocks,
                         heads=heads, ffn_expansion_factor=ffn_expansion_factor, bias=bias, layernorm_type=layernorm_type)
        if task == "sr":  # cat[PixelUnshuffle_u(LQ), PixelUnshuffle_{s*u}(GT)], both at the size G runs at
            u = lq_unshuffle(scale)
            self.E = CPEN(in_channels=3 * u * u + 3 * (scale * u) ** 2, n_encoder_res=n_encoder_res)
        else:  # PixelUnshuffle_4(cat[LQ, GT]) = cat[PU4(LQ), PU4(GT)]: 112 channels
            self.E = CPEN(in_channels=4 + 3, n_encoder_res=n_encoder_res, unshuffle=4)

    def _encode_padded(self, lq_p: torch.Tensor, gt_p: torch.Tensor) -> torch.Tensor:
        if self.task == "sr":
            u = lq_unshuffle(self.scale)
            return self.E(torch.cat([F.pixel_unshuffle(lq_p, u), F.pixel_unshuffle(gt_p, self.scale * u)], 1))
        return self.E(torch.cat([lq_p, gt_p], 1))

    def encode_prior(self, lq: torch.Tensor, gt: torch.Tensor) -> torch.Tensor:
        """IPR_S1 [B, 256] of the (lq, gt) pair: the stage-2 target."""
        lq_p, ph, pw = self._pad_lq(lq)
        return self._encode_padded(lq_p, self._pad_gt(gt, lq, ph, pw))

    def forward(self, lq: torch.Tensor, gt: torch.Tensor) -> torch.Tensor:
        lq_p, ph, pw = self._pad_lq(lq)
        z = self._encode_padded(lq_p, self._pad_gt(gt, lq, ph, pw))
        return self._restore(lq_p, z, *lq.shape[-2:])

    def compute_losses(self, lq: torch.Tensor, gt: torch.Tensor, *, outputs: dict | None = None) -> dict[str, torch.Tensor]:
        """L1(restored, GT); ``outputs``, when given, receives the restored image (``"restored"``)."""
        restored = self(lq, gt)
        if outputs is not None:
            outputs["restored"] = restored
        l1 = F.l1_loss(restored, gt)
        return {"l1_pix": l1, "total": l1}


class DiffIRS2(_DiffIRBase):
    """Stage 2: G + CPEN_S2 (``condition``) + x0 denoiser (``denoise``) + the IPR diffusion (``diffusion``).

    ``diffusion.model`` / ``diffusion.condition`` are the same modules as ``denoise`` / ``condition`` (official
    layout: both names are in the state dict, the parameters are counted once).

    Args:
        task, n_encoder_res: as ``DiffIRS1``.
        n_denoise_res: hidden layers of the denoiser MLP.
        timesteps: diffusion steps T.
        linear_start, linear_end: first and last beta of the "linear" schedule.
    """

    def __init__(self, *, task: str = "sr", scale: int = 4, dim: int = 64,
                 num_blocks: tuple[int, int, int, int] = (13, 1, 1, 1), num_refinement_blocks: int = 13,
                 heads: tuple[int, int, int, int] = (1, 2, 4, 8), ffn_expansion_factor: float = 2.2, bias: bool = False,
                 layernorm_type: str = "BiasFree", n_encoder_res: int = 9, n_denoise_res: int = 1, timesteps: int = 4,
                 linear_start: float = 0.1, linear_end: float = 0.99) -> None:
        super().__init__(task=task, scale=scale, dim=dim, num_blocks=num_blocks, num_refinement_blocks=num_refinement_blocks,
                         heads=heads, ffn_expansion_factor=ffn_expansion_factor, bias=bias, layernorm_type=layernorm_type)
        if task == "sr":
            self.condition = CPEN(in_channels=3, n_encoder_res=n_encoder_res, unshuffle=lq_unshuffle(scale))
        else:
            self.condition = CPEN(in_channels=4, n_encoder_res=n_encoder_res, unshuffle=4)
        self.denoise = MLPDenoiser(ipr_dim=self.condition.ipr_dim, n_denoise_res=n_denoise_res, timesteps=timesteps)
        self.diffusion = IPRDiffusion(denoise=self.denoise, condition=self.condition, timesteps=timesteps,
                                      linear_start=linear_start, linear_end=linear_end)

    def forward(self, lq: torch.Tensor, *, generator: torch.Generator | None = None) -> torch.Tensor:
        """Inference: T deterministic reverse steps from x_T ~ N(0, I), then G."""
        lq_p, _, _ = self._pad_lq(lq)
        return self._restore(lq_p, self.diffusion(lq_p, generator=generator), *lq.shape[-2:])

    def compute_losses(self, lq: torch.Tensor, gt: torch.Tensor, *, prior_s1: torch.Tensor,
                       generator: torch.Generator | None = None, outputs: dict | None = None) -> dict[str, torch.Tensor]:
        """L1(SR, GT) + L1(IPR_S2, IPR_S1); ``prior_s1`` is the frozen stage-1 ``encode_prior(lq, gt)``;
        ``outputs``, when given, receives the restored image (``"restored"``)."""
        lq_p, ph, pw = self._pad_lq(lq)
        self._pad_gt(gt, lq, ph, pw)  # shape check only
        z = self.diffusion(lq_p, prior_s1.detach(), generator=generator)
        restored = self._restore(lq_p, z, *lq.shape[-2:])
        if outputs is not None:
            outputs["restored"] = restored
        l1_pix = F.l1_loss(restored, gt)
        l1_ipr = F.l1_loss(z, prior_s1.detach())
        return {"l1_pix": l1_pix, "l1_ipr": l1_ipr, "total": l1_pix + l1_ipr}

    @torch.no_grad()
    def load_stage1(self, state_dict: dict[str, torch.Tensor]) -> list[str]:
        """Initialise from a stage-1 state dict: every key present here with the same shape (in practice ``G.*``).

        Mirrors the official ``strict_load_g: False``; CPEN_S1 (``E.*``) has no counterpart and is ignored. Raises if
        any ``G.*`` tensor cannot be loaded. Returns the loaded keys.
        """
        own = self.state_dict()
        loaded = [k for k, v in state_dict.items() if k in own and own[k].shape == v.shape]
        # Stage 1 and stage 2 share G's architecture, so a G tensor that does not load means a config mismatch.
        unmatched = sorted(k for k in own if k.startswith("G.") and k not in loaded)
        if unmatched:
            raise ValueError(f"load_stage1: {len(unmatched)} G tensors are missing or differ in shape in the stage-1 "
                             f"state dict (wrong scale or config?), e.g. {unmatched[:3]}")
        self.load_state_dict({k: state_dict[k] for k in loaded}, strict=False)
        return loaded


# options/train_DiffIRS{1,2}_x{2,4}.yml (the same network options at both scales)
_SR_ARGS = {"dim": 64, "num_blocks": (13, 1, 1, 1), "num_refinement_blocks": 13, "heads": (1, 2, 4, 8),
            "ffn_expansion_factor": 2.2, "bias": False, "layernorm_type": "BiasFree", "n_encoder_res": 9}
# DiffIR-inpainting/configs/training/generator/DiffIRS2-place2.yaml
_INPAINT_ARGS = {"dim": 52, "num_blocks": (1, 1, 1, 9), "num_refinement_blocks": 0, "heads": (1, 2, 4, 8),
                 "ffn_expansion_factor": 1.8, "bias": False, "layernorm_type": "WithBias", "n_encoder_res": 5}
_SR_MULTIPLES = {s: size_multiple(s) for s in (2, 3, 4)}


@register_model(family="diffir", scales=(2, 3, 4), size_multiple=_SR_MULTIPLES, stage=1, paper="DiffIR[11]")
def diffir_s1(*, scale: int = 4, **overrides) -> DiffIRS1:
    """DiffIR stage 1 for SR, official config (options/train_DiffIRS1_x4.yml); keyword overrides go to DiffIRS1."""
    return DiffIRS1(task="sr", scale=scale, **{**_SR_ARGS, **overrides})


@register_model(family="diffir", scales=(2, 3, 4), size_multiple=_SR_MULTIPLES, stage=2, paper="DiffIR[11]")
def diffir(*, scale: int = 4, **overrides) -> DiffIRS2:
    """DiffIR stage 2 for SR, official config (options/train_DiffIRS2_x4.yml, T=4)."""
    return DiffIRS2(task="sr", scale=scale, **{**_SR_ARGS, "timesteps": 4, **overrides})


@register_model(family="diffir", task="inpaint", size_multiple=UNET_MULTIPLE, stage=1, paper="DiffIR[11]")
def diffir_inpaint_s1(**overrides) -> DiffIRS1:
    """DiffIR stage 1 for inpainting (Places2 config)."""
    return DiffIRS1(task="inpaint", **{**_INPAINT_ARGS, **overrides})


@register_model(family="diffir", task="inpaint", size_multiple=UNET_MULTIPLE, stage=2, paper="DiffIR[11]")
def diffir_inpaint(**overrides) -> DiffIRS2:
    """DiffIR stage 2 for inpainting (Places2 config, T=4)."""
    return DiffIRS2(task="inpaint", **{**_INPAINT_ARGS, "timesteps": 4, **overrides})
