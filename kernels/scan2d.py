"""2D scan: an H x W map read in several orders, all evaluated in ONE state-evolution call.

Tokens come in row-major order (index `i * width + j`). The four orders of the paper:
`row_fwd` (row-major), `row_bwd` (row-major reversed), `col_fwd` (column-major: down the first column, then the
next), `col_bwd` (column-major reversed). The "1d" mode (ablation) keeps `row_fwd` only.
"""

import torch

from kernels.api import check_state_evolution, default_scale, resolve_backend, state_evolution
from kernels.flops import dispatch

SCAN_DIRECTIONS: dict[str, tuple[str, ...]] = {
    "2d": ("row_fwd", "row_bwd", "col_fwd", "col_bwd"),
    "1d": ("row_fwd",),
}


def scan_order(direction: str, *, height: int, width: int, device: torch.device | None = None) -> torch.Tensor:
    """Row-major token indices in the order `direction` reads them: `sequence = tokens[:, order]`."""
    row_major = torch.arange(height * width, device=device)
    column_major = row_major.view(height, width).t().reshape(-1)
    orders = {
        "row_fwd": row_major,
        "row_bwd": row_major.flip(0),
        "col_fwd": column_major,
        "col_bwd": column_major.flip(0),
    }
    if direction not in orders:
        raise ValueError(f"unknown scan direction {direction!r}; expected one of {tuple(orders)}")
    return orders[direction]


def _directions(directions: str | tuple[str, ...] | list[str]) -> tuple[str, ...]:
    if isinstance(directions, str):
        if directions not in SCAN_DIRECTIONS:
            raise ValueError(f"unknown scan mode {directions!r}; expected one of {tuple(SCAN_DIRECTIONS)} or a tuple")
        return SCAN_DIRECTIONS[directions]
    return tuple(directions)


def scan2d(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    a: torch.Tensor,
    b: torch.Tensor,
    gk: torch.Tensor,
    *,
    height: int,
    width: int,
    directions: str | tuple[str, ...] = "2d",
    scale: float | None = None,
    chunk_size: int = 64,
    backend: str = "auto",
    merge: torch.Tensor | None = None,
) -> torch.Tensor:
    """State evolution over an H x W map in D scan orders, stacked along the heads into one call.

    Args:
        q, k, a, b, gk:
            `[B, T, H, K]` with `T = height * width` tokens in row-major order.
        v:
            `[B, T, H, V]`.
        directions:
            `"2d"` (four orders), `"1d"` (row_fwd) or a tuple of names from `SCAN_DIRECTIONS["2d"]`. Default: `"2d"`.
        scale, chunk_size, backend:
            As in `state_evolution`; every sequence starts from a zero state.
        merge:
            `[D, H, V]` weights: return `sum_d merge[d] * o_d` instead of the D outputs (the fused kernel's backward
            weighs the merged gradient itself, so no per-direction gradient is ever stored). Default: None.

    Returns:
        `[D, B, T, H, V]`: each direction's output put back in row-major order, for the caller to merge; with `merge`,
        `[B, T, H, V]`.
    """
    names = _directions(directions)
    seq_len = q.shape[1]
    if height * width != seq_len:
        raise ValueError(f"height * width = {height} * {width} = {height * width} does not match T = {seq_len} tokens")
    expected = (len(names), q.shape[2], v.shape[-1])
    if merge is not None and tuple(merge.shape) != expected:
        # the fused kernel reads the weights by pointer: a wrong shape would read past them
        raise ValueError(f"merge must be [D, H, V] = {list(expected)} for {len(names)} directions, got "
                         f"{list(merge.shape)}")
    orders = torch.stack([scan_order(d, height=height, width=width, device=q.device) for d in names])  # [D, T]
    if resolve_backend(backend, q.device) == "fused_recurrent":
        # the C++ recurrence reads every order's rows by index and writes each output at its row-major position:
        # no gathered copies of the inputs, no scatter back (kernels/README.md, "The 2D scan")
        from kernels.fused_cpu import fused_scan2d

        check_state_evolution(q, k, v, a, b, gk, chunk_size=chunk_size)
        kwargs = {"order": orders, "scale": default_scale(q, scale), "chunk_size": chunk_size, "merge": merge}
        return dispatch("state_evolution", "fused_recurrent", fused_scan2d, (q, k, v, a, b, gk), kwargs).to(v.dtype)

    n_dirs, flat = len(names), orders.reshape(-1)

    def stack_orders(x: torch.Tensor) -> torch.Tensor:
        # [B, T, H, K] -> [B, T, H*D, K]: each (head, direction) is a sequence of its own, read in its order. One
        # gather along T of the head-first view writes memory [B, H, D, T, K], the layout the fused kernels read
        # (every sequence a contiguous run of rows), so they need no copy of their own.
        gathered = x.transpose(1, 2).index_select(2, flat)  # [B, H, D*T, K]
        return gathered.unflatten(2, (n_dirs, seq_len)).flatten(1, 2).transpose(1, 2)

    o, _ = state_evolution(
        *(stack_orders(x) for x in (q, k, v, a, b, gk)), scale=scale, chunk_size=chunk_size, backend=backend
    )
    o = o.unflatten(2, (-1, n_dirs))  # [B, T, H, D, V]
    inverse = torch.argsort(orders, dim=1)  # position of each row-major token in each reading order
    o = torch.stack([o[:, :, :, d].index_select(1, inverse[d]) for d in range(n_dirs)])
    return o if merge is None else (o * merge[:, None, None]).sum(0)
