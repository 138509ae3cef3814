"""Chunkwise state evolution in PyTorch: the UT transform / WY representation (eq. 6-8), extended with decay.

All chunks' intra-chunk work is batched over (batch, head, chunk) into large matrix products; the only loop is the
chunk-to-chunk state update `S_{n+1} = A_n S_n + B_n`, one small batched product per chunk. The outputs then come
from all chunk-start states at once. Autograd runs through it (every op is differentiable). The math and the FLOP
count are written out in kernels/README.md.
"""

import torch
import torch.nn.functional as F

from kernels.naive import compute_dtype

# Largest exponent e^x that the decay factors may reach inside one chunk before the chunk is split (fp32 / fp64 have
# e^88 / e^709 headroom; the margin keeps products of such factors with O(1e6) values finite).
_MAX_EXPONENT = {torch.float32: 60.0, torch.float64: 600.0}
# Tokens (summed over the sequences of a tile) per tile of work, see by_tiles.
TILE_TOKENS = 16384


def to_chunks(x: torch.Tensor, chunk_size: int, dtype: torch.dtype) -> torch.Tensor:
    """[B, T, H, D] -> [B*H, N, C, D], zero-padded to N * C tokens (zero tokens leave the state unchanged)."""
    batch, seq_len, heads, dim = x.shape
    pad = -seq_len % chunk_size
    x = F.pad(x.to(dtype), (0, 0, 0, 0, 0, pad)) if pad else x.to(dtype)
    x = x.view(batch, (seq_len + pad) // chunk_size, chunk_size, heads, dim).permute(0, 3, 1, 2, 4)
    return x.reshape(batch * heads, (seq_len + pad) // chunk_size, chunk_size, dim)


def from_chunks(x: torch.Tensor, batch: int, seq_len: int) -> torch.Tensor:
    """[B*H, N, C, D] -> [B, T, H, D]."""
    groups, n, c, dim = x.shape
    return x.view(batch, groups // batch, n * c, dim).transpose(1, 2)[:, :seq_len].contiguous()


def propagate(transition: torch.Tensor, inject: torch.Tensor, initial_state: torch.Tensor | None) -> torch.Tensor:
    """Chunk-start states `S_0 .. S_N` of `S_{n+1} = A_n S_n + B_n`; A: [G, N, K, K], B: [G, N, K, V], S_0: [G, K, V].

    Returns [G, N + 1, K, V]. This is the only sequential part; its cost is N small products.
    """
    groups, n, dk, dv = inject.shape
    state = inject.new_zeros(groups, dk, dv) if initial_state is None else initial_state.to(inject.dtype)
    states = [state]
    for i in range(n):
        state = torch.baddbmm(inject[:, i], transition[:, i], state)
        states.append(state)
    return torch.stack(states, dim=1)


def no_tokens(q: torch.Tensor, v: torch.Tensor, initial_state: torch.Tensor | None, output_final_state: bool, dtype):
    """The result for T = 0: no outputs, and the final state is the initial one (zeros without one)."""
    batch, _, heads, dk = q.shape
    state = v.new_zeros(batch, heads, dk, v.shape[-1], dtype=dtype)
    if initial_state is not None:
        state = state + initial_state.to(dtype)  # differentiable: d final / d initial = identity
    return v.new_zeros(v.shape, dtype=dtype), (state if output_final_state else None)


def by_tiles(core, chunked: list[torch.Tensor], initial_state: torch.Tensor | None, **kwargs):
    """Run `core` on contiguous groups of sequences of about TILE_TOKENS tokens (a tile's intermediates then stay in
    cache; on one core of the 2-core CPU 1.2x faster than one batch of everything at B=4, H=4, T=4096, K=32, and 2.2x
    at B=64, H=2, T=2304), and concatenate outputs [G, N, C, V] and final states [G, K, V]."""
    groups, n, c = chunked[0].shape[:3]
    tile = max(1, TILE_TOKENS // (n * c))
    if tile >= groups:
        return core(*chunked, initial_state=initial_state, **kwargs)
    outputs, states = [], []
    for g in range(0, groups, tile):
        h0 = None if initial_state is None else initial_state[g : g + tile]
        o, state = core(*(x[g : g + tile] for x in chunked), initial_state=h0, **kwargs)
        outputs.append(o)
        states.append(state)
    return torch.cat(outputs), torch.cat(states)


def _block_size(chunk_size: int, largest: int = 16) -> int:
    """Largest divisor of the chunk size up to `largest`: the diagonal blocks of the blocked triangular solve."""
    return max(d for d in range(1, min(largest, chunk_size) + 1) if chunk_size % d == 0)


def unit_lower_inverse(strict: torch.Tensor) -> torch.Tensor:
    """(I + N)^-1 for a batch of strictly lower s x s matrices N: N is nilpotent (N^s = 0), so the inverse is the
    finite product prod_j (I + (-N)^(2^j)) over 2^j < s, i.e. 2 log2(s) batched products."""
    size = strict.shape[-1]
    power = -strict
    inverse = torch.eye(size, dtype=strict.dtype, device=strict.device) + power
    span = 2
    while span < size:
        power = power @ power
        inverse = inverse + inverse @ power
        span *= 2
    return inverse


def unit_lower_solve(lower: torch.Tensor, rhs: torch.Tensor, block: int = 16) -> torch.Tensor:
    """Solve (I + strict_tril(lower)) X = rhs for batches of C x C systems (the UT transform of eq. 6-8).

    Blocked forward substitution: the s x s diagonal blocks are inverted all at once, then the C / s block rows are
    solved in turn, each solved block eliminated from all rows below it in one batched product (over every chunk and
    head). Only the strict lower triangle of `lower` is read.
    """
    size = lower.shape[-1]
    s = _block_size(size, block)
    n = size // s
    diag = lower.unflatten(-2, (n, s)).unflatten(-1, (n, s)).diagonal(dim1=-4, dim2=-2).movedim(-1, -3)
    inverses = unit_lower_inverse(diag * torch.ones(s, s, dtype=lower.dtype, device=lower.device).tril(-1))
    solved = []
    for i in range(n):
        x = inverses[..., i, :, :] @ rhs[..., :s, :]
        solved.append(x)
        if i < n - 1:
            rhs = rhs[..., s:, :] - lower[..., (i + 1) * s :, i * s : (i + 1) * s] @ x
    return torch.cat(solved, dim=-2)


def chunk_delta_rule(
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
    """Plain delta rule, chunkwise (`_delta_rule_core`); inputs [B, T, H, *], state [B, H, K, V]."""
    dtype = compute_dtype(q.dtype)
    batch, seq_len, heads = q.shape[:3]
    if seq_len == 0:
        return no_tokens(q, v, initial_state, output_final_state, dtype)
    chunk_size = min(chunk_size, -(-seq_len // 16) * 16)
    qc = to_chunks(q, chunk_size, dtype)
    kc = to_chunks(k, chunk_size, dtype)
    # [diag(beta) K, diag(beta) V], scaled in place in the chunked layout (one fresh tensor fewer)
    rhs = to_chunks(torch.cat([k, v], dim=-1), chunk_size, dtype).mul_(to_chunks(beta.unsqueeze(-1), chunk_size, dtype))
    h0 = None if initial_state is None else initial_state.flatten(0, 1)
    o, state = by_tiles(_delta_rule_core, [qc, kc, rhs], h0, scale=scale)
    return from_chunks(o, batch, seq_len), (state.unflatten(0, (batch, heads)) if output_final_state else None)


def _delta_rule_core(
    qc: torch.Tensor, kc: torch.Tensor, rhs: torch.Tensor, *, scale: float, initial_state: torch.Tensor | None
) -> tuple[torch.Tensor, torch.Tensor]:
    """Per chunk (C tokens, state S: K x V, M the causal mask with diagonal; inputs [G, N, C, *]):

    L = I + strict_tril(diag(beta) K K^T);  solve L [W U] = [diag(beta) K, diag(beta) V]  (UT transform)
    S' = S + K^T (U - W S) = (I - K^T W) S + K^T U          (the only loop: one K x K by K x V product)
    O = Q S + (Q K^T * M)(U - W S)                          (after the loop, for all chunks at once)
    """
    dk, chunk_size = qc.shape[-1], qc.shape[-2]
    kt = kc.transpose(-1, -2)
    wu = unit_lower_solve(rhs[..., :dk] @ kt, rhs)  # [W U]
    kt_wu = kt @ wu
    eye = torch.eye(dk, dtype=qc.dtype, device=qc.device)
    states = propagate(eye - kt_wu[..., :dk], kt_wu[..., dk:], initial_state)
    start = states[:, :-1]
    causal = torch.full((chunk_size, chunk_size), scale, dtype=qc.dtype, device=qc.device).tril()  # scale folded in
    attn = (qc @ kt).mul_(causal)
    o = (attn @ (wu[..., dk:] - wu[..., :dk] @ start)).add_(qc @ start, alpha=scale)
    return o, states[:, -1]


def _safe_chunk_size(gk: torch.Tensor, chunk_size: int, dtype: torch.dtype) -> int:
    """Largest chunk size (halving from `chunk_size`) whose in-chunk cumulative decay stays within e^_MAX_EXPONENT."""
    limit = _MAX_EXPONENT[dtype]
    while chunk_size > 1:
        decay = to_chunks(gk, chunk_size, dtype).sum(dim=-2)
        if float(-decay.min()) <= limit:
            break
        chunk_size //= 2
    return chunk_size


def chunk_state_evolution(
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
    """Generalized delta rule (DPLR), chunkwise (`_state_evolution_core`); inputs [B, T, H, *], state [B, H, K, V]."""
    dtype = compute_dtype(q.dtype)
    batch, seq_len, heads = q.shape[:3]
    if seq_len == 0:
        return no_tokens(q, v, initial_state, output_final_state, dtype)
    chunk_size = _safe_chunk_size(gk.detach(), min(chunk_size, -(-seq_len // 16) * 16), dtype)
    chunked = [to_chunks(x, chunk_size, dtype) for x in (q * scale, k, v, a, b, gk)]
    h0 = None if initial_state is None else initial_state.flatten(0, 1)
    o, state = by_tiles(_state_evolution_core, chunked, h0)
    return from_chunks(o, batch, seq_len), (state.unflatten(0, (batch, heads)) if output_final_state else None)


def _state_evolution_core(
    qc: torch.Tensor,
    kc: torch.Tensor,
    vc: torch.Tensor,
    ac: torch.Tensor,
    bc: torch.Tensor,
    gc: torch.Tensor,
    *,
    initial_state: torch.Tensor | None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Per chunk, with g_t the in-chunk inclusive cumsum of gk (kernels/README.md; inputs [G, N, C, *]):

    q~ = q e^{g_t}, a~ = a e^{g_{t-1}}, k~ = k e^{-g_t}, b~ = b e^{-g_t}, k' = k e^{g_C - g_t}, b' = b e^{g_C - g_t}
    solve (I - strict_tril(a~ b~^T)) [U~ W] = [strict_tril(a~ k~^T) V, a~]; the removal reads U = U~ + W S
    S_next = e^{g_C} S + k'^T V + b'^T U = (diag(e^{g_C}) + b'^T W) S + (k'^T V + b'^T U~)     (the only loop)
    O = q~ S + (q~ k~^T * M) V + (q~ b~^T * M) U                                              (after the loop)
    """
    chunk_size, dv = qc.shape[-2], vc.shape[-1]
    causal = torch.ones(chunk_size, chunk_size, dtype=qc.dtype, device=qc.device).tril()
    strict = causal.tril(-1)

    g = gc.cumsum(dim=-2)
    g_last = g[..., -1:, :]
    grow = (-g).exp()  # <= e^_MAX_EXPONENT by the choice of chunk size
    q_dec = qc * g.exp()
    a_dec = ac * (g - gc).exp()
    k_inv, b_inv = (kc * grow).transpose(-1, -2), (bc * grow).transpose(-1, -2)
    to_end = (g_last - g).exp()

    a_k = (a_dec @ k_inv).mul_(strict)
    uw = unit_lower_solve(-(a_dec @ b_inv), torch.cat([a_k @ vc, a_dec], dim=-1))  # [U~ W]
    u_intra, w = uw[..., :dv], uw[..., dv:]

    b_end = (bc * to_end).transpose(-1, -2)
    transition = torch.diag_embed(g_last.squeeze(-2).exp()) + b_end @ w
    inject = (kc * to_end).transpose(-1, -2) @ vc + b_end @ u_intra
    states = propagate(transition, inject, initial_state)
    start = states[:, :-1]
    removal = u_intra + w @ start  # U = U~ + W S, the a^T S reads of every token
    o = (q_dec @ k_inv).mul_(causal) @ vc + (q_dec @ b_inv).mul_(causal) @ removal + q_dec @ start
    return o, states[:, -1]


def delta_rule_flops(*, batch: int, heads: int, seq_len: int, dk: int, dv: int, chunk_size: int = 64) -> int:
    """FLOPs of the chunked delta rule in its textbook form (fla's README; a multiply-add counts 2), per chunk:

        K K^T: 2C^2K   UT transform, a triangular solve for [W U]: C^2(K+V)   Q K^T: 2C^2K
        W S, Q S: 2 * 2CKV   (Q K^T * M)(U - W S): 2C^2V   K^T (U - W S): 2CKV

    The code above regroups the same work (about 1.4x these FLOPs at C=64, K=V=32) so the loop carries only S;
    the benchmark divides this count, not the larger one, by the measured time.
    """
    c = chunk_size
    per_chunk = 2 * c * c * dk + c * c * (dk + dv) + 2 * c * c * dk + 3 * 2 * c * dk * dv + 2 * c * c * dv
    return batch * heads * -(-seq_len // c) * per_chunk
