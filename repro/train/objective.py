"""What a training step minimises, per kind of network."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

LOSSES = ("l1", "l1_y")


def y_channel(rgb: torch.Tensor) -> torch.Tensor:
    """BT.601 luma in [16/255, 235/255] of RGB in [0, 1] (the channel SRCNN and VDSR are trained on)."""
    w = rgb.new_tensor([65.481, 128.553, 24.966]).view(1, 3, 1, 1) / 255.0
    return (rgb * w).sum(1, keepdim=True) + 16.0 / 255.0


class Objective(nn.Module):
    """The training loss of a network as a module, so that DDP's forward wraps it (``compute_losses`` of two-stage
    models, else L1 on RGB or on the Y channel)."""

    def __init__(self, model: nn.Module, loss: str) -> None:
        super().__init__()
        if loss not in LOSSES:
            raise ValueError(f"train.loss must be one of {LOSSES}, got {loss!r}")
        self.model, self.loss = model, loss

    def forward(self, lq: torch.Tensor, gt: torch.Tensor, prior_s1: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        stage = self.model.descriptor.stage
        if stage == 1:
            return self.model.compute_losses(lq, gt)
        if stage == 2:
            return self.model.compute_losses(lq, gt, prior_s1=prior_s1)
        out = self.model(lq)
        if self.loss == "l1_y":
            out, gt = y_channel(out), y_channel(gt)
        return {"l1": F.l1_loss(out, gt)}
