"""FLOPs and MACs of one inference: ``torch.utils.flop_counter.FlopCounterMode`` plus the analytic kernel counts.

The counter counts 2 FLOPs per multiply-add (``flops``); the SR literature's "FLOPs" (fvcore, MambaIR) are
multiply-adds, reported here as ``macs = flops / 2``. Kernels the counter cannot see into (the fused C++ CPU kernels,
fla, mamba_ssm, the selective scan) are counted by their formulas in ``kernels/flops.py``, in the form that runs on
this device: DiffRWKVIR's state evolution is the recurrence on a CPU (``fused_recurrent``) and the chunked form on a
GPU (``fla``), so its count depends on the device; ``kernels`` in the result says which backend and form each op ran.
"""

from __future__ import annotations

import torch
from torch.utils.flop_counter import FlopCounterMode

from kernels.flops import count_kernels
from repro.profile.params import part_modules
from repro.profile.workload import Workload


def _part_flops(counts: dict[str, dict], model: torch.nn.Module) -> dict[str, int]:
    """FLOPs per part, read from the counter's per-module totals (modules are named ``<Class>.<path>``; a module
    registered under two names is reported under one of them, so every alias is tried)."""
    root = type(model).__name__
    totals = {name: sum(ops.values()) for name, ops in counts.items()}
    out = {}
    for part, (path, module) in part_modules(model).items():
        names = [f"{root}.{name}" for name, m in model.named_modules(remove_duplicate=False) if m is module]
        hit = next((totals[n] for n in [f"{root}.{path}", *names] if n in totals), None)
        if hit is not None:
            out[part] = hit
    return out


def count_flops(workload: Workload) -> dict:
    """Count one inference of ``workload`` (its inference input, eval mode).

    Returns:
        ``{"flops", "macs", "analytic": {op: flops}, "kernels": {op: {"backends", "forms", "calls"}},
        "parts": {part: flops}, "counter": ...}``; ``analytic`` holds the ops counted by formula, ``kernels`` every
        op that ran, including those the counter counted itself.
    """
    run = workload.inference()
    counter = FlopCounterMode(display=False)
    with counter, count_kernels(counter) as records:
        run()
    counts = counter.get_flop_counts()
    total = counter.get_total_flops()
    analytic = {op: r.analytic_flops for op, r in records.items() if r.analytic_flops is not None}
    kernels = {op: {"backends": r.backends, "forms": r.forms, "calls": r.calls} for op, r in records.items()}
    return {
        "flops": int(total),
        "macs": total / 2,  # pointwise terms of the formulas can make the FLOPs odd
        "analytic": analytic,
        "kernels": kernels,
        "parts": _part_flops(counts, workload.model),
        "counter": f"torch.utils.flop_counter.FlopCounterMode (torch {torch.__version__}) + kernels.flops formulas",
    }
