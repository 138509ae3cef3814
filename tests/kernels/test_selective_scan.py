"""Chunked selective scan vs the step-by-step recurrence (mamba_ssm's selective_scan_ref semantics), and its dispatch."""

import pytest
import torch

from kernels import selective_scan
from kernels.api import resolve_backend
from kernels.selective_scan import chunk_selective_scan, naive_selective_scan


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
    assert resolve_backend("auto", torch.device("cpu"), op="selective_scan") == "chunk"
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
