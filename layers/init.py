"""Weight initialisations shared by several networks."""

from __future__ import annotations

from timm.layers import trunc_normal_
from torch import nn


def init_transformer_weights(module: nn.Module) -> None:
    """The Swin-family init of SwinIR, HAT, MambaIR and MambaIRv2, applied with ``model.apply``.

    Linear weights trunc-normal(std 0.02) with zero bias; LayerNorm weight 1, bias 0. Convolutions keep PyTorch's
    default init, as in the official code.
    """
    if isinstance(module, nn.Linear):
        trunc_normal_(module.weight, std=0.02)
        if module.bias is not None:
            nn.init.zeros_(module.bias)
    elif isinstance(module, nn.LayerNorm):
        nn.init.ones_(module.weight)
        nn.init.zeros_(module.bias)
