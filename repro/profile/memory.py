"""Peak memory of an inference and of a training step.

- CPU: measured in a fresh subprocess per phase (``python -m repro.profile.memory SPEC PHASE THREADS``), so that
  neither the profiler's own allocations nor the other phase inflate it: the child builds the workload, reads its
  resident set (``VmRSS``), runs the phase twice (the first training step allocates Adam's state) and reports its
  peak resident set, ``VmHWM`` of ``/proc/self/status``: the whole child, interpreter, torch and model included;
  ``run_increase_bytes`` is that peak minus the resident set before the runs. Not ``getrusage``'s ``ru_maxrss``: on
  Linux a process started by fork/vfork + exec inherits in ``ru_maxrss`` the resident set its parent had at the fork
  (the kernel carries the old memory map's high-water mark over the exec), so a child of a large profiler reports
  the profiler's size (seen: both phases of DiffIR at the paper input reported the parent's 4135469056 bytes).
  ``ru_maxrss`` is the fallback where there is no ``/proc``. The child applies the same glibc allocator settings as
  the profiler (``repro.runtime.tune_cpu_allocator``), which keep freed blocks and so raise the resident set
  compared with an untuned process.
- GPU: in the profiling process, ``torch.cuda.max_memory_allocated`` over one call after
  ``torch.cuda.reset_peak_memory_stats`` (PyTorch's caching allocator; the driver's and other processes' memory not
  included), after warm-up.
"""

from __future__ import annotations

import json
import resource
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import torch

from repro.profile.environment import child_env

CPU_METHOD = ("fresh subprocess per phase: peak resident set (VmHWM) after two runs; run_increase = that peak minus "
              "VmRSS before the runs")
GPU_METHOD = "torch.cuda.max_memory_allocated over one call after reset_peak_memory_stats (after warm-up)"


def _status_bytes(field: str) -> int | None:
    """A ``kB`` field of ``/proc/self/status`` (``VmRSS``, ``VmHWM``) in bytes; None without ``/proc``."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(f"{field}:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return None


def peak_rss_bytes() -> int:
    """This process's peak resident set: ``VmHWM`` (its own memory map's), else ``ru_maxrss`` (see the docstring)."""
    peak = _status_bytes("VmHWM")
    if peak is not None:
        return peak
    usage = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return usage if sys.platform == "darwin" else usage * 1024  # bytes on macOS, KiB elsewhere


def _rss_bytes() -> int:
    """The current resident set (``VmRSS``), else the peak so far."""
    current = _status_bytes("VmRSS")
    return current if current is not None else peak_rss_bytes()


def cpu_peaks(spec_json: str, phases: tuple[str, ...], *, threads: int, timeout: float = 1800) -> dict:
    """Peak resident memory of each phase (``inference``, ``train``), each in its own fresh subprocess. The children
    run at the same time (each one's peak is its own), after the timed runs, so they disturb no timing.

    Args:
        spec_json: ``WorkloadSpec.to_json()``.
        phases: the phases to measure.
        threads: torch intra-op threads in each child (the profiler's).
        timeout: seconds before a child is abandoned.

    Returns:
        ``{phase: result}``, where a failed child's result is the ``RuntimeError`` saying why.
    """
    children = {phase: subprocess.Popen([sys.executable, "-m", "repro.profile.memory", spec_json, phase, str(threads)],
                                        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=child_env())
                for phase in phases}
    out: dict[str, dict | RuntimeError] = {}
    for phase, child in children.items():
        try:
            stdout, stderr = child.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            child.kill()
            child.communicate()
            out[phase] = RuntimeError(f"memory subprocess for {phase} did not finish within {timeout:.0f} s")
            continue
        if child.returncode != 0:
            out[phase] = RuntimeError(f"memory subprocess for {phase} failed ({child.returncode}): {stderr[-2000:]}")
        else:
            out[phase] = {**json.loads(stdout.strip().splitlines()[-1]), "method": CPU_METHOD}
    return out


def gpu_peak(fn: Callable[[], object], device: torch.device) -> dict:
    """Peak CUDA memory allocated by PyTorch during one call of ``fn`` (already warmed up)."""
    torch.cuda.synchronize(device)
    before = torch.cuda.memory_allocated(device)
    torch.cuda.reset_peak_memory_stats(device)
    fn()
    torch.cuda.synchronize(device)
    peak = torch.cuda.max_memory_allocated(device)
    return {"peak_allocated_bytes": int(peak), "allocated_before_bytes": int(before),
            "run_increase_bytes": int(peak - before),
            "peak_reserved_bytes": int(torch.cuda.max_memory_reserved(device)), "method": GPU_METHOD}


def _child(spec_json: str, phase: str, threads: int) -> None:
    from repro.profile.workload import Workload, WorkloadSpec
    from repro.runtime import tune_cpu_allocator

    tune_cpu_allocator()
    torch.set_num_threads(threads)
    workload = Workload(WorkloadSpec.from_json(spec_json))
    fn = workload.inference() if phase == "inference" else workload.training()
    before = _rss_bytes()
    for _ in range(2):
        fn()
    peak = peak_rss_bytes()
    print(json.dumps({"peak_rss_bytes": peak, "rss_before_run_bytes": before, "run_increase_bytes": peak - before}))


if __name__ == "__main__":
    _child(sys.argv[1], sys.argv[2], int(sys.argv[3]))
