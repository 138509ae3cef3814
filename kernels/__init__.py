"""State-evolution (delta rule) ops: naive oracle, chunked PyTorch, fused C++ for the CPU, fla Triton, the 2D scan."""

from kernels.api import BACKENDS, delta_rule, state_evolution
from kernels.scan2d import SCAN_DIRECTIONS, scan2d, scan_order

__all__ = ["BACKENDS", "SCAN_DIRECTIONS", "delta_rule", "scan2d", "scan_order", "state_evolution"]
