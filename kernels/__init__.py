"""Ops with backends: the state evolution (delta rule; naive oracle, chunked PyTorch, fused C++ for the CPU, fla
Triton), the 2D scan over it, and Mamba's selective scan (naive oracle, chunked PyTorch, mamba_ssm's CUDA op)."""

from kernels.api import BACKENDS, delta_rule, selective_scan, state_evolution
from kernels.scan2d import SCAN_DIRECTIONS, scan2d, scan_order

__all__ = ["BACKENDS", "SCAN_DIRECTIONS", "delta_rule", "scan2d", "scan_order", "selective_scan", "state_evolution"]
