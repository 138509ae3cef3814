"""The fused C++ CPU kernel against the naive loop: outputs, final states, gradients, layouts, threads, no compiler."""

import pytest
import torch

from kernels import cpu_kernel, delta_rule
from kernels.api import resolve_backend
from kernels.testing import delta_inputs, rel_err

SHAPES = [  # (B, T, H, K, V): odd lengths; dims that are not whole vectors; K, V over 64 lanes (several column groups)
    pytest.param((2, 37, 3, 8, 5), id="B2-T37-H3-K8-V5"),
    pytest.param((1, 130, 2, 32, 32), id="B1-T130-H2-K32-V32"),
    pytest.param((2, 200, 1, 70, 33), id="B2-T200-H1-K70-V33"),
    pytest.param((1, 1, 1, 4, 4), id="B1-T1-H1-K4-V4"),
]
CHUNKS = (16, 48, 64, 100)

pytestmark = pytest.mark.skipif(not cpu_kernel.available()[0], reason=cpu_kernel.available()[1])


def _grads(inputs, h0, backend, chunk_size=64):
    o, state = delta_rule(*inputs, initial_state=h0, output_final_state=True, backend=backend, chunk_size=chunk_size)
    gen = torch.Generator().manual_seed(1)
    loss = (o * torch.randn(o.shape, generator=gen, dtype=o.dtype)).sum()
    loss = loss + (state * torch.randn(state.shape, generator=gen, dtype=state.dtype)).sum()
    leaves = [*inputs] + ([h0] if h0 is not None else [])
    return [o, state, *torch.autograd.grad(loss, leaves)]


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("with_state", [False, True], ids=["h0=0", "h0"])
def test_fp64_outputs_and_states_equal_the_loop(shape, with_state):
    batch, seq_len, heads, dk, dv = shape
    inputs = delta_inputs(batch, seq_len, heads, dk, dv)
    h0 = torch.randn(batch, heads, dk, dv, dtype=torch.float64) if with_state else None
    ref, s_ref = delta_rule(*inputs, initial_state=h0, output_final_state=True, backend="naive")
    for chunk_size in CHUNKS:
        o, state = delta_rule(*inputs, initial_state=h0, output_final_state=True, backend="cpu", chunk_size=chunk_size)
        assert o.dtype == state.dtype == torch.float64
        assert rel_err(o, ref) < 1e-12 and rel_err(state, s_ref) < 1e-12, f"chunk_size={chunk_size}"


def test_gradients_of_every_input_equal_the_loop():
    # the kernel is forward-only; backward recomputes through the chunked PyTorch algorithm
    inputs = delta_inputs(2, 45, 2, 8, 6, requires_grad=True)
    h0 = torch.randn(2, 2, 8, 6, dtype=torch.float64, requires_grad=True)
    expected = _grads(inputs, h0, "naive")
    got = _grads(inputs, h0, "cpu", chunk_size=16)
    for name, x, ref in zip(["o", "final_state", "dq", "dk", "dv", "dbeta", "dh0"], got, expected, strict=True):
        assert rel_err(x, ref, floor=1.0) < 1e-10, name


def test_gradients_without_final_state_or_initial_state():
    q, k, v, beta = delta_inputs(1, 20, 2, 4, 4, requires_grad=True)
    o, state = delta_rule(q, k, v.detach(), beta, backend="cpu")
    assert state is None
    dq, dk, dbeta = torch.autograd.grad(o.square().sum(), [q, k, beta])
    o_ref, _ = delta_rule(q, k, v.detach(), beta, backend="naive")
    for x, ref in zip([dq, dk, dbeta], torch.autograd.grad(o_ref.square().sum(), [q, k, beta]), strict=True):
        assert rel_err(x, ref) < 1e-10


def test_fp32_as_accurate_as_the_fp32_loop():
    # same bound as the chunked backend's fp32 test (tests/kernels/test_chunk.py): 10x the fp32 loop's own error
    torch.manual_seed(3)
    inputs = delta_inputs(2, 200, 2, 32, 32)
    h0 = torch.randn(2, 2, 32, 32, dtype=torch.float64)
    truth, s_truth = delta_rule(*inputs, initial_state=h0, output_final_state=True, backend="naive")
    inputs32 = [x.float() for x in inputs]
    loop, s_loop = delta_rule(*inputs32, initial_state=h0.float(), output_final_state=True, backend="naive")
    fused, s_fused = delta_rule(*inputs32, initial_state=h0.float(), output_final_state=True, backend="cpu")
    assert fused.dtype == s_fused.dtype == torch.float32
    loop_err = max(rel_err(loop, truth), rel_err(s_loop, s_truth), 1e-7)
    assert rel_err(fused, truth) < 10 * loop_err and rel_err(s_fused, s_truth) < 10 * loop_err


def test_strided_inputs_are_read_in_place():
    # [B, H, T, D] tensors seen as [B, T, H, D], a sliced beta and a non-unit feature stride (copied) give the same result
    q, k, v, beta = delta_inputs(2, 40, 3, 8, 6)
    ref, _ = delta_rule(q, k, v, beta, backend="naive")
    head_first = [x.transpose(1, 2).contiguous().transpose(1, 2) for x in (q, k, v)]
    wide_beta = torch.stack([beta, beta], dim=-1)[..., 0]
    reversed_features = k.flip(-1).contiguous().flip(-1)  # negative strides are not views in torch: a copy
    o, _ = delta_rule(head_first[0], reversed_features, head_first[2], wide_beta, backend="cpu")
    assert not head_first[0].is_contiguous() and not wide_beta.is_contiguous()
    assert rel_err(o, ref) < 1e-12


def test_thread_count_does_not_change_a_bit(one_thread):
    # one sequence per thread, in a fixed order: results are bitwise the same whatever the thread count
    inputs = [x.float() for x in delta_inputs(3, 70, 2, 16, 16)]
    single, _ = delta_rule(*inputs, backend="cpu")
    torch.set_num_threads(2)
    assert torch.equal(delta_rule(*inputs, backend="cpu")[0], single)


def test_no_compiler_falls_back_to_chunk_and_says_why(monkeypatch):
    monkeypatch.setenv("CXX", "no-such-compiler-xyz")
    cpu_kernel.load_library.cache_clear()
    try:
        ok, reason = cpu_kernel.available()
        assert not ok and "no-such-compiler-xyz" in reason
        inputs = delta_inputs(1, 10, 1, 4, 4)
        auto, _ = delta_rule(*inputs)  # auto: the chunked PyTorch backend
        assert torch.equal(auto, delta_rule(*inputs, backend="chunk")[0])
        with pytest.raises(cpu_kernel.KernelUnavailable, match="no C\\+\\+ compiler"):
            delta_rule(*inputs, backend="cpu")
    finally:
        monkeypatch.undo()
        cpu_kernel.load_library.cache_clear()


def test_build_goes_to_the_cache_directory(monkeypatch, tmp_path):
    monkeypatch.setenv("REPRO_KERNEL_CACHE", str(tmp_path))
    cpu_kernel.load_library.cache_clear()
    try:
        q, k, v, beta = delta_inputs(1, 5, 1, 4, 4)
        o, _ = delta_rule(q, k, v, beta, backend="cpu")
        assert rel_err(o, delta_rule(q, k, v, beta, backend="naive")[0]) < 1e-12
        assert len(list(tmp_path.glob("delta_rule_cpu-*.so"))) == 1
    finally:
        monkeypatch.undo()
        cpu_kernel.load_library.cache_clear()


def test_cuda_tensors_are_refused():
    with pytest.raises(ValueError, match="for CPU tensors"):
        resolve_backend("cpu", torch.device("cuda"), fused_cpu=True)
