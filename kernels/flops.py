"""FLOP counts of the ops in ``kernels/api.py``, and the hook that lets a FLOP counter see inside their kernels.

``torch.utils.flop_counter.FlopCounterMode`` counts the products it sees (an ``[m, k] x [k, n]`` product is
``2 m k n`` FLOPs: a multiply-add counts 2) and nothing else. The fused C++ kernels (``fused_*``), fla's Triton
kernels and mamba_ssm's CUDA op are calls it cannot look into, and the selective scan is made of pointwise ops and
cumulative sums only, so the counter sees none of its work in any form (tested). Each such call is therefore counted
by an analytic formula of the form that runs, written below next to the algorithm it counts:

==================  ======================  ===================================================================
op                  backend                 counted by
==================  ======================  ===================================================================
state_evolution     chunk                   the counter itself (= ``chunk_state_evolution_flops``, tested)
                    naive, fused_recurrent  ``recurrent_state_evolution_flops``
                    fla                     ``chunk_state_evolution_flops`` at fla's chunk size (16)
delta_rule          chunk                   the counter itself (= ``chunk_delta_rule_flops``, tested)
                    naive, fused_recurrent  ``recurrent_delta_rule_flops``
                    fused_chunk, fla        ``chunk_delta_rule_flops`` at the call's chunk size
selective_scan      every backend           ``selective_scan_flops`` (the recurrence)
==================  ======================  ===================================================================

Conventions, the counter's: a multiply-add is 2 FLOPs, a dot product of length n is 2n; in the recurrences the
pointwise multiplies and adds on the K x V state (or the N-entry scan state) count 1 each, because there they are the
work itself (rank-one updates). Transcendental functions (exp, softplus) are not counted, as the counter counts none.
MACs are FLOPs / 2 (the unit the SR literature calls "FLOPs", fvcore's). The recurrent formulas equal what the
counter counts in the naive loops when it also counts pointwise multiplies and adds (tested); the chunked formulas
equal what it counts in ``kernels/chunk.py`` (tested). ``kernels.chunk.delta_rule_flops`` (the textbook chunked count
of kernels/README.md) and ``kernels.fused_cpu.fused_chunk_flops`` (what the C++ chunked kernel executes, zero
triangles skipped) are other counts of the same algorithm, for the benchmark.

For the selective scan, VMamba's and MambaIR's fvcore handles add ``9 B L D N`` per scan to fvcore's MACs
(state-spaces/mamba issue 110); this module counts the recurrence as written, ``(6 N + 1) B L D`` FLOPs (plus
``2 B L D`` with D and ``B L D`` with delta_bias), i.e. a third of that in MACs, so MambaIR's published FLOPs are not
reproduced by this count.

The hook: ``kernels/api.py`` runs every kernel through ``dispatch``; with no observer installed that is the plain
call. ``count_kernels(counter)`` installs one for a ``FlopCounterMode`` that, for each call counted analytically,
runs the kernel with the counter's counts set aside (so nothing inside is counted twice), then adds the formula's
count to every module the call ran in, under the key ``kernels.<op>[<backend>]``.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

# fla's chunk_dplr_delta_rule picks its own chunk size: 16 without a bound on gk (kernels/fla_backend.py)
FLA_DPLR_CHUNK_SIZE = 16
# the triangular solve of kernels/chunk.py works on diagonal blocks of at most this size (`_block_size`)
SOLVE_BLOCK = 16

Observer = Callable[[str, str, Callable, tuple, dict], object]
_OBSERVERS: list[Observer] = []


# ---------------------------------------------------------------------------------------------------------------------
# Recurrent forms (kernels/naive.py; csrc/recurrent_cpu.cpp does the same work per token)


def recurrent_state_evolution_flops(*, batch: int, heads: int, seq_len: int, dk: int, dv: int) -> int:
    """Generalized delta rule, token by token. Per token and head, with the K x V state S:

        r = a^T S                       2KV   (read-out, a dot product per column)
        S = diag(w) S + b r^T + k v^T   5KV   (w * S, b * r, +, k * v, +)
        o = (scale q)^T S               K + 2KV

    i.e. ``9KV + K``. The C++ kernel scales the V outputs instead of the K inputs; the 9KV are the same.
    """
    return batch * heads * seq_len * (9 * dk * dv + dk)


def recurrent_delta_rule_flops(*, batch: int, heads: int, seq_len: int, dk: int, dv: int) -> int:
    """Plain delta rule, token by token. Per token and head:

        p = k^T S                       2KV
        u = beta (v - p)                2V
        S = S + k u^T                   2KV
        o = (scale q)^T S               K + 2KV

    i.e. ``6KV + 2V + K``.
    """
    return batch * heads * seq_len * (6 * dk * dv + 2 * dv + dk)


# ---------------------------------------------------------------------------------------------------------------------
# Chunked forms (kernels/chunk.py), product by product, for G = B * H sequences of N chunks of C tokens


def _chunking(seq_len: int, chunk_size: int) -> tuple[int, int]:
    """(C, N): kernels/chunk.py caps the chunk at the sequence length rounded up to 16 and pads the last chunk."""
    chunk = min(chunk_size, -(-seq_len // 16) * 16)
    return chunk, -(-seq_len // chunk)


def unit_lower_solve_flops(*, size: int, rhs_cols: int, block: int = SOLVE_BLOCK) -> int:
    """One C x C system of ``kernels.chunk.unit_lower_solve`` with R right-hand sides, s x s diagonal blocks:

        block inverses (I + N)^-1 = prod_j (I + (-N)^(2^j)), 2^j < s:  2 products of s^3 per j, per block (C / s)
        block row i: X_i = inverse_i rhs_i                             2 s^2 R
                     rhs below -= L[below, i] X_i                      2 (C - (i + 1) s) s R
    """
    s = max(d for d in range(1, min(block, size) + 1) if size % d == 0)
    n = size // s
    squarings = 0
    span = 2
    while span < s:
        squarings += 1
        span *= 2
    inverses = n * squarings * 2 * (2 * s**3)
    rows = sum(2 * s * s * rhs_cols + (2 * (size - (i + 1) * s) * s * rhs_cols if i < n - 1 else 0) for i in range(n))
    return inverses + rows


def chunk_delta_rule_flops(*, batch: int, heads: int, seq_len: int, dk: int, dv: int, chunk_size: int = 64) -> int:
    """Plain delta rule as ``kernels.chunk._delta_rule_core`` runs it. Per chunk (C tokens, state S: K x V):

        A = diag(beta) K K^T                          2C^2K
        L [W U] = [diag(beta) K, diag(beta) V]        unit_lower_solve_flops(C, K + V)
        K^T [W U]                                     2KC(K + V)
        S' = (I - K^T W) S + K^T U                    2K^2V   (the loop)
        Q K^T                                         2C^2K
        W S, Q S                                      2 * 2CKV
        (Q K^T * M)(U - W S)                          2C^2V
    """
    if seq_len == 0:
        return 0
    c, n = _chunking(seq_len, chunk_size)
    per_chunk = (4 * c * c * dk + unit_lower_solve_flops(size=c, rhs_cols=dk + dv) + 2 * dk * c * (dk + dv)
                 + 2 * dk * dk * dv + 4 * c * dk * dv + 2 * c * c * dv)
    return batch * heads * n * per_chunk


def chunk_state_evolution_flops(*, batch: int, heads: int, seq_len: int, dk: int, dv: int, chunk_size: int = 64) -> int:
    """Generalized delta rule as ``kernels.chunk._state_evolution_core`` runs it, at chunk size ``chunk_size`` (the
    code halves it for log-decays below RWKV-7's range; pass the size it used). Per chunk, with decayed rows q~, a~,
    k~, b~ (kernels/README.md):

        a~ k~^T, a~ b~^T                              2 * 2C^2K
        strict_tril(a~ k~^T) V                        2C^2V
        solve for [U~ W]                              unit_lower_solve_flops(C, V + K)
        b'^T W, k'^T V, b'^T U~                       2K^2C + 2 * 2KCV
        S' = (diag(e^g) + b'^T W) S + ...             2K^2V   (the loop)
        W S                                           2CKV
        q~ k~^T, q~ b~^T                              2 * 2C^2K
        (q~ k~^T * M) V, (q~ b~^T * M) U              2 * 2C^2V
        q~ S                                          2CKV
    """
    if seq_len == 0:
        return 0
    c, n = _chunking(seq_len, chunk_size)
    per_chunk = (8 * c * c * dk + 6 * c * c * dv + unit_lower_solve_flops(size=c, rhs_cols=dk + dv)
                 + 2 * dk * dk * c + 8 * c * dk * dv + 2 * dk * dk * dv)
    return batch * heads * n * per_chunk


# ---------------------------------------------------------------------------------------------------------------------
# Selective scan (kernels/selective_scan.py: the recurrence; mamba_ssm's CUDA kernel scans the same recurrence)


def selective_scan_flops(*, batch: int, channels: int, seq_len: int, state: int, skip: bool, bias: bool) -> int:
    """Per token and channel d, with the N-entry state h:

        h = exp(delta A) * h + (delta u) B     4N + 1   (delta * A, * h, delta * u, * B, +)
        y = C . h                              2N
        y += D u                               2        (with D)
        delta += delta_bias                    1        (with delta_bias)
    """
    per_token = 6 * state + 1 + (2 if skip else 0) + (1 if bias else 0)
    return batch * channels * seq_len * per_token


# ---------------------------------------------------------------------------------------------------------------------
# Which formula counts a call


def _token_sizes(q, v) -> dict[str, int]:
    batch, seq_len, heads, dk = q.shape
    return {"batch": batch, "heads": heads, "seq_len": seq_len, "dk": dk, "dv": v.shape[-1]}


def analytic_flops(op: str, backend: str, args: tuple, kwargs: dict) -> tuple[str, int] | None:
    """(form, FLOPs) of one call of ``op`` run by ``backend`` with the arguments ``kernels/api.py`` passes it, or None
    where the FLOP counter counts the call itself (the ``chunk`` state evolution and delta rule).

    Args:
        op: ``state_evolution``, ``delta_rule`` or ``selective_scan``.
        backend: the resolved backend (never ``auto``).
        args, kwargs: the kernel's arguments.
    """
    if op == "selective_scan":
        u, _delta, A = args[:3]
        skip = len(args) > 5 and args[5] is not None
        flops = selective_scan_flops(batch=u.shape[0], channels=u.shape[1], seq_len=u.shape[2], state=A.shape[1],
                                     skip=skip, bias=kwargs.get("delta_bias") is not None)
        return "recurrence", flops
    if op not in ("state_evolution", "delta_rule"):
        raise ValueError(f"no FLOP formula for op {op!r}")
    if backend == "chunk":
        return None
    sizes = _token_sizes(args[0], args[2])
    if kwargs.get("order") is not None:  # the 2D scan's fused call: every (batch, head) sequence read in D orders
        sizes["heads"] *= kwargs["order"].shape[0]
    if backend in ("naive", "fused_recurrent"):
        formula = recurrent_state_evolution_flops if op == "state_evolution" else recurrent_delta_rule_flops
        return "recurrent", formula(**sizes)
    if op == "state_evolution":
        chunk = FLA_DPLR_CHUNK_SIZE if backend == "fla" else kwargs.get("chunk_size", 64)
        return f"chunked (C={chunk})", chunk_state_evolution_flops(**sizes, chunk_size=chunk)
    chunk = kwargs.get("chunk_size", 64)
    return f"chunked (C={chunk})", chunk_delta_rule_flops(**sizes, chunk_size=chunk)


# ---------------------------------------------------------------------------------------------------------------------
# The hook


def dispatch(op: str, backend: str, fn: Callable, args: tuple, kwargs: dict):
    """Run one kernel call, through the innermost observer if one is installed (``observe``), else directly."""
    if not _OBSERVERS:
        return fn(*args, **kwargs)
    return _OBSERVERS[-1](op, backend, fn, args, kwargs)


@contextlib.contextmanager
def observe(observer: Observer) -> Iterator[None]:
    """Route every kernel call of ``kernels/api.py`` through ``observer(op, backend, fn, args, kwargs)``, which must
    call ``fn(*args, **kwargs)`` and return its result."""
    _OBSERVERS.append(observer)
    try:
        yield
    finally:
        _OBSERVERS.remove(observer)


@dataclass
class OpRecord:
    """What the calls of one op did while counting: backends and forms seen, calls, analytic FLOPs (None while the
    counter counted every call itself)."""

    backends: list[str] = field(default_factory=list)
    forms: list[str] = field(default_factory=list)
    calls: int = 0
    analytic_flops: int | None = None


@contextlib.contextmanager
def count_kernels(counter) -> Iterator[dict[str, OpRecord]]:
    """Inside a ``torch.utils.flop_counter.FlopCounterMode``: count each kernel call the counter cannot see by its
    formula (``analytic_flops``), added to the counter under ``kernels.<op>[<backend>]`` in every module the call ran
    in. Yields ``{op: OpRecord}``, filled as calls run.

    Args:
        counter: the active ``FlopCounterMode`` (it must be entered before, and stay entered through, this context).
    """
    records: dict[str, OpRecord] = {}

    def observer(op, backend, fn, args, kwargs):
        record = records.setdefault(op, OpRecord())
        record.calls += 1
        if backend not in record.backends:
            record.backends.append(backend)
        analytic = analytic_flops(op, backend, args, kwargs)
        if analytic is None:
            if "counted by the FLOP counter" not in record.forms:
                record.forms.append("counted by the FLOP counter")
            return fn(*args, **kwargs)
        form, flops = analytic
        if form not in record.forms:
            record.forms.append(form)
        # set the counts aside: what the counter would see inside (casts, a naive loop's einsums) is replaced by the
        # formula, not added to it
        saved = {module: dict(ops) for module, ops in counter.flop_counts.items()}
        out = fn(*args, **kwargs)
        counter.flop_counts.clear()
        for module, ops in saved.items():
            counter.flop_counts[module].update(ops)
        for module in set(counter.mod_tracker.parents):
            counter.flop_counts[module][f"kernels.{op}[{backend}]"] += flops
        record.analytic_flops = (record.analytic_flops or 0) + flops
        return out

    with observe(observer):
        yield records
