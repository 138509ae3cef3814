"""Dispatch, defaults and input checks of the public entry points."""

import pytest
import torch

from kernels import BACKENDS, delta_rule, fused_cpu, state_evolution
from kernels.testing import delta_inputs, dplr_inputs, rel_err

NEEDS_CXX = pytest.mark.skipif(not fused_cpu.available()[0], reason=fused_cpu.available()[1])
CPU_BACKENDS = [
    "naive",
    "chunk",
    pytest.param("fused_chunk", marks=NEEDS_CXX),
    pytest.param("fused_recurrent", marks=NEEDS_CXX),
]


@NEEDS_CXX
def test_auto_is_the_fused_recurrence_on_cpu():
    inputs = dplr_inputs(1, 20, 2, 4, 4)
    auto, _ = state_evolution(*inputs)
    fused, _ = state_evolution(*inputs, backend="fused_recurrent")
    naive, _ = state_evolution(*inputs, backend="naive")
    assert torch.equal(auto, fused) and rel_err(auto, naive) < 1e-12
    inputs = delta_inputs(1, 20, 2, 4, 4)
    assert torch.equal(delta_rule(*inputs)[0], delta_rule(*inputs, backend="fused_recurrent")[0])
    assert BACKENDS == ("naive", "chunk", "fused", "fused_chunk", "fused_recurrent", "fla", "cuda", "auto")


@pytest.mark.parametrize("backend", CPU_BACKENDS)
def test_dtypes_and_final_state(backend):
    q, k, v, beta = delta_inputs(1, 10, 2, 4, 3, dtype=torch.bfloat16)
    o, state = delta_rule(q, k, v, beta, backend=backend)
    assert o.dtype == torch.bfloat16 and o.shape == (1, 10, 2, 3) and state is None
    o, state = delta_rule(q.float(), k.float(), v.float(), beta.float(), output_final_state=True, backend=backend)
    assert o.dtype == torch.float32 and state.shape == (1, 2, 4, 3) and state.dtype == torch.float32


def test_initial_state_continues_a_sequence():
    # running T tokens = running the first half, then the second half from the first half's final state
    inputs = dplr_inputs(2, 50, 2, 6, 5)
    full, s_full = state_evolution(*inputs, output_final_state=True, backend="naive")
    first, s_half = state_evolution(*(x[:, :23] for x in inputs), output_final_state=True, backend="chunk")
    second, s_end = state_evolution(*(x[:, 23:] for x in inputs), initial_state=s_half, output_final_state=True)
    assert rel_err(torch.cat([first, second], dim=1), full) < 1e-12 and rel_err(s_end, s_full) < 1e-12


def test_bad_input_is_named():
    q, k, v, a, b, gk = dplr_inputs(1, 8, 2, 4, 4)
    with pytest.raises(ValueError, match="unknown backend"):
        state_evolution(q, k, v, a, b, gk, backend="triton")
    with pytest.raises(ValueError, match="'cuda' does not implement state_evolution"):
        state_evolution(q, k, v, a, b, gk, backend="cuda")
    with pytest.raises(ValueError, match="needs CUDA"):
        state_evolution(q, k, v, a, b, gk, backend="fla")
    with pytest.raises(ValueError, match="'fused_chunk' does not implement state_evolution"):
        state_evolution(q, k, v, a, b, gk, backend="fused_chunk")
    with pytest.raises(ValueError, match="gk must have q's shape"):
        state_evolution(q, k, v, a, b, gk[..., :2])
    with pytest.raises(ValueError, match="v must be"):
        state_evolution(q, k, v[:, :5], a, b, gk)
    with pytest.raises(ValueError, match="initial_state must be"):
        state_evolution(q, k, v, a, b, gk, initial_state=torch.zeros(1, 2, 4, 5))
    with pytest.raises(ValueError, match="beta must be"):
        delta_rule(q, k, v, a)
    with pytest.raises(ValueError, match="chunk_size"):
        delta_rule(q, k, v, a[..., 0], chunk_size=0)


@pytest.mark.parametrize("backend", CPU_BACKENDS)
def test_no_tokens_leave_the_state_unchanged(backend):
    q, k, v, beta = delta_inputs(2, 0, 2, 4, 3, requires_grad=True)
    h0 = torch.randn(2, 2, 4, 3, dtype=torch.float64, requires_grad=True)
    o, state = delta_rule(q, k, v, beta, initial_state=h0, output_final_state=True, backend=backend)
    assert o.shape == (2, 0, 2, 3) and torch.equal(state, h0)
    (grad,) = torch.autograd.grad(state.sum(), [h0])
    assert torch.equal(grad, torch.ones_like(h0))
    inputs = dplr_inputs(1, 0, 1, 4, 4)
    o, state = state_evolution(*inputs, output_final_state=True, backend="chunk" if backend == "fused_chunk" else backend)
    assert o.shape == (1, 0, 1, 4) and not state.any()
