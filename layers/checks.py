"""Input checks that give a clear error before a shape mismatch surfaces deep inside a network."""

from __future__ import annotations

import torch


def check_image_batch(x: torch.Tensor, *, channels: int, name: str, what: str = "RGB lq") -> None:
    """Raise unless ``x`` is a batch [B, channels, h, w]; ``name`` is the network named in the message."""
    if x.ndim != 4 or x.shape[1] != channels:
        raise ValueError(f"{name} expects {what} of shape [B, {channels}, h, w], got {tuple(x.shape)}")


def check_sr_input(lq: torch.Tensor, name: str) -> None:
    """Raise unless ``lq`` is an RGB batch [B, 3, h, w]."""
    check_image_batch(lq, channels=3, name=name)
