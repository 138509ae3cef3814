"""One model's profile: parameters, FLOPs, time, memory and (on NVIDIA GPUs) NVML samples and Nsight Compute metrics,
as one JSON-ready dict with the Table 4 columns on top (``repro/profile/schema.py`` lists every key).

Table 4 columns: ``params_m`` (millions), ``flops_g`` (``flops`` / 1e9, 2 per multiply-add: the unit in which the
counter reproduces the paper's DiffIR figure at the ``paper`` input), ``train_time_s`` and ``infer_time_s``
(extrapolated, see below), ``l2_hit_pct`` and ``dram_read_gbps`` (ncu). A column that could not be measured is null
and ``missing`` says why; nothing is estimated.

Extrapolations, marked in ``extrapolated``: ``train_time_s`` = median training step x ``train_steps`` (the paper
states no number of steps, so the column is missing unless one is given); ``infer_time_s`` = median inference x the
images of ``eval_sets``, every image taken at the profile's input size.
"""

from __future__ import annotations

import dataclasses

import torch

from repro.profile import memory, ncu, nvml
from repro.profile.environment import describe
from repro.profile.flops import count_flops
from repro.profile.params import count_parameters
from repro.profile.timing import summarize, time_interleaved
from repro.profile.workload import Workload, WorkloadSpec

SCHEMA_VERSION = "repro-profile/1"
# Table 3's sets, over which the paper's inference column plausibly runs
DEFAULT_EVAL_SETS = ("Set5", "Set14", "BSD100", "Urban100", "Manga109")


@dataclasses.dataclass
class Options:
    """How to measure.

    Args:
        warmup: untimed calls before timing.
        repeats: timed calls of each phase.
        train_steps: steps for the extrapolated training time (None: not extrapolated).
        eval_sets: registered datasets whose image count the inference time is extrapolated over.
        memory: measure peak memory (CPU: two fresh subprocesses).
        ncu_timeout: seconds for the Nsight Compute run.
        nvml_interval: seconds between NVML samples.
    """

    warmup: int = 1
    repeats: int = 5
    train_steps: int | None = None
    eval_sets: tuple[str, ...] = DEFAULT_EVAL_SETS
    memory: bool = True
    ncu_timeout: float = 1800.0
    nvml_interval: float = 0.05


def _images(sets: tuple[str, ...]) -> int:
    from repro.data.registry import DATASETS

    unknown = [s for s in sets if s not in DATASETS or DATASETS[s].count is None]
    if unknown:
        raise ValueError(f"no fixed image count for {unknown}; choose among registered sets with a count")
    return sum(DATASETS[s].count for s in sets)


def _timed_phase(fn, device: torch.device, options: Options, missing: dict, key: str) -> tuple[dict, dict | None]:
    """Timing summary of one phase, with NVML samples over its timed calls where NVML can sample the device."""
    reason = nvml.unavailable_reason(device)
    if reason is not None:
        missing.setdefault("nvml", reason)
        samples = time_interleaved({key: fn}, device=device, warmup=options.warmup, repeats=options.repeats)
        return summarize(samples[key]), None
    with nvml.Sampler(device, options.nvml_interval) as sampler:
        samples = time_interleaved({key: fn}, device=device, warmup=options.warmup, repeats=options.repeats)
    return summarize(samples[key]), sampler.summary()


def _memory(workload: Workload, options: Options, missing: dict) -> dict:
    """``{"inference": ..., "train_step": ...}`` peak memory, None where not measured (the reason in ``missing``)."""
    out: dict[str, dict | None] = {"inference": None, "train_step": None}
    if not options.memory:
        missing["memory"] = "not measured (--no-memory)"
        return out
    phases = {"inference": "inference", "train_step": "train"} if workload.trainable else {"inference": "inference"}
    device = workload.device
    if device.type == "cuda":
        for key, phase in phases.items():
            out[key] = memory.gpu_peak(workload.inference() if phase == "inference" else workload.training(), device)
        return out
    results = memory.cpu_peaks(workload.spec.to_json(), tuple(phases.values()), threads=torch.get_num_threads())
    for key, phase in phases.items():
        if isinstance(results[phase], Exception):
            missing[f"memory_{key}"] = str(results[phase])
        else:
            out[key] = results[phase]
    return out


def _ncu(workload: Workload, options: Options, missing: dict) -> dict | None:
    reason = ncu.unavailable_reason(workload.device)
    if reason is None:
        try:
            return ncu.measure(workload.spec.to_json(), timeout=options.ncu_timeout)
        except RuntimeError as error:
            reason = str(error)
    missing["l2_hit_pct"] = missing["dram_read_gbps"] = reason
    return None


def _extrapolate(inference: dict, train: dict | None, options: Options, missing: dict) -> dict:
    out = {}
    n_images = _images(tuple(options.eval_sets))
    out["infer_time_s"] = {"value": inference["median_s"] * n_images, "from": "inference.median_s",
                           "images": n_images, "eval_sets": list(options.eval_sets),
                           "assumes": "every image at the profile's input size"}
    if train is None:
        missing["train_time_s"] = missing.get("train_step", "no training step")
    elif options.train_steps is None:
        missing["train_time_s"] = ("not extrapolated: the paper states no number of training steps "
                                   "(pass --train-steps / set table4.train_steps)")
    else:
        out["train_time_s"] = {"value": train["median_s"] * options.train_steps, "from": "train_step.median_s",
                               "steps": options.train_steps}
    return out


def _protocols(env: dict, spec: WorkloadSpec, workload: Workload, options: Options, kernels: dict) -> dict:
    """Per Table 4 column, what it was measured under (the table's footer prints these; no commas, which the footer
    uses between protocols)."""
    h, w = spec.lr_hw
    at = f"LR {h}x{w}" + (f" x{workload.scale}" if workload.task == "sr" else "")
    forms = " ".join(f"({op}: {'/'.join(r['backends'])} {'/'.join(r['forms'])})" for op, r in kernels.items())
    device = f"{env['device_name']} {env['precision']} {env['threads']} threads"
    steps = (f"x {options.train_steps} steps (extrapolated)" if options.train_steps is not None
             else "(no step count: not extrapolated)")
    sets = "+".join(options.eval_sets)
    return {
        "params_m": "parameter count",
        "flops_g": f"FlopCounterMode at {at}" + (f" with analytic kernel counts {forms}" if forms else ""),
        "train_time_s": f"{device}: median step of batch {spec.train_batch} x {spec.train_patch}^2 LR {steps}",
        "infer_time_s": f"{device}: median inference at {at} x images of {sets} (extrapolated)",
        "l2_hit_pct": f"Nsight Compute on {env['device_name']} at {at}",
        "dram_read_gbps": f"Nsight Compute on {env['device_name']} at {at}",
    }


def profile_model(spec: WorkloadSpec, options: Options, *, preset: str = "custom") -> dict:
    """Measure one model (see the module docstring); returns the profile dict.

    Args:
        spec: the model, input and training batch.
        options: how to measure.
        preset: how the input size was chosen (``default``, ``paper`` or ``custom``), recorded.
    """
    device = torch.device(spec.device)
    env = describe(device)
    missing: dict[str, str] = {}
    workload = Workload(spec)
    params = count_parameters(workload.model)
    flops = count_flops(workload)
    inference, nvml_inference = _timed_phase(workload.inference(), device, options, missing, "inference")
    train = nvml_train = None
    if workload.trainable:
        train, nvml_train = _timed_phase(workload.training(), device, options, missing, "train_step")
    else:
        missing["train_step"] = f"{spec.model} has no trainable parameters"
    peaks = _memory(workload, options, missing)
    counters = _ncu(workload, options, missing)
    extrapolated = _extrapolate(inference, train, options, missing)
    return {
        "schema": SCHEMA_VERSION,
        "model": spec.model,
        "scale": workload.scale,
        "task": workload.task,
        "overrides": spec.overrides,
        **env,
        "input": {"lr_hw": list(spec.lr_hw), "output_hw": list(workload.output_hw), "preset": preset, "batch": 1},
        "train_batch": {"batch": spec.train_batch, "lr_patch": spec.train_patch,
                        "prior_s1": "random N(0, 1)" if workload.stage == 2 else None},
        # the Table 4 columns
        "params_m": params["total"] / 1e6,
        "flops_g": flops["flops"] / 1e9,
        "train_time_s": extrapolated.get("train_time_s", {}).get("value"),
        "infer_time_s": extrapolated["infer_time_s"]["value"],
        "l2_hit_pct": counters["l2_hit_pct"] if counters else None,
        "dram_read_gbps": counters["dram_read_gbps"] if counters else None,
        "protocol": _protocols(env, spec, workload, options, flops["kernels"]),
        # the measurements behind them
        "params": params,
        "flops": flops["flops"],
        "macs": flops["macs"],
        "analytic": flops["analytic"],
        "kernels": flops["kernels"],
        "flops_by_part": flops["parts"],
        "flop_counter": flops["counter"],
        "timing": {"warmup": options.warmup, "repeats": options.repeats,
                   "clock": "CUDA events" if device.type == "cuda" else "time.perf_counter"},
        "inference": inference,
        "train_step": train,
        "memory": peaks,
        "nvml": {"inference": nvml_inference, "train_step": nvml_train},
        "ncu": counters,
        "extrapolated": extrapolated,
        "missing": missing,
    }
