"""Dynamic State Evolution Block (Fig. 8): ``x + mixer(mod(LN x))``, then ``x + ffn(mod(LN x))``, on maps [B, C, H, W]."""

from __future__ import annotations

import torch
from torch import nn

from layers.norms import ChannelLayerNorm
from models.ffn import FFNS, build_ffn
from models.mixers import MIXERS, build_mixer
from models.seb import SCANS
from models.shifts import SHIFTS

__all__ = ["DSEB", "PriorModulation", "check_variant"]


def check_variant(*, shift: str, mixer: str, ffn: str, scan: str) -> None:
    """Validate the Table 5 switches, naming the allowed values."""
    switches = (("shift", shift, SHIFTS), ("mixer", mixer, MIXERS), ("ffn", ffn, FFNS), ("scan", scan, SCANS))
    for name, value, allowed in switches:
        if value not in allowed:
            raise ValueError(f"unknown {name} {value!r}; expected one of {allowed}")


class PriorModulation(nn.Module):
    """``x * γ(z) + β(z)`` with ``(γ - 1, β) = W z``: DiffIR's IPR modulation, offset so that W = 0 is the identity.

    Args:
        prior_dim: size of the IPR z.
        dim: channels of x.
    """

    def __init__(self, *, prior_dim: int, dim: int) -> None:
        super().__init__()
        self.kernel = nn.Linear(prior_dim, 2 * dim, bias=False)

    def forward(self, x: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        gamma, beta = self.kernel(z)[:, :, None, None].chunk(2, dim=1)
        return x * (1.0 + gamma) + beta


class DSEB(nn.Module):
    """SEB (or an ablation mixer) and CAB (or an MLP variant), each pre-normed, IPR-modulated and residual.

    Args:
        dim: channels.
        head_size: channels per head of the SEB / attention mixer.
            Default: 32.
        prior_dim: IPR size; None builds a block without modulation.
            Default: None.
        shift, mixer, ffn, scan: the Table 5 switches.
            Default: ``"omni"``, ``"ttt"``, ``"cab"``, ``"2d"``.
        layer_id, n_layers: position of the block in the network (SEB initialisation).
            Default: 0, 1.
        backend, chunk_size: state-evolution kernel settings.
            Default: ``"auto"``, 64.
    """

    def __init__(self, *, dim: int, head_size: int = 32, prior_dim: int | None = None, shift: str = "omni",
                 mixer: str = "ttt", ffn: str = "cab", scan: str = "2d", layer_id: int = 0, n_layers: int = 1,
                 backend: str = "auto", chunk_size: int = 64) -> None:
        super().__init__()
        check_variant(shift=shift, mixer=mixer, ffn=ffn, scan=scan)
        self.norm1 = ChannelLayerNorm(dim)
        self.norm2 = ChannelLayerNorm(dim)
        self.mixer = build_mixer(mixer, dim=dim, head_size=head_size, shift=shift, scan=scan, layer_id=layer_id,
                                 n_layers=n_layers, backend=backend, chunk_size=chunk_size)
        self.ffn = build_ffn(ffn, dim=dim)
        self.prior_dim = prior_dim
        if prior_dim:
            self.modulation1 = PriorModulation(prior_dim=prior_dim, dim=dim)
            self.modulation2 = PriorModulation(prior_dim=prior_dim, dim=dim)

    def forward(self, x: torch.Tensor, z: torch.Tensor | None = None) -> torch.Tensor:
        if z is not None and not self.prior_dim:
            raise ValueError("this DSEB was built without prior_dim, so it cannot take an IPR z")
        h = self.norm1(x)
        if z is not None:
            h = self.modulation1(h, z)
        x = x + self.mixer(h)
        h = self.norm2(x)
        if z is not None:
            h = self.modulation2(h, z)
        return x + self.ffn(h)
