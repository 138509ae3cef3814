"""Parameter counts: the total, and per part for the two-stage models (network, CPEN, denoiser).

The parts are found by attribute name: DiffRWKVIR (models/diffrwkvir.py) has ``net``, ``cpen`` (stage 1) and
``diffusion.condition`` / ``diffusion.model`` (stage 2); DiffIR (baselines/diffir.py) has ``G``, ``E`` (stage 1) and
``condition`` / ``denoise`` (stage 2, the same modules as ``diffusion.condition`` / ``diffusion.model``). A tensor
registered under two names is counted once.
"""

from __future__ import annotations

import torch
from torch import nn

# part -> attribute paths that hold it, first match wins
PARTS = {
    "network": ("net", "G"),
    "cpen": ("cpen", "E", "condition", "diffusion.condition"),
    "denoiser": ("denoise", "diffusion.model"),
}


def _unique(parameters) -> int:
    seen: dict[int, torch.Tensor] = {}
    for p in parameters:
        seen.setdefault(id(p), p)
    return sum(p.numel() for p in seen.values())


def part_modules(model: nn.Module) -> dict[str, tuple[str, nn.Module]]:
    """``{part: (attribute path, module)}`` for the parts ``model`` has (empty for single-network models)."""
    found = {}
    for part, paths in PARTS.items():
        for path in paths:
            try:
                found[part] = (path, model.get_submodule(path))
                break
            except AttributeError:
                continue
    return found


def count_parameters(model: nn.Module) -> dict:
    """``{"total": n, "parts": {part: {"path": ..., "params": n}}, "other": n}``; ``other`` is what no part holds.

    Args:
        model: any network; parts only where the attribute names above exist.
    """
    total = _unique(model.parameters())
    parts = {part: {"path": path, "params": _unique(module.parameters())}
             for part, (path, module) in part_modules(model).items()}
    in_parts = _unique(p for _, module in part_modules(model).values() for p in module.parameters())
    return {"total": total, "parts": parts, "other": total - in_parts if parts else 0}
