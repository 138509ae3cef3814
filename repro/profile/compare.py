"""Two models measured side by side in one run, on the same input: ``python -m repro profile --compare A B``.

Both are built at their default configuration (or the given overrides), their FLOPs counted, then their inferences
timed interleaved round by round, then their training steps likewise, so that the machine's load hits both alike.
The last line printed is ``inference_ratio=<A/B> train_step_ratio=<A/B> flops_ratio=<A/B>`` (medians; FLOPs as
counted, 2 per multiply-add). ``--equal-params`` first sets B's width ``dim`` (DiffIR's) to the even value whose
parameter count is closest to A's (binary search over builds on the meta device; the count grows with dim).
"""

from __future__ import annotations

import torch

from repro import build_model
from repro.profile.environment import describe
from repro.profile.flops import count_flops
from repro.profile.params import count_parameters
from repro.profile.report import Options
from repro.profile.timing import summarize, time_interleaved
from repro.profile.workload import Workload, WorkloadSpec


def _meta_params(name: str, scale: int, overrides: dict) -> int:
    with torch.device("meta"):  # no memory, no initialisation cost
        return sum(p.numel() for p in build_model(name, scale=scale, **overrides).parameters())


def equal_params_dim(name: str, target: int, *, scale: int, overrides: dict | None = None,
                     largest: int = 512) -> tuple[int, int]:
    """(dim, parameters) of ``name`` with the even width ``dim`` whose parameter count is closest to ``target``.

    Args:
        name: a model with a ``dim`` argument (DiffIR; its down-/upsampling halves and doubles channels, so dim must
            be even).
        target: the parameter count to approach.
        scale: SR factor.
        overrides: other constructor overrides kept fixed.
        largest: the widest dim tried.
    """
    overrides = dict(overrides or {})
    count = {}

    def params(dim: int) -> int:
        if dim not in count:
            count[dim] = _meta_params(name, scale, {**overrides, "dim": dim})
        return count[dim]

    low, high = 1, largest // 2  # in units of 2: dims 2 .. largest
    while low < high:  # the smallest even dim with at least `target` parameters
        mid = (low + high) // 2
        if params(2 * mid) >= target:
            high = mid
        else:
            low = mid + 1
    candidates = [2 * d for d in (low - 1, low) if d >= 1]
    best = min(candidates, key=lambda d: (abs(params(d) - target), d))
    return best, params(best)


def compare(names: tuple[str, str], *, scale: int, lr_hw: tuple[int, int], device: str, options: Options,
            overrides: tuple[dict, dict] = ({}, {}), equal_params: bool = False, train_batch: int = 2,
            train_patch: int = 48) -> dict:
    """Measure both models (see the module docstring); returns per-model results, the ratios and the settings.

    Args:
        names: (A, B); the ratios are A / B.
        scale: SR factor.
        lr_hw: LR input (height, width) of the inference.
        device: ``cpu`` or ``cuda``.
        options: warm-up and repeats (memory, NVML and ncu are not measured here).
        overrides: constructor overrides of A and B.
        equal_params: scale B's ``dim`` to A's parameter count first.
        train_batch, train_patch: the training step's batch.
    """
    specs = [WorkloadSpec(n, scale, lr_hw, dict(o), device, train_batch, train_patch) for n, o in zip(names, overrides)]
    workloads = {names[0]: Workload(specs[0])}
    params_a = count_parameters(workloads[names[0]].model)["total"]
    if equal_params:
        dim, _ = equal_params_dim(names[1], params_a, scale=scale, overrides=specs[1].overrides)
        specs[1] = WorkloadSpec(names[1], scale, lr_hw, {**specs[1].overrides, "dim": dim}, device, train_batch,
                                train_patch)
    workloads[names[1]] = Workload(specs[1])
    results = {}
    for name, workload in workloads.items():
        flops = count_flops(workload)
        results[name] = {"overrides": workload.spec.overrides, "params": count_parameters(workload.model)["total"],
                         "flops": flops["flops"], "macs": flops["macs"], "analytic": flops["analytic"],
                         "kernels": flops["kernels"]}
    dev = torch.device(device)
    runs = {name: w.inference() for name, w in workloads.items()}
    for name, samples in time_interleaved(runs, device=dev, warmup=options.warmup, repeats=options.repeats).items():
        results[name]["inference"] = summarize(samples)
    steps = {name: w.training() for name, w in workloads.items()}
    for name, samples in time_interleaved(steps, device=dev, warmup=options.warmup, repeats=options.repeats).items():
        results[name]["train_step"] = summarize(samples)
    a, b = (results[n] for n in names)
    ratios = {"inference_ratio": a["inference"]["median_s"] / b["inference"]["median_s"],
              "train_step_ratio": a["train_step"]["median_s"] / b["train_step"]["median_s"],
              "flops_ratio": a["flops"] / b["flops"]}
    return {"models": list(names), "equal_params": equal_params, "input": {"lr_hw": list(lr_hw), "scale": scale},
            "train_batch": {"batch": train_batch, "lr_patch": train_patch},
            "timing": {"warmup": options.warmup, "repeats": options.repeats, "interleaved": True},
            **describe(dev), "results": results, "ratios": ratios}


def format_compare(result: dict) -> str:
    """A table of both models, then the ratio line last."""
    h, w = result["input"]["lr_hw"]
    settings = (f"{result['device_name']}, {result['threads']} threads, LR {h}x{w} x{result['input']['scale']}, "
                f"train batch {result['train_batch']['batch']} x {result['train_batch']['lr_patch']}^2, "
                f"median of {result['timing']['repeats']} (interleaved)")
    header = (f"{'model':12s} {'params':>12s} {'GFLOPs':>9s} {'GMACs':>9s} {'infer ms':>10s} {'p10-p90':>15s} "
              f"{'train ms':>10s} {'p10-p90':>15s}  overrides")
    lines = [settings, header]
    for name in result["models"]:
        r = result["results"][name]
        inf, tr = r["inference"], r["train_step"]
        lines.append(f"{name:12s} {r['params']:12,d} {r['flops'] / 1e9:9.3f} {r['macs'] / 1e9:9.3f} "
                     f"{inf['median_s'] * 1e3:10.1f} {inf['p10_s'] * 1e3:7.1f}-{inf['p90_s'] * 1e3:<7.1f} "
                     f"{tr['median_s'] * 1e3:10.1f} {tr['p10_s'] * 1e3:7.1f}-{tr['p90_s'] * 1e3:<7.1f}  "
                     f"{r['overrides'] or '-'}")
    ratios = result["ratios"]
    lines.append(" ".join(f"{key}={ratios[key]:.4f}" for key in ("inference_ratio", "train_step_ratio", "flops_ratio")))
    return "\n".join(lines)
