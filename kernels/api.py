"""Public entry points: argument checks, defaults and backend dispatch (one signature for every backend)."""

import torch

from kernels.naive import naive_delta_rule, naive_state_evolution

BACKENDS = ("naive", "chunk", "fused_chunk", "fused_recurrent", "fla", "auto")
CPU_KERNELS = ("fused_chunk", "fused_recurrent")


def resolve_backend(backend: str, device: torch.device, *, op: str = "state_evolution") -> str:
    """`auto` is fla's Triton kernels on CUDA; on the CPU the fused recurrence where the C++ kernels build here
    (kernels/fused_cpu.py), else the chunked PyTorch algorithm."""
    if backend not in BACKENDS:
        raise ValueError(f"unknown backend {backend!r}; expected one of {BACKENDS}")
    if backend == "auto":
        if device.type == "cuda":
            return "fla"
        from kernels.fused_cpu import available

        return "fused_recurrent" if available()[0] else "chunk"
    if backend == "fla" and device.type != "cuda":
        raise ValueError(f"backend 'fla' runs fla's Triton kernels and needs CUDA tensors, got device {device}")
    if backend in CPU_KERNELS and device.type != "cpu":
        raise ValueError(f"backend {backend!r} is a C++ kernel for CPU tensors, got device {device}")
    if backend == "fused_chunk" and op != "delta_rule":
        raise ValueError("backend 'fused_chunk' implements the plain delta rule only; use 'fused_recurrent' or 'chunk'")
    return backend


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
    _check_common(q, k, v, initial_state, chunk_size)
    for name, x in (("a", a), ("b", b), ("gk", gk)):
        if x.shape != q.shape:
            raise ValueError(f"{name} must have q's shape {tuple(q.shape)}, got {tuple(x.shape)}")
    scale = q.shape[-1] ** -0.5 if scale is None else float(scale)
    kwargs = {"scale": scale, "initial_state": initial_state, "output_final_state": output_final_state}
    backend = resolve_backend(backend, q.device)
    if backend == "naive":
        o, state = naive_state_evolution(q, k, v, a, b, gk, **kwargs)
    elif backend == "fused_recurrent":
        from kernels.fused_cpu import fused_recurrent_state_evolution

        o, state = fused_recurrent_state_evolution(q, k, v, a, b, gk, chunk_size=chunk_size, **kwargs)
    elif backend == "chunk":
        from kernels.chunk import chunk_state_evolution

        o, state = chunk_state_evolution(q, k, v, a, b, gk, chunk_size=chunk_size, **kwargs)
    else:
        from kernels.fla_backend import fla_state_evolution

        o, state = fla_state_evolution(q, k, v, a, b, gk, chunk_size=chunk_size, **kwargs)
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
    scale = q.shape[-1] ** -0.5 if scale is None else float(scale)
    kwargs = {"scale": scale, "initial_state": initial_state, "output_final_state": output_final_state}
    backend = resolve_backend(backend, q.device, op="delta_rule")
    if backend == "naive":
        o, state = naive_delta_rule(q, k, v, beta, **kwargs)
    elif backend in CPU_KERNELS:
        from kernels import fused_cpu

        fn = fused_cpu.fused_chunk_delta_rule if backend == "fused_chunk" else fused_cpu.fused_recurrent_delta_rule
        o, state = fn(q, k, v, beta, chunk_size=chunk_size, **kwargs)
    elif backend == "chunk":
        from kernels.chunk import chunk_delta_rule

        o, state = chunk_delta_rule(q, k, v, beta, chunk_size=chunk_size, **kwargs)
    else:
        from kernels.fla_backend import fla_delta_rule

        o, state = fla_delta_rule(q, k, v, beta, chunk_size=chunk_size, **kwargs)
    return o.to(v.dtype), state
