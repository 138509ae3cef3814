"""L2 hit rate and DRAM read bandwidth of one inference, measured by Nsight Compute (``ncu``) on NVIDIA GPUs.

``ncu`` runs a fresh child (``python -m repro.profile.ncu SPEC``) that warms the model up, then runs one inference
inside the NVTX range ``repro_inference``; ``--nvtx-include repro_inference/`` limits the profile to the kernels
launched inside it (the trailing slash names a push/pop range). Per kernel it reads the two Table 4 metrics,
``lts__t_sector_hit_rate.pct`` and ``dram__bytes_read.sum.per_second``, and the weights that combine them over the
inference: ``lts__t_sectors.sum`` (L2 sector accesses), ``dram__bytes_read.sum`` and ``gpu__time_duration.sum``.

    l2_hit_pct     = sum(hit_rate_i * sectors_i) / sum(sectors_i)       (the hit rate of all the inference's accesses)
    dram_read_gbps = sum(bytes_read_i) / sum(duration_i) / 1e9          (bytes read per second of kernel time)

ncu replays each kernel once per pass with the caches flushed in between (its default ``--cache-control all``), so
every kernel starts from a cold L2, and kernel time excludes the gaps between launches.
"""

from __future__ import annotations

import csv
import io
import shutil
import subprocess
import sys

import torch

from repro.profile.environment import child_env

RANGE = "repro_inference"
METRICS = ("lts__t_sector_hit_rate.pct", "dram__bytes_read.sum.per_second")
WEIGHTS = ("lts__t_sectors.sum", "dram__bytes_read.sum", "gpu__time_duration.sum")


def unavailable_reason(device: torch.device) -> str | None:
    """Why ncu cannot measure here, or None when it can."""
    if device.type != "cuda":
        return f"device is {device.type}: the L2 hit rate and DRAM read bandwidth are read by Nsight Compute on NVIDIA GPUs"
    if shutil.which("ncu") is None:
        return "ncu (Nsight Compute) is not on PATH"
    return None


def command(spec_json: str) -> list[str]:
    """The ncu command line profiling the child on ``spec_json``."""
    return ["ncu", "--nvtx", "--nvtx-include", f"{RANGE}/", "--metrics", ",".join(METRICS + WEIGHTS), "--csv",
            "--page", "raw", "--print-units", "base", "--target-processes", "all",
            sys.executable, "-m", "repro.profile.ncu", spec_json]


def _number(text: str) -> float | None:
    try:
        return float(text.replace(",", ""))
    except ValueError:
        return None


def parse(stdout: str) -> list[dict[str, float]]:
    """One dict of metric values per profiled kernel, from ncu's ``--csv --page raw`` output (ncu's own ``==PROF==``
    lines and the units row are skipped)."""
    lines = [line for line in stdout.splitlines() if not line.startswith("==")]
    start = next((i for i, line in enumerate(lines) if line.startswith('"ID"')), None)
    if start is None:
        return []
    rows = []
    for row in csv.DictReader(io.StringIO("\n".join(lines[start:]))):
        if not (row.get("ID") or "").strip().isdigit():
            continue  # the units row
        values = {name: _number(row.get(name, "")) for name in METRICS + WEIGHTS}
        if all(v is not None for v in values.values()):
            rows.append(values)
    return rows


def aggregate(rows: list[dict[str, float]]) -> dict:
    """The inference's L2 hit rate (sector-weighted) and DRAM read bandwidth (bytes over kernel time)."""
    if not rows:
        raise RuntimeError("ncu reported no kernel inside the NVTX range")
    sectors = sum(r["lts__t_sectors.sum"] for r in rows)
    seconds = sum(r["gpu__time_duration.sum"] for r in rows) * 1e-9  # --print-units base: nanoseconds
    read = sum(r["dram__bytes_read.sum"] for r in rows)
    return {"l2_hit_pct": sum(r["lts__t_sector_hit_rate.pct"] * r["lts__t_sectors.sum"] for r in rows) / sectors
            if sectors else None,
            "dram_read_gbps": read / seconds / 1e9 if seconds else None, "kernels": len(rows),
            "dram_bytes_read": read, "kernel_time_s": seconds, "l2_sectors": sectors}


def measure(spec_json: str, *, timeout: float) -> dict:
    """Run ncu over one inference of the workload; raises RuntimeError with ncu's message when it fails."""
    try:
        result = subprocess.run(command(spec_json), capture_output=True, text=True, timeout=timeout, check=False,
                                env=child_env())
    except subprocess.TimeoutExpired as error:
        raise RuntimeError(f"ncu did not finish within {timeout:.0f} s") from error
    if result.returncode != 0:
        raise RuntimeError(f"ncu failed ({result.returncode}): {(result.stderr or result.stdout)[-1500:]}")
    out = aggregate(parse(result.stdout))
    return {**out, "metrics": list(METRICS + WEIGHTS), "nvtx_range": RANGE, "cache_control": "all (ncu default)"}


def _child(spec_json: str) -> None:
    from repro.profile.workload import Workload, WorkloadSpec

    workload = Workload(WorkloadSpec.from_json(spec_json))
    run = workload.inference()
    run()  # warm-up outside the range: allocations, cuDNN's search, Triton's compilation
    workload.synchronize()
    torch.cuda.nvtx.range_push(RANGE)
    run()
    workload.synchronize()
    torch.cuda.nvtx.range_pop()


if __name__ == "__main__":
    _child(sys.argv[1])
