"""Thin wrappers over fla's Triton kernels (CUDA only; fla is imported lazily so CPU machines never touch Triton).

Layouts already agree: fla takes `[B, T, H, K]` tokens and a `[B, H, K, V]` state, which is the layout of this
package (the K x V transpose of the paper's V x K state is done once, by convention, not per call). What differs:
- `chunk_delta_rule` rejects fp32: fp32 inputs run in bf16 and the output is cast back (bf16 accuracy).
- `chunk_dplr_delta_rule` runs fp32 (fla only warns); its chunk size is fla's own choice (16 without a bound on
  gk, which is all this signature knows), so `chunk_size` applies to the delta rule only.
- fp64 is not supported by the Triton kernels.
"""

import warnings

import torch

FLA_DELTA_CHUNK_SIZES = (16, 32, 64)


def _check_device_dtype(q: torch.Tensor) -> None:
    if q.device.type != "cuda":
        raise ValueError(f"the fla backend needs CUDA tensors, got device {q.device}")
    if q.dtype == torch.float64:
        raise ValueError("the fla backend has no fp64 kernels; use backend='chunk' or 'naive' for fp64")


def fla_state_evolution(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    a: torch.Tensor,
    b: torch.Tensor,
    gk: torch.Tensor,
    *,
    scale: float,
    initial_state: torch.Tensor | None = None,
    output_final_state: bool = False,
    chunk_size: int = 64,
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """`fla.ops.generalized_delta_rule.chunk_dplr_delta_rule` (what `chunk_rwkv7` wraps)."""
    _check_device_dtype(q)
    from fla.ops.generalized_delta_rule import chunk_dplr_delta_rule

    # all token inputs in q's dtype, as fla's RWKV-7 layer passes them (the kernel accumulates gk's cumsum in fp32)
    k, v, a, b, gk = (x.to(q.dtype) for x in (k, v, a, b, gk))
    with warnings.catch_warnings():
        # fla warns that fp32 "may" be unsupported on some platforms; fp32 is checked against the oracle in the tests
        warnings.filterwarnings("ignore", message=".*does not support float32.*", category=RuntimeWarning)
        return chunk_dplr_delta_rule(
            q,
            k,
            v,
            a,
            b,
            gk,
            scale=scale,
            initial_state=None if initial_state is None else initial_state.float(),
            output_final_state=output_final_state,
        )


def fla_delta_rule(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    beta: torch.Tensor,
    *,
    scale: float,
    initial_state: torch.Tensor | None = None,
    output_final_state: bool = False,
    chunk_size: int = 64,
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """`fla.ops.delta_rule.chunk_delta_rule`; fp32 inputs run in bf16 (the kernel rejects fp32)."""
    _check_device_dtype(q)
    if chunk_size not in FLA_DELTA_CHUNK_SIZES:
        raise ValueError(f"fla's chunk_delta_rule supports chunk_size in {FLA_DELTA_CHUNK_SIZES}, got {chunk_size}")
    from fla.ops.delta_rule import chunk_delta_rule

    dtype = torch.bfloat16 if q.dtype == torch.float32 else q.dtype
    o, state = chunk_delta_rule(
        q.to(dtype),
        k.to(dtype),
        v.to(dtype),
        beta.to(dtype),
        scale=scale,
        initial_state=None if initial_state is None else initial_state.float(),
        output_final_state=output_final_state,
        chunk_size=chunk_size,
    )
    return o.to(q.dtype), state
