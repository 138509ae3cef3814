"""Kernel timings: the state evolution, the 2D scan and the selective scan, forward and forward + backward, for every
CPU backend (`naive` is left out: it is the oracle, minutes at these shapes)."""

import pytest
import torch

from kernels import delta_rule, fused_cpu, scan2d
from kernels.api import selective_scan
from kernels.bench import delta_rule_inputs, scan_inputs, selective_scan_inputs

FUSED = fused_cpu.available()[0]
needs_fused = pytest.mark.skipif(not FUSED, reason="no C++ compiler: the fused kernels are not built here")
DELTA = ["chunk", pytest.param("fused_chunk", marks=needs_fused), pytest.param("fused_recurrent", marks=needs_fused)]
SCAN = ["chunk", pytest.param("fused_recurrent", marks=needs_fused)]
SELECTIVE = ["chunk", pytest.param("fused", marks=needs_fused)]


def _grad(tensors):
    return [x.detach().requires_grad_() for x in tensors]


@pytest.mark.parametrize("backend", DELTA)
def test_delta_rule_forward(benchmark, backend):
    inputs = delta_rule_inputs(4, 4, 4096, 32)
    with torch.no_grad():
        benchmark(lambda: delta_rule(*inputs, backend=backend))


@pytest.mark.parametrize("backend", DELTA)
def test_delta_rule_forward_backward(benchmark, backend):
    inputs = _grad(delta_rule_inputs(4, 4, 4096, 32))
    benchmark(lambda: delta_rule(*inputs, backend=backend)[0].sum().backward())


@pytest.mark.parametrize("backend", SCAN)
def test_scan2d_forward(benchmark, backend):
    inputs = scan_inputs(64, 64, 2)
    with torch.no_grad():
        benchmark(lambda: scan2d(*inputs, height=64, width=64, backend=backend))


@pytest.mark.parametrize("backend", SCAN)
def test_scan2d_forward_backward(benchmark, backend):
    inputs = _grad(scan_inputs(64, 64, 2))
    benchmark(lambda: scan2d(*inputs, height=64, width=64, backend=backend).sum().backward())


@pytest.mark.parametrize("backend", SELECTIVE)
def test_selective_scan_forward_backward(benchmark, backend):
    u, delta, A, B, C, D, bias = _grad(selective_scan_inputs())
    benchmark(lambda: selective_scan(u, delta, A, B, C, D, delta_bias=bias, delta_softplus=True,
                                     backend=backend).sum().backward())
