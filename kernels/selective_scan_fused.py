"""Backend `fused` of the selective scan: the C++ kernels of csrc/selective_scan_cpu.cpp as one autograd function.

The recurrence of kernels/selective_scan.py runs token by token, one OpenMP thread per (batch, channel) sequence with
its state in registers. On a CPU the chunked PyTorch form (`chunk`) spends its time moving [b, d, L, n] intermediates
through memory; the recurrence touches each input once. The kernels are built with the others of kernels/fused_cpu.py
(same compiler, cache and `available()`).

Gradients: when autograd records the call, the forward also keeps the state entering every chunk of `chunk_size`
tokens ([b, d, L / chunk_size, n], n / chunk_size of the input's size); the backward kernel recomputes each chunk's
states from them and sweeps it in reverse, returning the gradients of u, delta, A, B, C, D and delta_bias.
"""

import ctypes

import torch
import torch.nn.functional as F
from torch.autograd.function import once_differentiable

from kernels.fused_cpu import _entry
from kernels.naive import compute_dtype
from kernels.selective_scan import _check_shapes

# tasks per thread in the backward: a (batch, group) pair with few channel blocks per thread would leave threads idle
BLOCKS_PER_THREAD = 4


def state_lanes(state: int, dtype: torch.dtype) -> int:
    """Lanes of the kernel's state vectors: 32 bytes for fp32 states of at most 8 entries (MambaIRv2-light's 8 would
    leave half of a 64-byte vector empty), else 64 bytes."""
    if dtype == torch.float32:
        return 8 if state <= 8 else 16
    return 8


def _pointers(tensors) -> ctypes.Array:
    return (ctypes.c_void_p * len(tensors))(*(None if x is None else x.data_ptr() for x in tensors))


def _grouped(m: torch.Tensor) -> torch.Tensor:
    """B or C as [b, g, n, L] ([b, n, L] is one group)."""
    return m.unsqueeze(1) if m.dim() == 3 else m


def _token_rows(m: torch.Tensor, dtype: torch.dtype, padded: int) -> torch.Tensor:
    """B or C [b, g, n, L] as the kernels read it: [b, g, L, padded], a token's projection one zero-padded row."""
    return F.pad(m.detach().to(dtype).transpose(-1, -2), (0, padded - m.shape[2])).contiguous()


def _optional(x: torch.Tensor | None, dtype: torch.dtype) -> torch.Tensor | None:
    return None if x is None else x.detach().to(dtype).contiguous()


class _FusedSelectiveScan(torch.autograd.Function):
    @staticmethod
    def forward(ctx, settings, u, delta, A, B, C, D, delta_bias):
        if u.device.type != "cpu":
            raise ValueError(f"the fused selective scan takes CPU tensors, got device {u.device}")
        dtype = compute_dtype(u.dtype)
        b, d, L, n, g = _check_shapes(u, delta, A, _grouped(B), _grouped(C))
        lanes = state_lanes(n, dtype)
        padded = -(-n // lanes) * lanes
        chunk = max(lanes, settings["chunk_size"] // lanes * lanes)  # a whole number of the kernels' token tiles
        inputs = [u.detach().to(dtype).contiguous(), delta.detach().to(dtype).contiguous(),
                  F.pad(A.detach().to(dtype), (0, padded - n)).contiguous(), _token_rows(_grouped(B), dtype, padded),
                  _token_rows(_grouped(C), dtype, padded), _optional(D, dtype), _optional(delta_bias, dtype)]
        sizes = [b, d, g, L, padded, lanes, chunk, 1]
        y = torch.empty(b, d, L, dtype=dtype)
        checkpoints = torch.empty(b, d, -(-L // chunk), padded, dtype=dtype) if settings["keep"] else None
        if y.numel():
            status = _entry("selective_scan_forward", dtype)(
                (ctypes.c_int64 * 8)(*sizes), _pointers(inputs), int(settings["delta_softplus"]), y.data_ptr(),
                None if checkpoints is None else checkpoints.data_ptr(), torch.get_num_threads())
            if status:
                raise RuntimeError(f"selective_scan_forward rejected sizes {sizes}")
        if settings["keep"]:
            ctx.save_for_backward(*inputs, checkpoints)
            ctx.sizes, ctx.delta_softplus = sizes, settings["delta_softplus"]
            ctx.originals = [(None, None) if x is None else (x.dtype, x.shape) for x in (u, delta, A, B, C, D, delta_bias)]
        return y.to(u.dtype)

    @staticmethod
    @once_differentiable  # the kernel's gradients carry no graph: a second derivative must fail, not come out zero
    def backward(ctx, grad_y):
        *inputs, checkpoints = ctx.saved_tensors
        u, D, bias = inputs[0], inputs[5], inputs[6]
        b, d, g, L, padded = ctx.sizes[:5]
        n, dtype = ctx.originals[2][1][1], u.dtype
        blocks = max(1, min(d // g, -(-BLOCKS_PER_THREAD * torch.get_num_threads() // max(1, b * g))))
        sizes = [*ctx.sizes[:7], blocks]
        grad_y = grad_y.detach().to(dtype).contiguous()
        # dB and dC are added into (one [L, padded] slice per block of channels); the small ones stay zero if L = 0
        grads = [torch.empty_like(u), torch.empty_like(u), torch.zeros(b, d, padded, dtype=dtype),
                 torch.zeros(b, g, blocks, L, padded, dtype=dtype), torch.zeros(b, g, blocks, L, padded, dtype=dtype),
                 None if D is None else torch.zeros(b, d, dtype=dtype),
                 None if bias is None else torch.zeros(b, d, dtype=dtype)]
        if u.numel():
            status = _entry("selective_scan_backward", dtype)(
                (ctypes.c_int64 * 8)(*sizes), _pointers(inputs), int(ctx.delta_softplus), checkpoints.data_ptr(),
                grad_y.data_ptr(), _pointers(grads), torch.get_num_threads())
            if status:
                raise RuntimeError(f"selective_scan_backward rejected sizes {sizes}")
        du, ddelta, dA, dB, dC, dD, dbias = grads
        dB, dC = (x.sum(2)[..., :n].transpose(-1, -2) for x in (dB, dC))  # [b, g, n, L], summed over the blocks
        reduced = [du, ddelta, dA.sum(0)[:, :n], dB, dC, None if dD is None else dD.sum(0),
                   None if dbias is None else dbias.sum(0)]
        return None, *(None if x is None else x.reshape(shape).to(dt) for x, (dt, shape) in zip(reduced, ctx.originals))


def fused_selective_scan(u: torch.Tensor, delta: torch.Tensor, A: torch.Tensor, B: torch.Tensor, C: torch.Tensor,
                         D: torch.Tensor | None = None, *, delta_bias: torch.Tensor | None = None,
                         delta_softplus: bool = False, chunk_size: int = 64) -> torch.Tensor:
    """The selective scan by the fused C++ kernels (CPU tensors). Shapes as in ``kernels.selective_scan``.

    Args:
        chunk_size: tokens between the states the forward keeps for the backward (rounded down to a multiple of the
            kernels' 8 or 16 token tiles). Default: ``64``.
    """
    keep = torch.is_grad_enabled() and any(x is not None and x.requires_grad
                                           for x in (u, delta, A, B, C, D, delta_bias))
    settings = {"delta_softplus": bool(delta_softplus), "chunk_size": int(chunk_size), "keep": keep}
    return _FusedSelectiveScan.apply(settings, u, delta, A, B, C, D, delta_bias)
