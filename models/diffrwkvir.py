"""DiffRWKVIR's two stages (Section 3.1) and their registry entry points.

- Stage 1 (``diffrwkvir_s1``): CPEN_s1 encodes the ground truth with the LQ input into the IPR z; the restoration
  network runs on (lq, z); trained jointly on L1.
- Stage 2 (``diffrwkvir``): CPEN_s2 sees the LQ input only; a T-step diffusion over z, conditioned on CPEN_s2(lq),
  produces z; training runs all T steps and adds L1(z_s2, z_s1) for the frozen stage-1 IPR ``prior_s1``.

CPEN, the MLP denoiser and the diffusion are DiffIR's (``layers.prior``), as docs/model.md reads the paper. CPEN
inputs: SR x4 and x3 put the ground truth at the LR size with PixelUnshuffle(s) (x4 as DiffIR); x2 unshuffles the
LR input by 2 and the ground truth by 4 (as DiffIR); inpainting unshuffles (lq, gt) by 4.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from layers.checks import check_image_batch
from layers.padding import pad_reflect_to_multiple, pad_symmetric_to_multiple
from layers.prior import CPEN, IPRDiffusion, MLPDenoiser
from layers.registry import register_model
from models.inpaint_net import DiffRWKVIRUNet
from models.sr_net import DiffRWKVIRSR

__all__ = ["DiffRWKVIRStage1", "DiffRWKVIRStage2", "PriorInputs"]


# Inpainting: the CPENs see the image padded as the U-Net sees it (symmetric, to the U-Net's multiple), as in the
# official inpainting code, which pads image and mask once before the whole model.
INPAINT_MULTIPLE = DiffRWKVIRUNet.size_multiple


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

    def check(self, lq: torch.Tensor) -> None:
        """Raise unless ``lq`` is what the task feeds: RGB for SR, cat(masked image, mask) for inpainting."""
        if self.task == "inpaint":
            check_image_batch(lq, channels=4, name="DiffRWKVIR (inpainting)", what="cat(masked image, mask)")
        else:
            check_image_batch(lq, channels=3, name="DiffRWKVIR")

    def stage2(self, lq: torch.Tensor) -> torch.Tensor:
        self.check(lq)
        if self.task == "inpaint":
            return pad_symmetric_to_multiple(lq, INPAINT_MULTIPLE)
        return F.pixel_unshuffle(pad_reflect_to_multiple(lq, self.lq_factor), self.lq_factor)

    def stage1(self, lq: torch.Tensor, gt: torch.Tensor) -> torch.Tensor:
        self.check(lq)
        out_scale = 1 if self.task == "inpaint" else self.scale
        expected = (lq.shape[-2] * out_scale, lq.shape[-1] * out_scale)
        if tuple(gt.shape[-2:]) != expected or gt.shape[1] != 3:
            raise ValueError(f"gt must be [B, 3, {expected[0]}, {expected[1]}] for lq {tuple(lq.shape)}, "
                             f"got {tuple(gt.shape)}")
        if self.task == "inpaint":
            return pad_symmetric_to_multiple(torch.cat([lq, gt], dim=1), INPAINT_MULTIPLE)
        gt = pad_reflect_to_multiple(gt, self.lq_factor * self.scale)
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

    def compute_losses(self, lq: torch.Tensor, gt: torch.Tensor, *, outputs: dict | None = None) -> dict[str, torch.Tensor]:
        """``{"l1": L1(net(lq, z_s1), gt), "total": same}``; ``outputs``, when given, receives the restored image."""
        restored = self(lq, gt)
        if outputs is not None:
            outputs["restored"] = restored
        l1 = F.l1_loss(restored, gt)
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

    def forward(self, lq: torch.Tensor, *, generator: torch.Generator | None = None) -> torch.Tensor:
        """Restore ``lq``: T reverse steps from noise, then the network. Seeded by ``generator`` or torch's RNG."""
        return self.net(lq, self.predict_prior(lq, generator=generator))

    def compute_losses(self, lq: torch.Tensor, gt: torch.Tensor, *, prior_s1: torch.Tensor,
                       generator: torch.Generator | None = None, outputs: dict | None = None) -> dict[str, torch.Tensor]:
        """``{"l1": L1(net(lq, z_s2), gt), "ipr": L1(z_s2, prior_s1), "total": their sum}``; prior_s1 is detached;
        ``outputs``, when given, receives the restored image (``"restored"``)."""
        prior_s1 = prior_s1.detach()
        z = self.predict_prior(lq, prior_s1, generator=generator)
        restored = self.net(lq, z)
        if outputs is not None:
            outputs["restored"] = restored
        l1 = F.l1_loss(restored, gt)
        ipr = F.l1_loss(z, prior_s1)
        return {"l1": l1, "ipr": ipr, "total": l1 + ipr}

    def load_stage1(self, state_dict: dict[str, torch.Tensor]):
        """Initialise the restoration network from a stage-1 state dict (its ``net.*`` entries, strictly)."""
        net_state = {k.removeprefix("net."): v for k, v in state_dict.items() if k.startswith("net.")}
        if not net_state:
            raise ValueError("state dict has no 'net.*' entries; is it a DiffRWKVIR stage-1 state dict?")
        return self.net.load_state_dict(net_state, strict=True)


def sr_model(*, stage: int, scale: int, width: int, n_groups: int, depth: int, head_size: int, n_feats: int,
             n_encoder_res: int, timesteps: int | None = None, **switches) -> DiffRWKVIRStage1 | DiffRWKVIRStage2:
    """The SR model of ``stage``: ``DiffRWKVIRSR`` with CPEN_s1 (stage 1) or with the T-step IPR diffusion (stage 2).

    Args:
        stage: 1 or 2.
        scale: upscaling factor.
        width, n_groups, depth, head_size: the SR network (``DiffRWKVIRSR``).
        n_feats, n_encoder_res: CPEN width (the IPR has ``4 * n_feats`` entries) and residual blocks.
        timesteps: T of the stage-2 diffusion (stage 2 only).
        switches: the Table 5 switches and kernel settings of ``DiffRWKVIRSR`` (shift, mixer, ffn, scan, backend,
            chunk_size).
    """
    inputs = PriorInputs(task="sr", scale=scale)
    if stage == 1:
        if timesteps is not None:
            raise ValueError("timesteps belongs to the stage-2 model; stage 1 has no diffusion")
        cpen = CPEN(in_channels=inputs.s1_channels, n_feats=n_feats, n_encoder_res=n_encoder_res)
        net = DiffRWKVIRSR(scale=scale, width=width, n_groups=n_groups, depth=depth, head_size=head_size,
                           prior_dim=cpen.ipr_dim, **switches)
        return DiffRWKVIRStage1(net=net, cpen=cpen, task="sr", scale=scale)
    diffusion = _diffusion(in_channels=inputs.s2_channels, n_feats=n_feats, n_encoder_res=n_encoder_res, unshuffle=1,
                           timesteps=timesteps)
    net = DiffRWKVIRSR(scale=scale, width=width, n_groups=n_groups, depth=depth, head_size=head_size,
                       prior_dim=diffusion.ipr_dim, **switches)
    return DiffRWKVIRStage2(net=net, diffusion=diffusion, task="sr", scale=scale)


def inpaint_model(*, stage: int, width: int, num_blocks: tuple[int, ...], head_size: int, n_feats: int,
                  n_encoder_res: int, timesteps: int | None = None, **switches) -> DiffRWKVIRStage1 | DiffRWKVIRStage2:
    """The inpainting model of ``stage``: the DSEB U-Net (``DiffRWKVIRUNet``) with CPEN_s1 or the IPR diffusion.

    Args:
        stage: 1 or 2.
        width, num_blocks, head_size: the U-Net (``DiffRWKVIRUNet``).
        n_feats, n_encoder_res, timesteps, switches: as ``sr_model``.
    """
    inputs = PriorInputs(task="inpaint", scale=1)
    if stage == 1:
        if timesteps is not None:
            raise ValueError("timesteps belongs to the stage-2 model; stage 1 has no diffusion")
        cpen = CPEN(in_channels=inputs.s1_channels, n_feats=n_feats, n_encoder_res=n_encoder_res,
                    unshuffle=inputs.unshuffle)
        net = DiffRWKVIRUNet(width=width, num_blocks=tuple(num_blocks), head_size=head_size, prior_dim=cpen.ipr_dim,
                             **switches)
        return DiffRWKVIRStage1(net=net, cpen=cpen, task="inpaint", scale=1)
    diffusion = _diffusion(in_channels=inputs.s2_channels, n_feats=n_feats, n_encoder_res=n_encoder_res,
                           unshuffle=inputs.unshuffle, timesteps=timesteps)
    net = DiffRWKVIRUNet(width=width, num_blocks=tuple(num_blocks), head_size=head_size, prior_dim=diffusion.ipr_dim,
                         **switches)
    return DiffRWKVIRStage2(net=net, diffusion=diffusion, task="inpaint", scale=1)


def _diffusion(*, in_channels: int, n_feats: int, n_encoder_res: int, unshuffle: int, timesteps: int) -> IPRDiffusion:
    cpen = CPEN(in_channels=in_channels, n_feats=n_feats, n_encoder_res=n_encoder_res, unshuffle=unshuffle)
    denoise = MLPDenoiser(ipr_dim=cpen.ipr_dim, timesteps=timesteps)
    return IPRDiffusion(denoise=denoise, condition=cpen, timesteps=timesteps)


# The paper's settings (Section 4.1: 4 groups x 6 DSEBs); the Table 5 switches at the paper's choices.
_SWITCHES = dict(shift="omni", mixer="ttt", ffn="cab", scan="2d", backend="auto", chunk_size=64)
_SR_ARGS = dict(width=128, n_groups=4, depth=6, head_size=32, n_feats=64, n_encoder_res=9, **_SWITCHES)
# DiffIR's inpainting U-Net layout (DiffIRS2-place2.yaml) with DSEBs for its blocks.
_INPAINT_ARGS = dict(width=48, num_blocks=(1, 1, 1, 9), head_size=48, n_feats=64, n_encoder_res=5, **_SWITCHES)


@register_model(family="diffrwkvir", stage=1, paper="Ours (stage 1)")
def diffrwkvir_s1(*, scale: int = 4, **overrides) -> DiffRWKVIRStage1:
    """Stage-1 SR model: the SR network with CPEN_s1 (paper profile: 4 groups x 6 DSEBs, width 128)."""
    return sr_model(stage=1, scale=scale, **{**_SR_ARGS, **overrides})


@register_model(family="diffrwkvir", stage=2, paper="Ours")
def diffrwkvir(*, scale: int = 4, **overrides) -> DiffRWKVIRStage2:
    """Stage-2 SR model (the paper's DiffRWKVIR, T = 5; x4 has 10.6 M parameters against the paper's 11.04 M)."""
    return sr_model(stage=2, scale=scale, **{**_SR_ARGS, "timesteps": 5, **overrides})


@register_model(family="diffrwkvir", task="inpaint", size_multiple=8, stage=1, paper="DiffRWKVIR(Ours) (stage 1)")
def diffrwkvir_inpaint_s1(**overrides) -> DiffRWKVIRStage1:
    """Stage-1 inpainting model: the DSEB U-Net with CPEN_s1 over (masked image, mask, gt)."""
    return inpaint_model(stage=1, **{**_INPAINT_ARGS, **overrides})


@register_model(family="diffrwkvir", task="inpaint", size_multiple=8, stage=2, paper="DiffRWKVIR(Ours)")
def diffrwkvir_inpaint(**overrides) -> DiffRWKVIRStage2:
    """Stage-2 inpainting model (Table 2's DiffRWKVIR, T = 5)."""
    return inpaint_model(stage=2, **{**_INPAINT_ARGS, "timesteps": 5, **overrides})
