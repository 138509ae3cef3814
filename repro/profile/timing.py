"""Wall time of callables, interleaved round by round, and the summary statistics a profile reports.

Each callable is called ``warmup`` times first (allocations, lazy buffers, cuDNN's algorithm search, the fused
kernels' first-use build), then once per round for ``repeats`` rounds, all callables in turn, so that a background
load on a shared machine hits all of them alike. On a GPU each call is timed with CUDA events after a
``torch.cuda.synchronize()``, on a CPU with ``time.perf_counter``; the device is synchronized after each call either
way, so asynchronous work is inside the time.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import numpy as np
import torch


def _timed(fn: Callable[[], object], device: torch.device) -> float:
    """Seconds of one call."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        fn()
        end.record()
        end.synchronize()
        return start.elapsed_time(end) / 1e3
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def time_interleaved(fns: dict[str, Callable[[], object]], *, device: torch.device | str, warmup: int = 1,
                     repeats: int = 5) -> dict[str, list[float]]:
    """Seconds per call of each callable, ``repeats`` samples each.

    Args:
        fns: name -> callable taking no arguments.
        device: where the callables run (CUDA: timed with events).
        warmup: untimed calls of each callable before the first round.
        repeats: timed rounds (one call of each callable per round).
    """
    if repeats < 1:
        raise ValueError(f"repeats must be at least 1, got {repeats}")
    device = torch.device(device)
    for fn in fns.values():
        for _ in range(warmup):
            fn()
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    samples: dict[str, list[float]] = {name: [] for name in fns}
    for _ in range(repeats):
        for name, fn in fns.items():
            samples[name].append(_timed(fn, device))
    return samples


def summarize(samples: list[float]) -> dict:
    """Median and spread of timing samples (seconds): p10/p90 and the quartiles (linear interpolation), min, max."""
    x = np.asarray(samples, dtype=float)
    p10, q1, median, q3, p90 = np.percentile(x, [10, 25, 50, 75, 90])
    return {"median_s": float(median), "p10_s": float(p10), "p90_s": float(p90), "q1_s": float(q1), "q3_s": float(q3),
            "iqr_s": float(q3 - q1), "min_s": float(x.min()), "max_s": float(x.max()), "n": int(x.size),
            "samples_s": [float(v) for v in x]}
