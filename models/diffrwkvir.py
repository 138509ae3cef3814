"""DiffRWKVIR's two stages (Section 3.1) and their registry entry points.

- Stage 1 (``diffrwkvir_s1``): CPEN_s1 encodes the ground truth with the LQ input into the IPR z; the restoration
  network runs on (lq, z); trained jointly on L1.
- Stage 2 (``diffrwkvir``): CPEN_s2 sees the LQ input only; a T-step diffusion over z, conditioned on CPEN_s2(lq),
  produces z; training runs all T steps and adds L1(z_s2, z_s1) for the frozen stage-1 IPR ``prior_s1``.

CPEN, the MLP denoiser and the diffusion are DiffIR's (``baselines.diffir_prior``), as DESIGN.md section 4 reads
the paper. CPEN inputs: SR x4 and x3 put the ground truth at the LR size with PixelUnshuffle(s) (x4 as DiffIR);
x2 unshuffles the LR input by 2 and the ground truth by 4 (as DiffIR); inpainting unshuffles (lq, gt) by 4.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from baselines.diffir_prior import CPEN, IPRDiffusion, MLPDenoiser
from models.inpaint_net import DiffRWKVIRUNet, pad_to_multiple
from models.sr_net import DiffRWKVIRSR
from repro.registry import register_model

__all__ = ["DiffRWKVIRStage1", "DiffRWKVIRStage2", "PriorInputs"]


class PriorInputs:
    """What CPEN_s1 and CPEN_s2 see for a task and scale, and their channel counts."""

    def __init__(self, *, task: str, scale: int) -> None:
        if task not in ("sr", "inpaint"):
            raise ValueError(f"task must be 'sr' or 'inpaint', got {task!r}")
        self.task, self.scale = task, scale
        self.lq_factor = 2 if task == "sr" and scale == 2 else 1
        self.gt_factor = 4 if task == "sr" and scale in (2, 4) else scale
        if task == "inpaint":
            self.s1_channels, self.s2_channels, self.unshuffle = 7, 4, 4
        else:
            self.s2_channels, self.unshuffle = 3 * self.lq_factor**2, 1
            self.s1_channels = self.s2_channels + 3 * self.gt_factor**2

    def stage2(self, lq: torch.Tensor) -> torch.Tensor:
        if self.task == "inpaint":
            return pad_to_multiple(lq, 4)
        return F.pixel_unshuffle(pad_to_multiple(lq, self.lq_factor), self.lq_factor)

    def stage1(self, lq: torch.Tensor, gt: torch.Tensor) -> torch.Tensor:
        out_scale = 1 if self.task == "inpaint" else self.scale
        expected = (lq.shape[-2] * out_scale, lq.shape[-1] * out_scale)
        if tuple(gt.shape[-2:]) != expected or gt.shape[1] != 3:
            raise ValueError(f"gt must be [B, 3, {expected[0]}, {expected[1]}] for lq {tuple(lq.shape)}, "
                             f"got {tuple(gt.shape)}")
        if self.task == "inpaint":
            return pad_to_multiple(torch.cat([lq, gt], dim=1), 4)
        gt = pad_to_multiple(gt, self.lq_factor * self.scale)
        return torch.cat([self.stage2(lq), F.pixel_unshuffle(gt, self.gt_factor)], dim=1)


class DiffRWKVIRStage1(nn.Module):
    """Restoration network + CPEN_s1; ``forward(lq, gt)``.

    Args:
        net: the restoration network ``net(lq, z)``.
        cpen: CPEN_s1 (its input channels must match ``PriorInputs(task, scale).s1_channels``).
        task: ``"sr"`` or ``"inpaint"``.
        scale: SR factor (1 for inpainting).
    """

    def __init__(self, *, net: nn.Module, cpen: CPEN, task: str, scale: int) -> None:
        super().__init__()
        self.net, self.cpen = net, cpen
        self.prior_inputs = PriorInputs(task=task, scale=scale)

    def encode_prior(self, lq: torch.Tensor, gt: torch.Tensor) -> torch.Tensor:
        """The stage-1 IPR z [B, ipr_dim] of a (lq, gt) pair."""
        return self.cpen(self.prior_inputs.stage1(lq, gt))

    def forward(self, lq: torch.Tensor, gt: torch.Tensor | None = None) -> torch.Tensor:
        if gt is None:
            raise ValueError("the stage-1 model needs gt: CPEN_s1 encodes the ground truth")
        return self.net(lq, self.encode_prior(lq, gt))

    def compute_losses(self, lq: torch.Tensor, gt: torch.Tensor) -> dict[str, torch.Tensor]:
        """``{"l1": L1(net(lq, z_s1), gt), "total": same}``."""
        l1 = F.l1_loss(self(lq, gt), gt)
        return {"l1": l1, "total": l1}


class DiffRWKVIRStage2(nn.Module):
    """Restoration network + CPEN_s2 + IPR diffusion; ``forward(lq)``.

    Args:
        net: the restoration network ``net(lq, z)``.
        diffusion: the IPR diffusion; its ``condition`` is CPEN_s2.
        task: ``"sr"`` or ``"inpaint"``.
        scale: SR factor (1 for inpainting).
    """

    def __init__(self, *, net: nn.Module, diffusion: IPRDiffusion, task: str, scale: int) -> None:
        super().__init__()
        self.net, self.diffusion = net, diffusion
        self.prior_inputs = PriorInputs(task=task, scale=scale)

    def predict_prior(self, lq: torch.Tensor, prior_s1: torch.Tensor | None = None, *,
                      generator: torch.Generator | None = None) -> torch.Tensor:
        """The stage-2 IPR: from noise (inference) or from the noised ``prior_s1`` (training), all T steps."""
        return self.diffusion(self.prior_inputs.stage2(lq), prior_s1, generator=generator)

    def forward(self, lq: torch.Tensor, gt: torch.Tensor | None = None, *,
                generator: torch.Generator | None = None) -> torch.Tensor:
        """Restore ``lq``; ``gt`` is ignored (the registry's common signature). Seeded by ``generator`` or torch's RNG."""
        return self.net(lq, self.predict_prior(lq, generator=generator))

    def compute_losses(self, lq: torch.Tensor, gt: torch.Tensor, *, prior_s1: torch.Tensor,
                       generator: torch.Generator | None = None) -> dict[str, torch.Tensor]:
        """``{"l1": L1(net(lq, z_s2), gt), "ipr": L1(z_s2, prior_s1), "total": their sum}``; prior_s1 is detached."""
        prior_s1 = prior_s1.detach()
        z = self.predict_prior(lq, prior_s1, generator=generator)
        l1 = F.l1_loss(self.net(lq, z), gt)
        ipr = F.l1_loss(z, prior_s1)
        return {"l1": l1, "ipr": ipr, "total": l1 + ipr}

    def load_stage1(self, state_dict: dict[str, torch.Tensor]):
        """Initialise the restoration network from a stage-1 state dict (its ``net.*`` entries, strictly)."""
        net_state = {k.removeprefix("net."): v for k, v in state_dict.items() if k.startswith("net.")}
        if not net_state:
            raise ValueError("state dict has no 'net.*' entries; is it a DiffRWKVIR stage-1 state dict?")
        return self.net.load_state_dict(net_state, strict=True)


def _sr_net(scale: int, width: int, n_groups: int, depth: int, head_size: int, ipr_dim: int, switches: dict) -> DiffRWKVIRSR:
    return DiffRWKVIRSR(scale=scale, width=width, n_groups=n_groups, depth=depth, head_size=head_size, prior_dim=ipr_dim,
                        **switches)


def _switches(shift: str, mixer: str, ffn: str, scan: str, backend: str, chunk_size: int) -> dict:
    return {"shift": shift, "mixer": mixer, "ffn": ffn, "scan": scan, "backend": backend, "chunk_size": chunk_size}


def _diffusion(*, in_channels: int, n_feats: int, n_encoder_res: int, unshuffle: int, timesteps: int) -> IPRDiffusion:
    cpen = CPEN(in_channels=in_channels, n_feats=n_feats, n_encoder_res=n_encoder_res, unshuffle=unshuffle)
    denoise = MLPDenoiser(ipr_dim=cpen.ipr_dim, timesteps=timesteps)
    return IPRDiffusion(denoise=denoise, condition=cpen, timesteps=timesteps)


@register_model(name="diffrwkvir_s1", family="diffrwkvir", task="sr", scales=(2, 3, 4), stage=1, paper="Ours (stage 1)")
def diffrwkvir_s1(*, scale: int = 4, width: int = 128, n_groups: int = 4, depth: int = 6, head_size: int = 32,
                  n_feats: int = 64, n_encoder_res: int = 9, shift: str = "omni", mixer: str = "ttt", ffn: str = "cab",
                  scan: str = "2d", backend: str = "auto", chunk_size: int = 64) -> DiffRWKVIRStage1:
    """Stage-1 SR model: the SR network with CPEN_s1 (paper profile: 4 groups x 6 DSEBs, width 128)."""
    inputs = PriorInputs(task="sr", scale=scale)
    cpen = CPEN(in_channels=inputs.s1_channels, n_feats=n_feats, n_encoder_res=n_encoder_res)
    switches = _switches(shift, mixer, ffn, scan, backend, chunk_size)
    net = _sr_net(scale, width, n_groups, depth, head_size, cpen.ipr_dim, switches)
    return DiffRWKVIRStage1(net=net, cpen=cpen, task="sr", scale=scale)


@register_model(name="diffrwkvir", family="diffrwkvir", task="sr", scales=(2, 3, 4), stage=2, paper="Ours")
def diffrwkvir(*, scale: int = 4, width: int = 128, n_groups: int = 4, depth: int = 6, head_size: int = 32,
               timesteps: int = 5, n_feats: int = 64, n_encoder_res: int = 9, shift: str = "omni", mixer: str = "ttt",
               ffn: str = "cab", scan: str = "2d", backend: str = "auto", chunk_size: int = 64) -> DiffRWKVIRStage2:
    """Stage-2 SR model (the paper's DiffRWKVIR; x4 has 10.6 M parameters against the paper's 11.04 M)."""
    inputs = PriorInputs(task="sr", scale=scale)
    diffusion = _diffusion(in_channels=inputs.s2_channels, n_feats=n_feats, n_encoder_res=n_encoder_res, unshuffle=1,
                           timesteps=timesteps)
    net = _sr_net(scale, width, n_groups, depth, head_size, diffusion.ipr_dim,
                  _switches(shift, mixer, ffn, scan, backend, chunk_size))
    return DiffRWKVIRStage2(net=net, diffusion=diffusion, task="sr", scale=scale)


def _inpaint_net(width: int, num_blocks: tuple[int, ...], head_size: int, ipr_dim: int, switches: dict) -> DiffRWKVIRUNet:
    return DiffRWKVIRUNet(width=width, num_blocks=tuple(num_blocks), head_size=head_size, prior_dim=ipr_dim, **switches)


@register_model(name="diffrwkvir_inpaint_s1", family="diffrwkvir", task="inpaint", scales=(1,), size_multiple=8, stage=1,
                paper="DiffRWKVIR(Ours) (stage 1)")
def diffrwkvir_inpaint_s1(*, width: int = 48, num_blocks: tuple[int, int, int, int] = (1, 1, 1, 9), head_size: int = 48,
                          n_feats: int = 64, n_encoder_res: int = 5, shift: str = "omni", mixer: str = "ttt",
                          ffn: str = "cab", scan: str = "2d", backend: str = "auto",
                          chunk_size: int = 64) -> DiffRWKVIRStage1:
    """Stage-1 inpainting model: the DSEB U-Net with CPEN_s1 over (masked image, mask, gt)."""
    inputs = PriorInputs(task="inpaint", scale=1)
    cpen = CPEN(in_channels=inputs.s1_channels, n_feats=n_feats, n_encoder_res=n_encoder_res, unshuffle=inputs.unshuffle)
    net = _inpaint_net(width, num_blocks, head_size, cpen.ipr_dim, _switches(shift, mixer, ffn, scan, backend, chunk_size))
    return DiffRWKVIRStage1(net=net, cpen=cpen, task="inpaint", scale=1)


@register_model(name="diffrwkvir_inpaint", family="diffrwkvir", task="inpaint", scales=(1,), size_multiple=8, stage=2,
                paper="DiffRWKVIR(Ours)")
def diffrwkvir_inpaint(*, width: int = 48, num_blocks: tuple[int, int, int, int] = (1, 1, 1, 9), head_size: int = 48,
                       timesteps: int = 5, n_feats: int = 64, n_encoder_res: int = 5, shift: str = "omni",
                       mixer: str = "ttt", ffn: str = "cab", scan: str = "2d", backend: str = "auto",
                       chunk_size: int = 64) -> DiffRWKVIRStage2:
    """Stage-2 inpainting model (Table 2's DiffRWKVIR)."""
    inputs = PriorInputs(task="inpaint", scale=1)
    diffusion = _diffusion(in_channels=inputs.s2_channels, n_feats=n_feats, n_encoder_res=n_encoder_res,
                           unshuffle=inputs.unshuffle, timesteps=timesteps)
    switches = _switches(shift, mixer, ffn, scan, backend, chunk_size)
    net = _inpaint_net(width, num_blocks, head_size, diffusion.ipr_dim, switches)
    return DiffRWKVIRStage2(net=net, diffusion=diffusion, task="inpaint", scale=1)
