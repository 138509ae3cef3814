"""Public entry points: argument checks, defaults and backend dispatch (one signature for every backend of an op).

Every op has the same backend vocabulary: ``naive`` (the loop, the oracle), ``chunk`` (chunked PyTorch), the fused
C++ CPU kernels, the GPU kernel of a library when installed (``fla`` Triton, mamba_ssm's ``cuda``), and ``auto``.
``KERNELS`` is the one table that says which function runs an (op, backend) pair.
Every call goes through ``kernels.flops.dispatch``: a plain call, unless a FLOP counter observes it to count the
kernels it cannot see into (``kernels.flops.count_kernels``).
"""

import importlib

import torch

from kernels.flops import dispatch

BACKENDS = ("naive", "chunk", "fused", "fused_chunk", "fused_recurrent", "fla", "cuda", "auto")
CPU_KERNELS = ("fused", "fused_chunk", "fused_recurrent")
GPU_KERNELS = ("fla", "cuda")

# (op, backend) -> "module:function". Modules are imported on first use, so CPU machines never import Triton.
KERNELS = {
    ("state_evolution", "naive"): "kernels.naive:naive_state_evolution",
    ("state_evolution", "chunk"): "kernels.chunk:chunk_state_evolution",
    ("state_evolution", "fused_recurrent"): "kernels.fused_cpu:fused_recurrent_state_evolution",
    ("state_evolution", "fla"): "kernels.fla_backend:fla_state_evolution",
    ("delta_rule", "naive"): "kernels.naive:naive_delta_rule",
    ("delta_rule", "chunk"): "kernels.chunk:chunk_delta_rule",
    ("delta_rule", "fused_chunk"): "kernels.fused_cpu:fused_chunk_delta_rule",
    ("delta_rule", "fused_recurrent"): "kernels.fused_cpu:fused_recurrent_delta_rule",
    ("delta_rule", "fla"): "kernels.fla_backend:fla_delta_rule",
    ("selective_scan", "naive"): "kernels.selective_scan:naive_selective_scan",
    ("selective_scan", "chunk"): "kernels.selective_scan:chunk_selective_scan",
    ("selective_scan", "fused"): "kernels.selective_scan_fused:fused_selective_scan",
    ("selective_scan", "cuda"): "kernels.selective_scan:cuda_selective_scan",
}


def backends_of(op: str) -> tuple[str, ...]:
    """The backends that implement ``op``, plus ``auto``."""
    return tuple(b for (o, b) in KERNELS if o == op) + ("auto",)


def _auto(op: str, device: torch.device) -> str:
    """``auto``: the GPU library on CUDA (fla for the state evolution; mamba_ssm's op for the selective scan when
    installed), on the CPU the fused recurrence where the C++ kernels build here (kernels/fused_cpu.py:
    ``fused_recurrent``, and ``fused`` for the selective scan); else the chunked PyTorch algorithm."""
    from kernels.fused_cpu import available

    if op == "selective_scan":
        from kernels.selective_scan import cuda_available

        if device.type == "cuda":
            return "cuda" if cuda_available() else "chunk"
        return "fused" if device.type == "cpu" and available()[0] else "chunk"
    if device.type == "cuda":
        return "fla"
    return "fused_recurrent" if available()[0] else "chunk"


def resolve_backend(backend: str, device: torch.device, *, op: str = "state_evolution") -> str:
    """The backend that runs ``op`` for tensors on ``device``; a clear error where it cannot."""
    if backend not in BACKENDS:
        raise ValueError(f"unknown backend {backend!r}; expected one of {BACKENDS}")
    if backend == "auto":
        return _auto(op, device)
    if backend not in backends_of(op):
        raise ValueError(f"backend {backend!r} does not implement {op}; its backends are {backends_of(op)}")
    if backend in GPU_KERNELS and device.type != "cuda":
        raise ValueError(f"backend {backend!r} runs GPU kernels and needs CUDA tensors, got device {device}")
    if backend in CPU_KERNELS and device.type != "cpu":
        raise ValueError(f"backend {backend!r} is a C++ kernel for CPU tensors, got device {device}")
    return backend


def kernel(op: str, backend: str):
    """The function that runs ``op`` with a resolved ``backend`` (see ``KERNELS``)."""
    module, name = KERNELS[op, backend].split(":")
    return getattr(importlib.import_module(module), name)


def _check_common(q, k, v, initial_state, chunk_size) -> None:
    if q.ndim != 4:
        raise ValueError(f"q must be [B, T, H, K], got shape {tuple(q.shape)}")
    if k.shape != q.shape:
        raise ValueError(f"k must have q's shape {tuple(q.shape)}, got {tuple(k.shape)}")
    if v.ndim != 4 or v.shape[:3] != q.shape[:3]:
        raise ValueError(f"v must be [B, T, H, V] with B, T, H = {tuple(q.shape[:3])}, got {tuple(v.shape)}")
    if initial_state is not None:
        expected = (q.shape[0], q.shape[2], q.shape[3], v.shape[3])
        if tuple(initial_state.shape) != expected:
            raise ValueError(f"initial_state must be [B, H, K, V] = {expected}, got {tuple(initial_state.shape)}")
    if not isinstance(chunk_size, int) or chunk_size < 1:
        raise ValueError(f"chunk_size must be a positive int, got {chunk_size!r}")


def default_scale(q: torch.Tensor, scale: float | None) -> float:
    """The query scale: `K ** -0.5` unless given (fla's default)."""
    return q.shape[-1] ** -0.5 if scale is None else float(scale)


def check_state_evolution(q, k, v, a, b, gk, *, initial_state=None, chunk_size=64) -> None:
    """The shape checks of `state_evolution` (a ValueError naming the argument)."""
    _check_common(q, k, v, initial_state, chunk_size)
    for name, x in (("a", a), ("b", b), ("gk", gk)):
        if x.shape != q.shape:
            raise ValueError(f"{name} must have q's shape {tuple(q.shape)}, got {tuple(x.shape)}")


def state_evolution(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    a: torch.Tensor,
    b: torch.Tensor,
    gk: torch.Tensor,
    *,
    scale: float | None = None,
    initial_state: torch.Tensor | None = None,
    output_final_state: bool = False,
    chunk_size: int = 64,
    backend: str = "auto",
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Generalized delta rule of eq. 5 (RWKV-7 / DPLR), with the semantics of fla's `chunk_dplr_delta_rule`.

    Per head, state `S` is K x V: `S_t = (diag(exp(gk_t)) + b_t a_t^T) S_{t-1} + k_t v_t^T`, `o_t = scale * S_t^T q_t`.
    RWKV-7 is `a = -k_hat`, `b = eta * k_hat`, `gk = log w`.

    Args:
        q, k, a, b, gk:
            `[B, T, H, K]`; `gk` is the log-decay (`<= 0` for a contracting state).
        v:
            `[B, T, H, V]`.
        scale:
            Multiplies q. Default: `K ** -0.5` (as fla; RWKV-7 layers pass 1.0).
        initial_state:
            `[B, H, K, V]`. Default: zeros.
        output_final_state:
            Also return the final state `[B, H, K, V]` (fp32, fp64 for fp64 inputs). Default: `False`.
        chunk_size:
            Chunk length of the chunked backends (and of the chunked backward of the fused ones). Default: 64.
        backend:
            `naive` (the loop), `chunk` (chunked PyTorch), `fused_recurrent` (C++ kernel for the CPU), `fla`
            (Triton, CUDA) or `auto` (fla on CUDA, else fused_recurrent where it builds, else chunk). Default: `auto`.

    Returns:
        `(o, final_state)`: o `[B, T, H, V]` in v's dtype; final_state or None.
    """
    check_state_evolution(q, k, v, a, b, gk, initial_state=initial_state, chunk_size=chunk_size)
    scale = default_scale(q, scale)
    kwargs = {"scale": scale, "initial_state": initial_state, "output_final_state": output_final_state}
    backend = resolve_backend(backend, q.device)
    if backend != "naive":
        kwargs["chunk_size"] = chunk_size
    o, state = dispatch("state_evolution", backend, kernel("state_evolution", backend), (q, k, v, a, b, gk), kwargs)
    return o.to(v.dtype), state


def delta_rule(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    beta: torch.Tensor,
    *,
    scale: float | None = None,
    initial_state: torch.Tensor | None = None,
    output_final_state: bool = False,
    chunk_size: int = 64,
    backend: str = "auto",
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Plain delta rule of eq. 6-8, with the semantics of fla's `chunk_delta_rule`.

    Per head, state `S` is K x V: `S_t = S_{t-1} + beta_t k_t (v_t - S_{t-1}^T k_t)^T`, `o_t = scale * S_t^T q_t`.

    Args:
        q, k:
            `[B, T, H, K]` (stable for `||k|| = 1`, `beta` in (0, 2)).
        v:
            `[B, T, H, V]`.
        beta:
            `[B, T, H]` learning rates.
        scale, initial_state, output_final_state, chunk_size:
            As in `state_evolution`.
        backend:
            As in `state_evolution`, and `fused_chunk`: the chunked algorithm as one C++ kernel for the CPU.

    Returns:
        `(o, final_state)`: o `[B, T, H, V]` in v's dtype; final_state or None.
    """
    _check_common(q, k, v, initial_state, chunk_size)
    if beta.shape != q.shape[:3]:
        raise ValueError(f"beta must be [B, T, H] = {tuple(q.shape[:3])}, got {tuple(beta.shape)}")
    scale = default_scale(q, scale)
    kwargs = {"scale": scale, "initial_state": initial_state, "output_final_state": output_final_state}
    backend = resolve_backend(backend, q.device, op="delta_rule")
    if backend != "naive":
        kwargs["chunk_size"] = chunk_size
    o, state = dispatch("delta_rule", backend, kernel("delta_rule", backend), (q, k, v, beta), kwargs)
    return o.to(v.dtype), state


def selective_scan(
    u: torch.Tensor,
    delta: torch.Tensor,
    A: torch.Tensor,
    B: torch.Tensor,
    C: torch.Tensor,
    D: torch.Tensor | None = None,
    *,
    delta_bias: torch.Tensor | None = None,
    delta_softplus: bool = False,
    backend: str = "auto",
) -> torch.Tensor:
    """Selective scan (Mamba's S6) with mamba_ssm's ``selective_scan_fn`` semantics (no z gate, no returned state).

    Per channel d and state index n: `h_t = exp(delta_t A) h_{t-1} + delta_t B_t u_t`, `y_t = C_t h_t + D u_t`
    (kernels/selective_scan.py has the math of the chunked form).

    Args:
        u:
            Input `[b, d, L]`.
        delta:
            Time steps before bias / softplus `[b, d, L]`.
        A:
            State matrix (negative) `[d, n]`.
        B, C:
            Input and output projections `[b, g, n, L]` (or `[b, n, L]` for g = 1).
        D:
            Skip weight `[d]` or None.
        delta_bias:
            Added to delta before the softplus, `[d]` or None.
        delta_softplus:
            Apply softplus to delta + bias.
        backend:
            `naive` (the loop), `chunk` (chunked PyTorch), `fused` (C++ kernels for the CPU), `cuda` (mamba_ssm,
            CUDA tensors) or `auto` (cuda where installed and the tensors are on a GPU, fused for CPU tensors where
            the C++ kernels build, else chunk). Default: `auto`.

    Returns:
        y `[b, d, L]` in u's dtype.
    """
    backend = resolve_backend(backend, u.device, op="selective_scan")
    kwargs = {"delta_bias": delta_bias, "delta_softplus": delta_softplus}
    return dispatch("selective_scan", backend, kernel("selective_scan", backend), (u, delta, A, B, C, D), kwargs)
