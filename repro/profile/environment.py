"""What a profile was measured on: device, precision, TF32 settings, threads, package versions, git commit."""

from __future__ import annotations

import importlib.metadata
import os
import platform
import subprocess
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[2]
# distributions whose versions change what is measured (kernels, counters, samplers)
PACKAGES = ("torch", "numpy", "triton", "flash-linear-attention", "fla-core", "mamba-ssm", "nvidia-ml-py")


def child_env() -> dict[str, str]:
    """The environment for a ``python -m repro...`` subprocess: this one, with the repository root importable."""
    path = os.pathsep.join(p for p in (str(REPO), os.environ.get("PYTHONPATH")) if p)
    return {**os.environ, "PYTHONPATH": path}


def cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def device_name(device: torch.device) -> str:
    """``NVIDIA A100-SXM4-40GB``-like for a GPU, the CPU model (and its core count) for the CPU."""
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return f"{cpu_name()} ({os.cpu_count()} cores)"


def versions() -> dict[str, str]:
    """Python, CUDA/cuDNN as torch was built with, and the installed version of each of ``PACKAGES`` (absent ones
    are left out)."""
    out = {"python": platform.python_version(), "torch_cuda": str(torch.version.cuda),
           "cudnn": str(torch.backends.cudnn.version()) if torch.backends.cudnn.is_available() else "none"}
    for name in PACKAGES:
        try:
            out[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            continue
    return out


def git_state() -> dict[str, str | bool]:
    """The commit the code was at, and whether the tree had uncommitted changes."""
    def git(*args: str) -> str:
        return subprocess.run(["git", *args], capture_output=True, text=True, check=True, cwd=REPO).stdout.strip()

    try:
        return {"git_sha": git("rev-parse", "HEAD"), "git_dirty": bool(git("status", "--porcelain", "--untracked-files=no"))}
    except (OSError, subprocess.CalledProcessError):
        return {"git_sha": "unknown", "git_dirty": False}


def describe(device: torch.device) -> dict:
    """The settings a measurement depends on; everything runs in fp32 (TF32 as torch's flags say)."""
    return {
        "device": str(device),
        "device_name": device_name(device),
        "precision": "fp32",
        "tf32": {"cuda_matmul": bool(torch.backends.cuda.matmul.allow_tf32),
                 "cudnn": bool(torch.backends.cudnn.allow_tf32),
                 "float32_matmul_precision": torch.get_float32_matmul_precision()},
        "threads": torch.get_num_threads(),
        "interop_threads": torch.get_num_interop_threads(),
        "platform": platform.platform(),
        "versions": versions(),
        **git_state(),
    }
