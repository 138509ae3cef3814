"""Ops with backends: the state evolution (delta rule; naive oracle, chunked PyTorch, fused C++ for the CPU, fla
Triton), the 2D scan over it, and Mamba's selective scan (naive oracle, chunked PyTorch, mamba_ssm's CUDA op)."""

# The submodules named like the functions below are loaded first: importing a submodule binds its name on the
# package, so one loaded later (kernels.api imports kernels.selective_scan on first use) would shadow the function.
import kernels.scan2d
import kernels.selective_scan  # noqa: F401
from kernels.api import BACKENDS, delta_rule, selective_scan, state_evolution
from kernels.scan2d import SCAN_DIRECTIONS, scan2d, scan_order

__all__ = ["BACKENDS", "SCAN_DIRECTIONS", "delta_rule", "scan2d", "scan_order", "selective_scan", "state_evolution"]
