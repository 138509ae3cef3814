"""Chunked and fused selective scans vs the step-by-step recurrence (mamba_ssm's selective_scan_ref semantics), and
their dispatch."""

import pytest
import torch
import torch.nn.functional as F
from torch.utils.flop_counter import FlopCounterMode

import kernels.flops as kf
from kernels import fused_cpu
from kernels.api import resolve_backend, selective_scan
from kernels.selective_scan import chunk_selective_scan, naive_selective_scan
from kernels.selective_scan_fused import fused_selective_scan

FUSED, WHY_NOT_FUSED = fused_cpu.available()
needs_fused = pytest.mark.skipif(not FUSED, reason=f"no fused C++ kernels here: {WHY_NOT_FUSED}")


def make_inputs(*, b=2, d=6, L=37, n=5, g=2, dtype=torch.float32, decay=1.0, seed=0):
    gen = torch.Generator().manual_seed(seed)

    def r(*shape):
        return torch.randn(*shape, generator=gen, dtype=dtype)

    A = -torch.rand(d, n, generator=gen, dtype=dtype) * 4 * decay - 0.1
    return {"u": r(b, d, L), "delta": r(b, d, L) * 0.5 - 1.0, "A": A, "B": r(b, g, n, L), "C": r(b, g, n, L), "D": r(d),
            "delta_bias": r(d) * 0.3}


def run(fn, inp, **kw):
    args = {k: v.clone().requires_grad_(True) for k, v in inp.items()}
    y = fn(args["u"], args["delta"], args["A"], args["B"], args["C"], args["D"], delta_bias=args["delta_bias"],
           delta_softplus=True, **kw)
    (y * torch.linspace(-1, 1, y.shape[-1], dtype=y.dtype)).sum().backward()
    return y.detach(), {k: v.grad for k, v in args.items()}


@pytest.mark.parametrize("L", [1, 17, 100])
@pytest.mark.parametrize("chunk_size", [1, 8, 64])
@pytest.mark.parametrize("dtype,tol", [(torch.float32, 1e-5), (torch.float64, 1e-11)], ids=["fp32", "fp64"])
def test_chunked_matches_reference(L, chunk_size, dtype, tol):
    inp = make_inputs(L=L, dtype=dtype)
    y_ref, g_ref = run(naive_selective_scan, inp)
    y, g = run(chunk_selective_scan, inp, chunk_size=chunk_size)
    assert y.dtype == dtype
    torch.testing.assert_close(y, y_ref, rtol=tol, atol=tol)
    for k in g_ref:
        scale = g_ref[k].abs().max().clamp(min=1)
        torch.testing.assert_close(g[k] / scale, g_ref[k] / scale, rtol=tol, atol=tol, msg=f"grad of {k}")


@pytest.mark.parametrize("decay,ramp,chunk_size,max_elements", [(25.0, (2.0, 2.0), 64, None), (4.0, (-5.0, 2.0), 16, 960)],
                         ids=["extreme", "growing"])
def test_strong_decay_stays_exact_and_finite(decay, ramp, chunk_size, max_elements):
    # Δ·|A| up to ~100 per token: a fixed-length cumsum would overflow exp(-S), so the chunk length must shrink (to 1 in
    # "extreme"; in "growing" the decay grows along the sequence and later 16-token segments need 4, then 1).
    inp = make_inputs(L=70, decay=decay)
    inp["delta"] = inp["delta"] + torch.linspace(*ramp, 70)
    y_ref, g_ref = run(naive_selective_scan, inp)
    y, g = run(chunk_selective_scan, inp, chunk_size=chunk_size, max_elements=max_elements)
    assert torch.isfinite(y).all() and all(torch.isfinite(v).all() for v in g.values())
    torch.testing.assert_close(y, y_ref, rtol=1e-5, atol=1e-5)
    for k in g_ref:
        torch.testing.assert_close(g[k], g_ref[k], rtol=1e-4, atol=1e-5, msg=f"grad of {k}")


def test_memory_segments_and_checkpointing_match():
    # max_elements forces several segments (state carried across them) and, under autograd, checkpointing.
    inp = make_inputs(L=90)
    y_ref, g_ref = run(naive_selective_scan, inp)
    for ckpt in (True, False):
        y, g = run(chunk_selective_scan, inp, chunk_size=8, max_elements=2 * 6 * 5 * 16, use_checkpoint=ckpt)
        torch.testing.assert_close(y, y_ref, rtol=1e-5, atol=1e-5)
        for k in g_ref:
            torch.testing.assert_close(g[k], g_ref[k], rtol=1e-5, atol=1e-5)


def test_ungrouped_bc_and_dispatch():
    inp = make_inputs(g=1, L=20)
    B, C = inp["B"][:, 0], inp["C"][:, 0]  # [b, n, L] means one group
    args = (inp["u"], inp["delta"], inp["A"])
    y = selective_scan(*args, B, C, inp["D"], delta_bias=inp["delta_bias"], delta_softplus=True)
    y_ref = selective_scan(*args, B, C, inp["D"], delta_bias=inp["delta_bias"], delta_softplus=True, backend="naive")
    torch.testing.assert_close(y, y_ref, rtol=1e-5, atol=1e-5)
    assert resolve_backend("auto", torch.device("cpu"), op="selective_scan") == ("fused" if FUSED else "chunk")
    with pytest.raises(ValueError, match="needs CUDA tensors"):
        selective_scan(*args, B, C, backend="cuda")
    with pytest.raises(ValueError, match="'fla' does not implement selective_scan"):
        selective_scan(*args, B, C, backend="fla")


def test_bad_shapes_raise():
    inp = make_inputs()
    with pytest.raises(ValueError, match="A must be"):
        selective_scan(inp["u"], inp["delta"], inp["A"][:-1], inp["B"], inp["C"])
    with pytest.raises(ValueError, match="g dividing"):
        selective_scan(inp["u"], inp["delta"], inp["A"], inp["B"].repeat(1, 2, 1, 1)[:, :4], inp["C"][:, :1])
    with pytest.raises(ValueError, match="power of two"):
        chunk_selective_scan(inp["u"], inp["delta"], inp["A"], inp["B"], inp["C"], chunk_size=12)


# ---------------------------------------------------------------------------------------------------------------------
# The fused C++ kernels (backend "fused")


def scan_inputs(*, b=2, d=6, L=37, n=5, g=2, grouped=True, skip=True, bias=True, softplus=True,
                dtype=torch.float64, seed=0):
    """Inputs of one call as a dict of tensors (None where absent); B and C are [b, n, L] when not ``grouped``
    (g must then be 1). Without softplus, delta is made positive (the caller passes Δ itself)."""
    inp = make_inputs(b=b, d=d, L=L, n=n, g=g, dtype=dtype, seed=seed)
    if not softplus:
        inp["delta"] = F.softplus(inp["delta"])
    if not grouped:
        inp["B"], inp["C"] = inp["B"][:, 0], inp["C"][:, 0]
    inp["D"] = inp["D"] if skip else None
    inp["delta_bias"] = inp["delta_bias"] if bias else None
    return inp


def outputs_and_grads(fn, inp, *, softplus=True, **kw):
    """y and the gradients of a weighted sum of y with respect to every input that is not None."""
    args = {k: None if v is None else v.clone().requires_grad_(True) for k, v in inp.items()}
    y = fn(args["u"], args["delta"], args["A"], args["B"], args["C"], args["D"], delta_bias=args["delta_bias"],
           delta_softplus=softplus, **kw)
    weights = torch.randn(y.shape, generator=torch.Generator().manual_seed(1), dtype=y.dtype)
    (y * weights).sum().backward()
    return y.detach(), {k: v.grad for k, v in args.items() if v is not None}


def assert_close_relative(got, ref, tol, what=""):
    """Every tensor within ``tol`` of the reference, relative to the reference's largest entry."""
    scale = ref.abs().max().clamp(min=1e-30)
    torch.testing.assert_close(got / scale, ref / scale, rtol=tol, atol=tol, msg=lambda m: f"{what}: {m}")


FP64_CASES = [  # (b, d, g, n, L, grouped): padded states, several state slices (n = 40: 5 fp64 vectors), odd L
    pytest.param(2, 6, 2, 5, 37, True, id="g2-n5-L37"),
    pytest.param(1, 4, 1, 16, 1, False, id="ungrouped-n16-L1"),
    pytest.param(2, 6, 3, 40, 70, True, id="g3-n40-L70"),
    pytest.param(3, 8, 1, 8, 100, True, id="g1-n8-L100"),
    pytest.param(1, 3, 1, 3, 9, False, id="ungrouped-n3-L9"),
]


@needs_fused
@pytest.mark.parametrize("b,d,g,n,L,grouped", FP64_CASES)
@pytest.mark.parametrize("softplus", [True, False], ids=["softplus", "no-softplus"])
@pytest.mark.parametrize("chunk_size", [8, 64])
def test_fused_fp64_equals_the_loop(b, d, g, n, L, grouped, softplus, chunk_size):
    inp = scan_inputs(b=b, d=d, L=L, n=n, g=g, grouped=grouped, softplus=softplus)
    y_ref, g_ref = outputs_and_grads(naive_selective_scan, inp, softplus=softplus)
    y, grads = outputs_and_grads(fused_selective_scan, inp, softplus=softplus, chunk_size=chunk_size)
    assert y.dtype == torch.float64 and grads.keys() == g_ref.keys()
    assert_close_relative(y, y_ref, 1e-10, "y")
    for k in g_ref:
        assert grads[k].shape == g_ref[k].shape, k
        assert_close_relative(grads[k], g_ref[k], 1e-10, f"grad of {k}")


@needs_fused
@pytest.mark.parametrize("skip,bias", [(False, False), (True, False), (False, True)], ids=["neither", "D", "bias"])
def test_fused_without_skip_or_bias(skip, bias):
    inp = scan_inputs(L=29, n=6, skip=skip, bias=bias)
    y_ref, g_ref = outputs_and_grads(naive_selective_scan, inp)
    y, grads = outputs_and_grads(fused_selective_scan, inp)
    assert grads.keys() == g_ref.keys()
    assert_close_relative(y, y_ref, 1e-10, "y")
    for k in g_ref:
        assert_close_relative(grads[k], g_ref[k], 1e-10, f"grad of {k}")


@needs_fused
@pytest.mark.parametrize("n,L,g", [(8, 100, 2), (10, 77, 2), (16, 130, 4), (70, 33, 1)],
                         ids=["n8-8lanes", "n10-16lanes", "n16-g4", "n70-slices"])
def test_fused_fp32_matches_chunk_within_rounding(n, L, g):
    # fp32: 8-lane states for n <= 8, 16-lane ones above, slices of 4 vectors for n = 70; the polynomial exp,
    # softplus and sigmoid of csrc/vector_math.h are only used here (fp64 calls libm)
    inp = scan_inputs(b=2, d=8, L=L, n=n, g=g, dtype=torch.float32)
    y_chunk, g_chunk = outputs_and_grads(chunk_selective_scan, inp)
    y, grads = outputs_and_grads(fused_selective_scan, inp)
    assert y.dtype == torch.float32
    assert_close_relative(y, y_chunk, 2e-6, "y")
    for k in g_chunk:
        assert_close_relative(grads[k], g_chunk[k], 1e-5, f"grad of {k}")


@needs_fused
def test_fused_strong_decay_and_large_steps_stay_exact():
    # Δ·|A| up to ~100 per token (the exp underflows) and softplus inputs above its threshold of 20
    inp = scan_inputs(L=70, dtype=torch.float32)
    inp["A"] = inp["A"] * 25
    inp["delta"] = inp["delta"] + torch.linspace(-5.0, 25.0, 70)
    y_ref, g_ref = outputs_and_grads(naive_selective_scan, inp)
    y, grads = outputs_and_grads(fused_selective_scan, inp)
    assert torch.isfinite(y).all() and all(torch.isfinite(v).all() for v in grads.values())
    assert_close_relative(y, y_ref, 2e-6, "y")
    for k in g_ref:
        assert_close_relative(grads[k], g_ref[k], 1e-5, f"grad of {k}")


@needs_fused
def test_fused_inference_threads_and_partial_grads():
    inp = scan_inputs(b=1, d=6, g=1, L=45, n=7)
    y_ref, g_ref = outputs_and_grads(fused_selective_scan, inp)
    with torch.no_grad():  # no checkpoints kept, same output
        y = fused_selective_scan(inp["u"], inp["delta"], inp["A"], inp["B"], inp["C"], inp["D"],
                                 delta_bias=inp["delta_bias"], delta_softplus=True)
    torch.testing.assert_close(y, y_ref, rtol=0, atol=0)
    threads = torch.get_num_threads()
    try:  # one thread: the backward splits the 6 channels into 4 blocks (one of them empty) instead of 1
        torch.set_num_threads(1)
        _, g1 = outputs_and_grads(fused_selective_scan, inp)
    finally:
        torch.set_num_threads(threads)
    for k in g_ref:
        assert_close_relative(g1[k], g_ref[k], 1e-12, f"grad of {k}")
    u = inp["u"].clone().requires_grad_(True)  # only u needs a gradient
    fused_selective_scan(u, inp["delta"], inp["A"], inp["B"], inp["C"], inp["D"], delta_bias=inp["delta_bias"],
                         delta_softplus=True).mul(torch.randn(y.shape, generator=torch.Generator().manual_seed(1),
                                                              dtype=y.dtype)).sum().backward()
    assert_close_relative(u.grad, g_ref["u"], 1e-12, "grad of u alone")


@needs_fused
def test_fused_bf16_inputs_compute_in_fp32():
    inp = scan_inputs(L=20, n=4, dtype=torch.float32)
    low = {k: v.to(torch.bfloat16) for k, v in inp.items()}
    y, grads = outputs_and_grads(fused_selective_scan, low)
    y_ref, _ = outputs_and_grads(naive_selective_scan, {k: v.float() for k, v in low.items()})
    assert y.dtype == torch.bfloat16 and all(v.dtype == torch.bfloat16 for v in grads.values())
    torch.testing.assert_close(y.float(), y_ref, rtol=1e-2, atol=1e-2)


@needs_fused
def test_auto_picks_fused_on_cpu_and_the_flop_counter_counts_it():
    assert resolve_backend("auto", torch.device("cpu"), op="selective_scan") == "fused"
    with pytest.raises(ValueError, match="C\\+\\+ kernel for CPU tensors"):
        resolve_backend("fused", torch.device("cuda"), op="selective_scan")
    inp = scan_inputs(b=2, d=6, L=50, n=4, g=2, dtype=torch.float32)
    args = (inp["u"], inp["delta"], inp["A"], inp["B"], inp["C"], inp["D"])
    y = selective_scan(*args, delta_bias=inp["delta_bias"], delta_softplus=True)
    y_ref = selective_scan(*args, delta_bias=inp["delta_bias"], delta_softplus=True, backend="naive")
    torch.testing.assert_close(y, y_ref, rtol=1e-5, atol=1e-5)
    formula = kf.selective_scan_flops(batch=2, channels=6, seq_len=50, state=4, skip=True, bias=True)
    with FlopCounterMode(display=False) as counter, kf.count_kernels(counter) as records:
        selective_scan(*args, delta_bias=inp["delta_bias"], delta_softplus=True)
    assert counter.get_total_flops() == formula == records["selective_scan"].analytic_flops
    assert records["selective_scan"].backends == ["fused"]


def test_without_a_compiler_auto_uses_chunk(monkeypatch):
    fused_cpu.load_library.cache_clear()
    monkeypatch.setenv("CXX", "no-such-compiler-xyz")
    try:
        assert resolve_backend("auto", torch.device("cpu"), op="selective_scan") == "chunk"
        inp = scan_inputs(L=12, dtype=torch.float32)
        args = (inp["u"], inp["delta"], inp["A"], inp["B"], inp["C"])
        with pytest.raises(fused_cpu.KernelUnavailable, match="no C\\+\\+ compiler"):
            selective_scan(*args, backend="fused")
    finally:
        monkeypatch.undo()
        fused_cpu.load_library.cache_clear()
