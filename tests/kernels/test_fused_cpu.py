"""The fused C++ CPU kernels against the naive loop: outputs, final states, gradients, layouts, threads, no compiler."""

import subprocess
import sys
from pathlib import Path

import pytest
import torch

from kernels import delta_rule, fused_cpu, state_evolution
from kernels.api import resolve_backend
from kernels.chunk import delta_rule_flops
from kernels.testing import delta_inputs, dplr_inputs, rel_err

SHAPES = [  # (B, T, H, K, V): odd lengths; dims that are not whole vectors; V over 64 fp64 lanes (two column groups)
    pytest.param((2, 37, 3, 8, 5), id="B2-T37-H3-K8-V5"),
    pytest.param((1, 130, 2, 32, 32), id="B1-T130-H2-K32-V32"),
    pytest.param((2, 90, 1, 70, 33), id="B2-T90-H1-K70-V33"),
    pytest.param((1, 20, 1, 6, 40), id="B1-T20-H1-K6-V40"),
    pytest.param((1, 1, 1, 4, 4), id="B1-T1-H1-K4-V4"),
]
KERNELS = [  # (op, backend)
    pytest.param("delta_rule", "fused_chunk", id="delta-fused_chunk"),
    pytest.param("delta_rule", "fused_recurrent", id="delta-fused_recurrent"),
    pytest.param("state_evolution", "fused_recurrent", id="dplr-fused_recurrent"),
]
CHUNKS = (16, 48, 64, 100)
REPO = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.skipif(not fused_cpu.available()[0], reason=fused_cpu.available()[1])


def _inputs(op, *shape, **kwargs):
    return (delta_inputs if op == "delta_rule" else dplr_inputs)(*shape, **kwargs)


def _run(op, inputs, backend, **kwargs):
    return (delta_rule if op == "delta_rule" else state_evolution)(*inputs, backend=backend, **kwargs)


@pytest.mark.parametrize("op,backend", KERNELS)
@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("with_state", [False, True], ids=["h0=0", "h0"])
def test_fp64_outputs_and_states_equal_the_loop(op, backend, shape, with_state):
    batch, seq_len, heads, dk, dv = shape
    inputs = _inputs(op, batch, seq_len, heads, dk, dv)
    h0 = torch.randn(batch, heads, dk, dv, dtype=torch.float64) if with_state else None
    ref, s_ref = _run(op, inputs, "naive", initial_state=h0, output_final_state=True)
    for chunk_size in CHUNKS if backend == "fused_chunk" else (64,):
        o, state = _run(op, inputs, backend, initial_state=h0, output_final_state=True, chunk_size=chunk_size)
        assert o.dtype == state.dtype == torch.float64
        assert rel_err(o, ref) < 1e-12 and rel_err(state, s_ref) < 1e-12, f"chunk_size={chunk_size}"


def _loss_grads(op, inputs, h0, backend, chunk_size):
    o, state = _run(op, inputs, backend, initial_state=h0, output_final_state=True, chunk_size=chunk_size)
    gen = torch.Generator().manual_seed(1)
    loss = (o.double() * torch.randn(o.shape, generator=gen, dtype=torch.float64)).sum()
    loss = loss + (state.double() * torch.randn(state.shape, generator=gen, dtype=torch.float64)).sum()
    return [o, state, *torch.autograd.grad(loss, [*inputs, h0])]


GRAD_SHAPES = [  # K = 20: three fp64 row blocks of the transposing sum, the last partial; V = 40: two column groups
    pytest.param((2, 45, 2, 8, 6), id="B2-T45-H2-K8-V6"),
    pytest.param((1, 70, 1, 20, 40), id="B1-T70-H1-K20-V40"),
]


@pytest.mark.parametrize("op,backend", KERNELS)
@pytest.mark.parametrize("shape", GRAD_SHAPES)
def test_gradients_of_every_input_equal_the_loop(op, backend, shape):
    # the backward kernel (csrc/recurrent_backward_cpu.cpp) against autograd through the loop; chunk 16: several
    # checkpoints and a partial last chunk
    batch, seq_len, heads, dk, dv = shape
    inputs = _inputs(op, batch, seq_len, heads, dk, dv, requires_grad=True)
    h0 = torch.randn(batch, heads, dk, dv, dtype=torch.float64, requires_grad=True)
    expected = _loss_grads(op, inputs, h0, "naive", 16)
    for i, (x, ref) in enumerate(zip(_loss_grads(op, inputs, h0, backend, 16), expected, strict=True)):
        assert x.dtype == ref.dtype
        assert rel_err(x, ref, floor=1.0) < 1e-10, f"output {i} (o, state, then the inputs' gradients, h0 last)"


@pytest.mark.parametrize("op,backend", KERNELS)
def test_fp32_gradients_as_accurate_as_the_fp32_loop(op, backend):
    # fp32 gradients (16-lane vectors, four rounds of the transposing sum) within 10x the fp32 loop's own error
    torch.manual_seed(4)
    inputs = _inputs(op, 1, 100, 2, 24, 20)
    h0 = torch.randn(1, 2, 24, 20, dtype=torch.float64)
    leaves64 = [x.clone().requires_grad_() for x in [*inputs, h0]]
    truth = _loss_grads(op, leaves64[:-1], leaves64[-1], "naive", 32)
    errors = {}
    for name in ("naive", backend):
        leaves = [x.float().requires_grad_() for x in [*inputs, h0]]
        got = _loss_grads(op, leaves[:-1], leaves[-1], name, 32)
        errors[name] = [rel_err(x, ref, floor=1.0) for x, ref in zip(got, truth, strict=True)]
    for i, (fused, loop) in enumerate(zip(errors[backend], errors["naive"], strict=True)):
        assert fused < 10 * max(loop, 1e-7), f"output {i}: {fused:.1e} against the loop's {loop:.1e}"


@pytest.mark.parametrize("op,backend", KERNELS)
def test_gradients_without_final_state_or_initial_state(op, backend):
    inputs = _inputs(op, 1, 20, 2, 4, 4, requires_grad=True)
    inputs[2] = inputs[2].detach()  # v needs no gradient
    wanted = [x for x in inputs if x.requires_grad]
    o, state = _run(op, inputs, backend)
    assert state is None
    o_ref, _ = _run(op, inputs, "naive")
    got = torch.autograd.grad(o.square().sum(), wanted)
    for x, ref in zip(got, torch.autograd.grad(o_ref.square().sum(), wanted), strict=True):
        assert rel_err(x, ref) < 1e-10


@pytest.mark.parametrize("op,backend", KERNELS)
def test_fp32_as_accurate_as_the_fp32_loop(op, backend):
    # same bound as the chunked backend's fp32 test (tests/kernels/test_chunk.py): 10x the fp32 loop's own error
    torch.manual_seed(3)
    inputs = _inputs(op, 2, 200, 2, 32, 32)
    h0 = torch.randn(2, 2, 32, 32, dtype=torch.float64)
    truth, s_truth = _run(op, inputs, "naive", initial_state=h0, output_final_state=True)
    inputs32 = [x.float() for x in inputs]
    loop, s_loop = _run(op, inputs32, "naive", initial_state=h0.float(), output_final_state=True)
    fused, s_fused = _run(op, inputs32, backend, initial_state=h0.float(), output_final_state=True)
    assert fused.dtype == s_fused.dtype == torch.float32
    loop_err = max(rel_err(loop, truth), rel_err(s_loop, s_truth), 1e-7)
    assert rel_err(fused, truth) < 10 * loop_err and rel_err(s_fused, s_truth) < 10 * loop_err


@pytest.mark.parametrize("op,backend", KERNELS)
def test_strided_inputs_are_read_in_place(op, backend):
    # [B, H, T, D] memory seen as [B, T, H, D], a sliced last input and a copied negative-stride input: same result
    inputs = _inputs(op, 2, 40, 3, 8, 6)
    ref, _ = _run(op, inputs, "naive")
    strided = [x.transpose(1, 2).contiguous().transpose(1, 2) for x in inputs[:3]]
    strided[1] = inputs[1].flip(-1).contiguous().flip(-1)
    last = torch.stack([inputs[-1], inputs[-1]], dim=-1)[..., 0]
    assert not strided[0].is_contiguous() and not last.is_contiguous()
    o, _ = _run(op, [*strided, *inputs[3:-1], last], backend)
    assert rel_err(o, ref) < 1e-12


@pytest.mark.parametrize("op,backend", KERNELS)
def test_thread_count_does_not_change_a_bit(op, backend, one_thread):
    # one sequence (and column group) per thread, in a fixed order: bitwise the same results at any thread count
    inputs = [x.float() for x in _inputs(op, 3, 70, 2, 16, 16)]
    single, _ = _run(op, inputs, backend)
    torch.set_num_threads(2)
    assert torch.equal(_run(op, inputs, backend)[0], single)


def test_executed_flop_count_by_hand():
    # per chunk of 64 at K = V = 32 (16 fp32 lanes): the 16 row blocks reach 16, 16, 16, 16, 32, ... 64 columns, so
    # A and P take 2 * 4 * 4 * (16 + 32 + 48 + 64) * 32; the solve 4 * 64 * (0 + 4 + ... + 60) + 16 * 6 * 64;
    # U - W S, Q S and K^T U 64 * 32 * 32 each; P U 4 * 32 * (4 + 8 + ... + 64); in multiply-adds
    per_chunk = 2 * 4 * 4 * 160 * 32 + (4 * 64 * 480 + 16 * 6 * 64) + 3 * 64 * 32 * 32 + 4 * 32 * 544
    assert fused_cpu.fused_chunk_flops(batch=4, heads=4, seq_len=4096, dk=32, dv=32) == 2 * per_chunk * 16 * 64
    assert fused_cpu.fused_chunk_flops(batch=1, heads=1, seq_len=64, dk=32, dv=32) < delta_rule_flops(
        batch=1, heads=1, seq_len=64, dk=32, dv=32
    )


@pytest.fixture
def rebuild(monkeypatch):
    """A `monkeypatch` after which load_library builds or loads afresh (its cache of the library is cleared), and
    which restores the environment, then clears that cache again, when the test ends."""
    fused_cpu.load_library.cache_clear()
    yield monkeypatch
    monkeypatch.undo()
    fused_cpu.load_library.cache_clear()


def test_no_compiler_falls_back_to_chunk_and_says_why(rebuild):
    rebuild.setenv("CXX", "no-such-compiler-xyz")
    ok, reason = fused_cpu.available()
    assert not ok and "no-such-compiler-xyz" in reason
    inputs = dplr_inputs(1, 10, 1, 4, 4)
    assert torch.equal(state_evolution(*inputs)[0], state_evolution(*inputs, backend="chunk")[0])
    with pytest.raises(fused_cpu.KernelUnavailable, match="no C\\+\\+ compiler"):
        state_evolution(*inputs, backend="fused_recurrent")


def test_build_goes_to_the_cache_directory(rebuild, tmp_path):
    rebuild.setenv("REPRO_KERNEL_CACHE", str(tmp_path))
    inputs = delta_inputs(1, 5, 1, 4, 4)
    o, _ = delta_rule(*inputs, backend="fused_chunk")
    assert rel_err(o, delta_rule(*inputs, backend="naive")[0]) < 1e-12
    assert len(list(tmp_path.glob("fused_cpu-*.so"))) == 1


def test_flags_the_compiler_refuses_are_dropped_in_turn(rebuild, tmp_path):
    # as for a compiler that cannot target the host CPU: the build falls back to the next set of optional flags
    rebuild.setenv("REPRO_KERNEL_CACHE", str(tmp_path))
    rebuild.setattr(fused_cpu, "OPTIONAL_FLAGS", [["-fno-such-option-xyz"], ["-march=native"]])
    inputs = dplr_inputs(1, 30, 2, 8, 8)
    o, _ = state_evolution(*inputs, backend="fused_recurrent")
    assert rel_err(o, state_evolution(*inputs, backend="naive")[0]) < 1e-12
    rebuild.setattr(fused_cpu, "OPTIONAL_FLAGS", [["-fno-such-option-xyz"]])
    rebuild.setenv("CXXFLAGS", "-DANOTHER_BUILD")  # a new cache key, so a new build, which fails
    fused_cpu.load_library.cache_clear()
    ok, reason = fused_cpu.available()
    assert not ok and "-fno-such-option-xyz" in reason


def test_unwritable_cache_says_where(rebuild, tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    rebuild.setenv("REPRO_KERNEL_CACHE", str(blocker / "cache"))  # a directory below a file cannot exist
    ok, reason = fused_cpu.available()
    assert not ok and "REPRO_KERNEL_CACHE" in reason and str(blocker) in reason


def test_cuda_tensors_are_refused():
    with pytest.raises(ValueError, match="for CPU tensors"):
        resolve_backend("fused_recurrent", torch.device("cuda"))


def test_a_forked_worker_can_run_the_kernels_again():
    # as a DataLoader worker: forked after the parent ran the kernels (OpenMP pools exist), then one torch thread, as
    # DataLoader sets (torch's own pool cannot cross a fork: torch ops hang there with two)
    script = f"""
import os, sys
sys.path.insert(0, {str(REPO)!r})
import torch
from kernels import delta_rule, state_evolution
from kernels.testing import delta_inputs, dplr_inputs
torch.set_num_threads(2)
dplr, delta = dplr_inputs(4, 300, 2, 16, 16), delta_inputs(4, 300, 2, 16, 16)
before = state_evolution(*dplr, backend="fused_recurrent")[0], delta_rule(*delta, backend="fused_chunk")[0]
pid = os.fork()
if pid == 0:
    torch.set_num_threads(1)
    after = state_evolution(*dplr, backend="fused_recurrent")[0], delta_rule(*delta, backend="fused_chunk")[0]
    os._exit(0 if all(torch.equal(x, y) for x, y in zip(before, after)) else 3)
print(os.waitpid(pid, 0)[1])
"""
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.split()[-1] == "0"  # the child's exit status: it finished and agreed with the parent
