"""What a training step minimises, per kind of network."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from repro.train.adversarial import generator_term

LOSSES = ("l1", "l1_y")


def y_channel(rgb: torch.Tensor) -> torch.Tensor:
    """BT.601 luma in [16/255, 235/255] of RGB in [0, 1] (the channel SRCNN and VDSR are trained on)."""
    w = rgb.new_tensor([65.481, 128.553, 24.966]).view(1, 3, 1, 1) / 255.0
    return (rgb * w).sum(1, keepdim=True) + 16.0 / 255.0


class Objective(nn.Module):
    """The training loss of a network as a module, so that DDP's forward wraps it (``compute_losses`` of two-stage
    models, else L1 on RGB or on the Y channel).

    With ``adversarial`` (inpainting, ``repro.train.adversarial``) the generator's adversarial term is added to the
    total, and the restored image is kept in ``self.restored`` for the discriminator's step. The discriminator is
    held outside the module tree, so that neither DDP nor the generator's optimizer sees its parameters.
    """

    def __init__(self, model: nn.Module, loss: str, adversarial: tuple[nn.Module, float] | None = None) -> None:
        super().__init__()
        if loss not in LOSSES:
            raise ValueError(f"train.loss must be one of {LOSSES}, got {loss!r}")
        self.model, self.loss = model, loss
        self._adversarial = adversarial  # (discriminator, weight): a tuple attribute, not a registered submodule
        self.restored: torch.Tensor | None = None

    def forward(self, lq: torch.Tensor, gt: torch.Tensor, prior_s1: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        stage = self.model.descriptor.stage
        outputs = {} if self._adversarial is not None else None
        if stage == 1:
            terms = self.model.compute_losses(lq, gt, outputs=outputs)
        elif stage == 2:
            terms = self.model.compute_losses(lq, gt, prior_s1=prior_s1, outputs=outputs)
        else:
            out = self.model(lq)
            if outputs is not None:
                outputs["restored"] = out
            if self.loss == "l1_y":
                out, gt = y_channel(out), y_channel(gt)
            terms = {"l1": F.l1_loss(out, gt)}
        if self._adversarial is None:
            return terms
        discriminator, weight = self._adversarial
        self.restored = outputs["restored"]
        adv = generator_term(discriminator, self.restored, weight)
        base = terms["total"] if "total" in terms else sum(terms.values())
        return {**{k: v for k, v in terms.items() if k != "total"}, "adv": adv, "total": base + adv}
