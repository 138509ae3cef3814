"""Step-by-step recurrences: the oracle every other backend is checked against.

Layout as fla: tokens `[B, T, H, K]`, state `[B, H, K, V]` (K x V, the transpose of the paper's V x K state S).
With `St` the fla state, the paper's row-vector recurrence `S_t = S_{t-1}(diag(w_t) + a_t^T b_t) + v_t^T k_t` reads
`St_t = (diag(w_t) + b_t a_t^T) St_{t-1} + k_t v_t^T`, and `o_t = S_t q_t^T` reads `o_t = St_t^T q_t`.
"""

import torch


def compute_dtype(dtype: torch.dtype) -> torch.dtype:
    """fp64 stays fp64 (the tight oracle); everything else accumulates in fp32."""
    return torch.float64 if dtype == torch.float64 else torch.float32


def naive_state_evolution(
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
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Generalized delta rule (eq. 5, RWKV-7 / DPLR), one token at a time."""
    dtype = compute_dtype(q.dtype)
    q, k, v, a, b, gk = (x.to(dtype) for x in (q, k, v, a, b, gk))
    batch, seq_len, heads, dk = q.shape
    state = q.new_zeros(batch, heads, dk, v.shape[-1])
    if initial_state is not None:
        state = state + initial_state.to(dtype)
    w = gk.exp()
    outputs = []
    for t in range(seq_len):
        # a_t^T applied to the old state: the "removal" read-out of the delta rule, a row of length V
        removed = torch.einsum("bhk,bhkv->bhv", a[:, t], state)
        state = (
            w[:, t, :, :, None] * state
            + b[:, t, :, :, None] * removed[:, :, None, :]
            + k[:, t, :, :, None] * v[:, t, :, None, :]
        )
        outputs.append(torch.einsum("bhk,bhkv->bhv", q[:, t] * scale, state))
    o = torch.stack(outputs, dim=1) if outputs else v.new_zeros(v.shape)
    return o, (state if output_final_state else None)


def naive_delta_rule(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    beta: torch.Tensor,
    *,
    scale: float,
    initial_state: torch.Tensor | None = None,
    output_final_state: bool = False,
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Plain delta rule (eq. 6-8): `St_t = St_{t-1} + k_t (beta_t (v_t - St_{t-1}^T k_t))^T`, `o_t = St_t^T q_t`."""
    dtype = compute_dtype(q.dtype)
    q, k, v, beta = (x.to(dtype) for x in (q, k, v, beta))
    batch, seq_len, heads, dk = q.shape
    state = q.new_zeros(batch, heads, dk, v.shape[-1])
    if initial_state is not None:
        state = state + initial_state.to(dtype)
    outputs = []
    for t in range(seq_len):
        predicted = torch.einsum("bhk,bhkv->bhv", k[:, t], state)
        correction = beta[:, t, :, None] * (v[:, t] - predicted)
        state = state + k[:, t, :, :, None] * correction[:, :, None, :]
        outputs.append(torch.einsum("bhk,bhkv->bhv", q[:, t] * scale, state))
    o = torch.stack(outputs, dim=1) if outputs else v.new_zeros(v.shape)
    return o, (state if output_final_state else None)
