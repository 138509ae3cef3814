"""fla's Triton kernels against the naive loop (CUDA only; skipped with a reason elsewhere)."""

import pytest
import torch

from kernels import delta_rule, state_evolution
from kernels.testing import delta_inputs, dplr_inputs, rel_err

pytestmark = pytest.mark.gpu

# The reference is the naive loop in fp32 on the very inputs fla sees (rounded to the dtype first), so only fla's
# own arithmetic is measured: fp32 dot products may run in TF32 (10-bit mantissa, ~1e-3), bf16 ones keep 8 bits
# (~4e-3 per product, a few of them in a row); chunk_delta_rule runs fp32 inputs in bf16.
TOLERANCE = {"dplr": {torch.float32: 5e-3, torch.bfloat16: 2e-2}, "delta": {torch.float32: 2e-2, torch.bfloat16: 2e-2}}


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
@pytest.mark.parametrize("with_state", [False, True], ids=["h0=0", "h0"])
def test_fla_delta_rule_matches_naive(dtype, with_state):
    inputs = [x.cuda() for x in delta_inputs(2, 300, 4, 64, 64, dtype=torch.float32)]
    h0 = torch.randn(2, 4, 64, 64, device="cuda") if with_state else None
    inputs = [x.to(dtype) for x in inputs]
    ref, s_ref = delta_rule(*(x.float() for x in inputs), initial_state=h0, output_final_state=True, backend="naive")
    o, s = delta_rule(*inputs, initial_state=h0, output_final_state=True, backend="fla")
    assert o.dtype == dtype
    tol = TOLERANCE["delta"][dtype]
    assert rel_err(o, ref) < tol and rel_err(s, s_ref) < tol


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
@pytest.mark.parametrize("with_state", [False, True], ids=["h0=0", "h0"])
def test_fla_state_evolution_matches_naive(dtype, with_state):
    inputs = [x.cuda() for x in dplr_inputs(2, 300, 4, 64, 64, dtype=torch.float32, decay=0.6065)]
    h0 = torch.randn(2, 4, 64, 64, device="cuda") if with_state else None
    inputs = [x.to(dtype) for x in inputs]
    ref, s_ref = state_evolution(*(x.float() for x in inputs), initial_state=h0, output_final_state=True, backend="naive")
    o, s = state_evolution(*inputs, initial_state=h0, output_final_state=True, backend="fla")
    assert o.dtype == dtype
    tol = TOLERANCE["dplr"][dtype]
    assert rel_err(o, ref) < tol and rel_err(s, s_ref) < tol


def test_fla_gradients_match_chunk():
    inputs = [x.cuda().requires_grad_() for x in dplr_inputs(1, 130, 2, 32, 32, dtype=torch.float32, decay=0.6065)]
    grads = {}
    for backend in ("chunk", "fla"):
        o, _ = state_evolution(*inputs, backend=backend)
        grads[backend] = torch.autograd.grad(o.square().sum(), inputs)
    for g, ref in zip(grads["fla"], grads["chunk"]):
        assert rel_err(g, ref) < 1e-2
