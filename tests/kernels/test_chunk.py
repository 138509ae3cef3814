"""The chunked PyTorch backend against the naive loop: outputs, final states and the gradients of every input."""

import pytest
import torch

from kernels import delta_rule, state_evolution
from kernels.chunk import delta_rule_flops, unit_lower_solve
from kernels.testing import delta_inputs, dplr_inputs, rel_err

SHAPES = [  # (B, T, H, K, V): odd lengths, shorter than a chunk, one token; K != V catches transposes
    pytest.param((2, 37, 2, 8, 6), id="B2-T37-H2-K8-V6"),
    pytest.param((1, 100, 3, 16, 8), id="B1-T100-H3-K16-V8"),
    pytest.param((1, 1, 1, 4, 4), id="B1-T1-H1-K4-V4"),
]
CHUNKS = (16, 24, 64)  # 24: diagonal blocks of 12 in the triangular solve


def _run(fn, inputs, h0, backend, chunk_size=64):
    return fn(*inputs, initial_state=h0, output_final_state=True, backend=backend, chunk_size=chunk_size)


def _outputs_and_grads(fn, inputs, h0, backend, chunk_size=64):
    """Output, final state and the gradients of a fixed random linear function of both w.r.t. every input."""
    o, state = _run(fn, inputs, h0, backend, chunk_size)
    gen = torch.Generator().manual_seed(1)
    loss = (o * torch.randn(o.shape, generator=gen, dtype=o.dtype)).sum()
    loss = loss + (state * torch.randn(state.shape, generator=gen, dtype=state.dtype)).sum()
    leaves = [*inputs] + ([h0] if h0 is not None else [])
    return [o, state, *torch.autograd.grad(loss, leaves)]


def _check_against_naive(fn, inputs, h0, names):
    expected = _outputs_and_grads(fn, inputs, h0, "naive")
    for chunk_size in CHUNKS:
        got = _outputs_and_grads(fn, inputs, h0, "chunk", chunk_size)
        for name, x, ref in zip(["o", "final_state", *names], got, expected):
            # floor 1: some gradients are exactly 0 (e.g. d/da with a zero state), where only an absolute bound makes sense
            assert rel_err(x, ref, floor=1.0) < 1e-10, f"{name}, chunk_size={chunk_size}"


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("with_state", [False, True], ids=["h0=0", "h0"])
def test_state_evolution_fp64(shape, with_state):
    batch, seq_len, heads, dk, dv = shape
    inputs = dplr_inputs(batch, seq_len, heads, dk, dv, requires_grad=True)
    h0 = torch.randn(batch, heads, dk, dv, dtype=torch.float64, requires_grad=True) if with_state else None
    _check_against_naive(state_evolution, inputs, h0, ["dq", "dk", "dv", "da", "db", "dgk", "dh0"])


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("with_state", [False, True], ids=["h0=0", "h0"])
def test_delta_rule_fp64(shape, with_state):
    batch, seq_len, heads, dk, dv = shape
    inputs = delta_inputs(batch, seq_len, heads, dk, dv, requires_grad=True)
    h0 = torch.randn(batch, heads, dk, dv, dtype=torch.float64, requires_grad=True) if with_state else None
    _check_against_naive(delta_rule, inputs, h0, ["dq", "dk", "dv", "dbeta", "dh0"])


@pytest.mark.parametrize("op", ["state_evolution", "delta_rule"])
def test_fp32_as_accurate_as_the_fp32_loop(op):
    # fp32 bound, justified: both fp32 backends are measured against the fp64 loop on the same inputs. The chunked form
    # reorders the sums into C-long products and (with decay) multiplies factors e^{+-g} of up to e^{+-40}, each
    # exact to a few ulp; that may cost a small factor (measured 1-3x) over the loop's own rounding (~1e-7 here),
    # never a loss of digits: 10x the loop's error, and 1e-5 (about 100 fp32 ulp) whatever the loop does.
    torch.manual_seed(3)
    if op == "state_evolution":
        fn, inputs = state_evolution, dplr_inputs(2, 200, 2, 32, 32)
    else:
        fn, inputs = delta_rule, delta_inputs(2, 200, 2, 32, 32)
    h0 = torch.randn(2, 2, 32, 32, dtype=torch.float64)
    truth, s_truth = _run(fn, inputs, h0, "naive", 64)
    inputs32, h0_32 = [x.float() for x in inputs], h0.float()
    loop, s_loop = _run(fn, inputs32, h0_32, "naive", 64)
    chunked, s_chunked = _run(fn, inputs32, h0_32, "chunk", 64)
    assert chunked.dtype == torch.float32
    loop_err = max(rel_err(loop, truth), rel_err(s_loop, s_truth), 1e-7)
    assert rel_err(chunked, truth) < 10 * loop_err and rel_err(s_chunked, s_truth) < 10 * loop_err
    assert rel_err(chunked, truth) < 1e-5


def test_strong_decay_splits_the_chunk_and_stays_exact():
    # cumulative in-chunk decay of ~e^-190 would overflow e^{-g} in fp32; the chunk is halved until it fits
    inputs = dplr_inputs(1, 130, 2, 8, 8, decay=6.0)
    truth, _ = state_evolution(*inputs, backend="naive")
    chunked, _ = state_evolution(*[x.float() for x in inputs], backend="chunk", chunk_size=64)
    assert torch.isfinite(chunked).all()
    assert rel_err(chunked, truth) < 1e-5


@pytest.mark.parametrize("size", [16, 24, 64])
def test_unit_lower_solve_matches_lapack(size):
    lower = torch.randn(3, size, size, dtype=torch.float64) * 0.3
    rhs = torch.randn(3, size, 5, dtype=torch.float64)
    expected = torch.linalg.solve_triangular(lower, rhs, upper=False, unitriangular=True)
    assert rel_err(unit_lower_solve(lower, rhs), expected) < 1e-12


def test_flop_count_by_hand():
    # C=2, K=V=1, one chunk: KK^T 8 + solve 8 + QK^T 8 + 3 * 2CKV 12 + (QK^T*M)(U-WS) 8 = 44
    assert delta_rule_flops(batch=1, heads=1, seq_len=2, dk=1, dv=1, chunk_size=2) == 44
    assert delta_rule_flops(batch=2, heads=3, seq_len=5, dk=1, dv=1, chunk_size=2) == 6 * 3 * 44


def test_tiles_reassemble_outputs_states_and_gradients(monkeypatch):
    monkeypatch.setattr("kernels.chunk.TILE_TOKENS", 40)  # T=20: tiles of 2 heads of one batch row (B=3, H=3)
    inputs = dplr_inputs(3, 20, 3, 4, 5, requires_grad=True)
    h0 = torch.randn(3, 3, 4, 5, dtype=torch.float64, requires_grad=True)
    expected = _outputs_and_grads(state_evolution, inputs, h0, "naive")
    got = _outputs_and_grads(state_evolution, inputs, h0, "chunk", 16)
    for x, ref in zip(got, expected):
        assert rel_err(x, ref, floor=1.0) < 1e-10
    q, k, v, beta = (x.detach() for x in delta_inputs(3, 20, 3, 4, 5))
    o, s = delta_rule(q, k, v, beta, initial_state=h0, output_final_state=True)
    o_ref, s_ref = delta_rule(q, k, v, beta, initial_state=h0, output_final_state=True, backend="naive")
    assert rel_err(o, o_ref) < 1e-10 and rel_err(s, s_ref) < 1e-10
