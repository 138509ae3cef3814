"""The adversarial term of LaMa-style inpainting training: a PatchGAN discriminator and the R1 non-saturating loss.

Facts from LaMa (advimman/lama, ``configs/training/lama-fourier.yaml`` and ``discriminator/pix2pixhd_nlayer.yaml``,
``saicinpainting/training/losses/adversarial.py``): the discriminator is pix2pixHD's N-layer PatchGAN (4x4
convolutions, ndf 64, 4 layers) on RGB; its loss is the non-saturating logistic loss with an R1 penalty on the real
images (coefficient 0.001), and the fake image counts as real outside the hole (``mask_as_fake_target``), where it
is the original; the generator's term is ``weight * softplus(-D(fake))`` with weight 10; the discriminator trains
with Adam at lr 1e-4. It needs no pretrained weights, so it runs offline; it is off unless ``train.adversarial.weight``
is positive.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

DEFAULTS = {"weight": 0.0, "gp_coef": 0.001, "lr": 1.0e-4, "ndf": 64, "n_layers": 4}


def settings(train_cfg: dict) -> dict | None:
    """The run's adversarial settings (``DEFAULTS`` updated by ``train.adversarial``), or None when it is off."""
    given = train_cfg.get("adversarial") or {}
    unknown = set(given) - set(DEFAULTS)
    if unknown:
        raise ValueError(f"train.adversarial: unknown keys {sorted(unknown)}; known: {sorted(DEFAULTS)}")
    merged = {**DEFAULTS, **given}
    return merged if merged["weight"] > 0 else None


class PatchDiscriminator(nn.Module):
    """pix2pixHD's N-layer PatchGAN: one logit per overlapping patch of the RGB input [B, 3, H, W] -> [B, 1, h, w].

    ``n_layers`` stride-2 4x4 convolutions (channels doubling from ``ndf``, at most 512; batch norm after all but
    the first), one stride-1 convolution, then a stride-1 convolution to one channel.
    """

    def __init__(self, *, in_channels: int = 3, ndf: int = 64, n_layers: int = 4) -> None:
        super().__init__()
        pad = math.ceil((4 - 1) / 2)
        layers: list[nn.Module] = [nn.Conv2d(in_channels, ndf, 4, stride=2, padding=pad), nn.LeakyReLU(0.2, True)]
        width = ndf
        for i in range(1, n_layers + 1):
            previous, width = width, min(width * 2, 512)
            layers += [nn.Conv2d(previous, width, 4, stride=2 if i < n_layers else 1, padding=pad),
                       nn.BatchNorm2d(width), nn.LeakyReLU(0.2, True)]
        layers.append(nn.Conv2d(width, 1, 4, stride=1, padding=pad))
        self.body = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x)


def generator_term(discriminator: nn.Module, fake: torch.Tensor, weight: float) -> torch.Tensor:
    """``weight * mean softplus(-D(fake))``: the generator is rewarded where D takes its output for real."""
    return weight * F.softplus(-discriminator(fake)).mean()


def discriminator_loss(discriminator: nn.Module, real: torch.Tensor, fake: torch.Tensor, hole: torch.Tensor,
                       gp_coef: float) -> dict[str, torch.Tensor]:
    """D's loss on a batch: real as real (+ R1 penalty), fake as fake inside the hole and as real outside it.

    Args:
        real, fake: [B, 3, H, W]; ``fake`` is detached here.
        hole: [B, 1, H, W], 1 on holes; brought to D's output size by nearest-neighbour.
    """
    real = real.detach().requires_grad_(True)
    real_logits = discriminator(real)
    (grad,) = torch.autograd.grad(real_logits.sum(), real, create_graph=True)
    r1 = grad.flatten(1).pow(2).sum(1).mean()
    fake_logits = discriminator(fake.detach())
    mask = F.interpolate(hole.float(), size=fake_logits.shape[-2:], mode="nearest")
    fake_term = mask * F.softplus(fake_logits) + (1 - mask) * F.softplus(-fake_logits)
    total = (F.softplus(-real_logits) + fake_term).mean() + gp_coef * r1
    return {"d_total": total, "d_r1": r1.detach(), "d_real": real_logits.mean().detach(),
            "d_fake": fake_logits.mean().detach()}
