"""The exponential moving average of a network's weights, kept beside the raw weights in every checkpoint."""

from __future__ import annotations

import torch
from torch import nn


class EMA:
    """Exponential moving average of every floating-point entry of a state dict (integer buffers are copied).

    With ``warmup`` the decay of update t is ``min(decay, (1 + t) / (10 + t))`` (timm's EMA warm-up): a plain
    0.999 average still weighs the random initial weights by 0.999^t, 86% after 150 steps, which ruins the EMA of
    a short run; the warm-up lets the average follow the weights early and reach ``decay`` after ~10,000 steps.
    """

    def __init__(self, model: nn.Module, decay: float, *, warmup: bool = True) -> None:
        self.decay, self.warmup = decay, warmup
        self.state = {k: v.detach().clone() for k, v in model.state_dict().items()}

    @torch.no_grad()
    def update(self, model: nn.Module, step: int) -> None:
        """Fold in the weights after optimizer step ``step`` (1-based)."""
        decay = min(self.decay, (1 + step) / (10 + step)) if self.warmup else self.decay
        for key, value in model.state_dict().items():
            if value.dtype.is_floating_point:
                self.state[key].lerp_(value, 1.0 - decay)
            else:
                self.state[key].copy_(value)
