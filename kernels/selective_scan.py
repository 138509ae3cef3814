"""Selective scan (the S6 recurrence of Mamba): the naive loop, a chunked PyTorch form, and mamba_ssm's CUDA op.

The public entry point with backend dispatch is ``kernels.selective_scan`` (``kernels/api.py``).

For every channel d and state index n, with Δ = softplus(δ + bias) when ``delta_softplus``:

    h_t = exp(Δ_t A) ⊙ h_{t-1} + Δ_t B_t u_t,        y_t = Σ_n C_t[n] h_t[n] + D u_t

B and C are shared by the d/g channels of each of their g groups (channel d reads group d // (d_total/g)), as in
``mamba_ssm.ops.selective_scan_interface.selective_scan_ref``.

``naive_selective_scan`` is that recurrence step by step (the oracle). ``chunk_selective_scan`` splits the sequence
into chunks of T tokens and, inside a chunk, uses the closed form

    S_t = Σ_{s≤t} Δ_s A  (cumulative sum of log Ā),   h_t = e^{S_t} (h_0 + Σ_{s≤t} e^{-S_s} x_s),   x_s = Δ_s B_s u_s

which is batched over all chunks; only the chunk-to-chunk carry of h is sequential (on [b, d, n] tensors). The factors
e^{±S} are exact in fp32 only while the decay accumulated inside a chunk stays moderate, and trained models can have
large Δ·|A|: the chunk length is therefore halved until no chunk accumulates more than ``MAX_LOG_DECAY`` (then
|e^{±S}| ≤ e^{32} and the relative rounding error stays near 1e-6). The length is chosen per segment (below), so a
segment holding a token that alone decays the state by more than e^{-32} falls back to a per-token carry: exact, but
slow. Memory is bounded by processing the sequence in
segments of at most ``max_elements`` state entries; under autograd each segment is checkpointed, so a scan keeps only
its inputs and recomputes the states in backward.
"""

from __future__ import annotations

import functools

import torch
import torch.nn.functional as F
from torch.utils.checkpoint import checkpoint

MAX_LOG_DECAY = 32.0


@functools.cache
def _mamba_ssm_scan():
    try:
        from mamba_ssm.ops.selective_scan_interface import selective_scan_fn
    except ImportError:
        return None
    return selective_scan_fn


def cuda_available() -> bool:
    """Whether mamba_ssm's CUDA selective scan is installed."""
    return _mamba_ssm_scan() is not None


def cuda_selective_scan(u, delta, A, B, C, D=None, *, delta_bias=None, delta_softplus=False) -> torch.Tensor:
    """mamba_ssm's ``selective_scan_fn`` (CUDA tensors; no z gate, no returned state)."""
    fn = _mamba_ssm_scan()
    if fn is None or not u.is_cuda:
        raise RuntimeError("selective_scan backend 'cuda' needs mamba_ssm and CUDA tensors")
    B = B.unsqueeze(1) if B.dim() == 3 else B
    C = C.unsqueeze(1) if C.dim() == 3 else C
    return fn(u, delta, A, B.contiguous(), C.contiguous(), D, z=None, delta_bias=delta_bias,
              delta_softplus=delta_softplus, return_last_state=False)


def _check_shapes(u: torch.Tensor, delta: torch.Tensor, A: torch.Tensor, B: torch.Tensor, C: torch.Tensor) -> tuple[int, ...]:
    if u.dim() != 3 or delta.shape != u.shape:
        raise ValueError(f"selective_scan: u and delta must both be [b, d, L], got {tuple(u.shape)} and {tuple(delta.shape)}")
    b, d, L = u.shape
    if A.dim() != 2 or A.shape[0] != d:
        raise ValueError(f"selective_scan: A must be [d={d}, n], got {tuple(A.shape)}")
    n = A.shape[1]
    for name, m in (("B", B), ("C", C)):
        if m.dim() != 4 or m.shape[0] != b or m.shape[2] != n or m.shape[3] != L or d % m.shape[1]:
            raise ValueError(f"selective_scan: {name} must be [b={b}, g, n={n}, L={L}] with g dividing d={d}, "
                             f"got {tuple(m.shape)}")
    if B.shape[1] != C.shape[1]:
        raise ValueError(f"selective_scan: B and C must have the same number of groups, got {B.shape[1]} and {C.shape[1]}")
    return b, d, L, n, B.shape[1]


def _prepare(u, delta, A, B, C, D, delta_bias, delta_softplus):
    if B.dim() == 3:
        B = B.unsqueeze(1)
    if C.dim() == 3:
        C = C.unsqueeze(1)
    dims = _check_shapes(u, delta, A, B, C)
    dtype = torch.float64 if u.dtype == torch.float64 else torch.float32
    delta = delta.to(dtype)
    if delta_bias is not None:
        delta = delta + delta_bias.to(dtype)[:, None]
    if delta_softplus:
        delta = F.softplus(delta)
    D = None if D is None else D.to(dtype)
    return u.to(dtype), delta, A.to(dtype), B.to(dtype), C.to(dtype), D, dims


def naive_selective_scan(u: torch.Tensor, delta: torch.Tensor, A: torch.Tensor, B: torch.Tensor, C: torch.Tensor,
                             D: torch.Tensor | None = None, *, delta_bias: torch.Tensor | None = None,
                             delta_softplus: bool = False) -> torch.Tensor:
    """The recurrence one token at a time (slow; the oracle for the chunked scan). Shapes as in ``kernels.selective_scan``."""
    out_dtype = u.dtype
    u, delta, A, B, C, D, (b, d, L, n, g) = _prepare(u, delta, A, B, C, D, delta_bias, delta_softplus)
    B = B.repeat_interleave(d // g, dim=1)
    C = C.repeat_interleave(d // g, dim=1)
    h = u.new_zeros(b, d, n)
    ys = []
    for t in range(L):
        h = torch.exp(delta[:, :, t, None] * A) * h + (delta[:, :, t] * u[:, :, t])[:, :, None] * B[:, :, :, t]
        ys.append((h * C[:, :, :, t]).sum(-1))
    y = torch.stack(ys, dim=-1)
    if D is not None:
        y = y + D[:, None] * u
    return y.to(out_dtype)


def _chunk_states(dA: torch.Tensor, x: torch.Tensor, chunk: int) -> tuple[torch.Tensor, torch.Tensor, int]:
    """Intra-chunk states (zero initial state) and decays e^{S_t} for every token, chunks batched.

    dA, x: [b, g, h, L, n] with L a multiple of ``chunk``. Returns (states, decays, chunk) shaped [b, g, h, c, T, n];
    the chunk length is halved until no chunk accumulates a decay larger than MAX_LOG_DECAY.
    """
    *lead, L, n = dA.shape
    S = torch.cumsum(dA.reshape(*lead, L // chunk, chunk, n), dim=-2)
    if chunk > 1 and -S[..., -1, :].min() > MAX_LOG_DECAY:
        # the decay accumulated by each candidate sub-chunk, read off S at the sub-chunk ends (small tensors only)
        base = chunk
        while chunk > 1:
            chunk //= 2
            ends = S.reshape(*lead, L // base, base // chunk, chunk, n)[..., -1, :]
            spans = ends - F.pad(ends, (0, 0, 1, -1))
            if -spans.min() <= MAX_LOG_DECAY:
                break
        S = torch.cumsum(dA.reshape(*lead, L // chunk, chunk, n), dim=-2)
    x = x.reshape(*lead, L // chunk, chunk, n)
    decay = torch.exp(S)
    if chunk == 1:
        return x, decay, 1
    return decay * torch.cumsum(x * torch.reciprocal(decay), dim=-2), decay, chunk


def _scan_segment(u: torch.Tensor, delta: torch.Tensor, A: torch.Tensor, B: torch.Tensor, C: torch.Tensor,
                  h0: torch.Tensor, chunk_size: int) -> tuple[torch.Tensor, torch.Tensor, int]:
    """One segment: u, delta [b, g, h, L]; A [g, h, n]; B, C [b, g, n, L]; h0 [b, g, h, n].

    Returns (y [b, g, h, L], h_L, the chunk length used)."""
    b, g, hd, L = u.shape
    chunk = min(chunk_size, 1 << (L - 1).bit_length())
    pad = -L % chunk
    if pad:  # zero Δ and zero input leave the state untouched in the padded tail
        u, delta = F.pad(u, (0, pad)), F.pad(delta, (0, pad))
        B, C = F.pad(B, (0, pad)), F.pad(C, (0, pad))
    Lp = L + pad
    dA = delta[..., None] * A[:, :, None, :]
    x = (delta * u)[..., None] * B.transpose(-1, -2)[:, :, None]
    states, decay, chunk = _chunk_states(dA, x, chunk)
    nc = Lp // chunk
    # chunk-to-chunk carry: h entering chunk c+1 = e^{S_end} h entering chunk c + local end state of chunk c
    carried = []
    h = h0
    for c in range(nc):
        carried.append(h)
        h = decay[:, :, :, c, -1] * h + states[:, :, :, c, -1]
    carried = torch.stack(carried, dim=3)
    states = torch.addcmul(states, decay, carried[:, :, :, :, None])
    Cc = C.transpose(-1, -2).reshape(b, g, 1, nc, chunk, -1)
    y = (states * Cc).sum(-1).reshape(b, g, hd, Lp)[..., :L]
    return y, h, chunk


def chunk_selective_scan(u: torch.Tensor, delta: torch.Tensor, A: torch.Tensor, B: torch.Tensor, C: torch.Tensor,
                           D: torch.Tensor | None = None, *, delta_bias: torch.Tensor | None = None,
                           delta_softplus: bool = False, chunk_size: int = 64, max_elements: int | None = None,
                           use_checkpoint: bool | None = None) -> torch.Tensor:
    """Chunked selective scan in PyTorch (see the module docstring). Shapes as in ``kernels.selective_scan``.

    Args:
        chunk_size: longest chunk, a power of two (halved automatically while a chunk accumulates too much decay).
            Default: ``64``.
        max_elements: state entries (b·d·L·n) materialised at once; bounds memory. Default: ``None`` (2**20 on CPU,
            where cache-sized segments are fastest; 2**24 on other devices).
        use_checkpoint: recompute segment states in backward instead of storing them. Default: ``None``
            (on whenever autograd records the scan).
    """
    if chunk_size < 1 or chunk_size & (chunk_size - 1):
        raise ValueError(f"selective_scan: chunk_size must be a power of two, got {chunk_size}")
    out_dtype = u.dtype
    u, delta, A, B, C, D, (b, d, L, n, g) = _prepare(u, delta, A, B, C, D, delta_bias, delta_softplus)
    hd = d // g
    if max_elements is None:
        max_elements = 2**20 if u.device.type == "cpu" else 2**24
    seg = max(chunk_size, max_elements // max(1, b * d * n) // chunk_size * chunk_size)
    if use_checkpoint is None:
        use_checkpoint = torch.is_grad_enabled() and any(t.requires_grad for t in (u, delta, A, B, C))
    Ag = A.view(g, hd, n)
    h = u.new_zeros(b, g, hd, n)
    ys = []
    chunk = chunk_size
    for s in range(0, L, seg):
        # each segment starts from the previous one's chunk length: decays change slowly along a sequence, and this
        # spares most segments the search for a short enough chunk
        args = (u[..., s:s + seg].reshape(b, g, hd, -1), delta[..., s:s + seg].reshape(b, g, hd, -1), Ag,
                B[..., s:s + seg], C[..., s:s + seg], h, chunk)
        y, h, chunk = checkpoint(_scan_segment, *args, use_reentrant=False) if use_checkpoint else _scan_segment(*args)
        ys.append(y.reshape(b, d, -1))
    y = torch.cat(ys, dim=-1)
    if D is not None:
        y = y + D[:, None] * u
    return y.to(out_dtype)
