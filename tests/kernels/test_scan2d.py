"""2D scan: the orders by hand, one batched call equal to separate calls, and the transpose symmetry."""

import pytest
import torch

from kernels import SCAN_DIRECTIONS, scan2d, scan_order, state_evolution
from kernels.testing import dplr_inputs, rel_err

HEIGHT, WIDTH = 5, 7


def test_scan_orders_by_hand():
    # a 2 x 3 map, row-major indices  0 1 2 / 3 4 5
    expected = {
        "row_fwd": [0, 1, 2, 3, 4, 5],
        "row_bwd": [5, 4, 3, 2, 1, 0],
        "col_fwd": [0, 3, 1, 4, 2, 5],
        "col_bwd": [5, 2, 4, 1, 3, 0],
    }
    for direction, order in expected.items():
        assert scan_order(direction, height=2, width=3).tolist() == order
    assert SCAN_DIRECTIONS == {"2d": ("row_fwd", "row_bwd", "col_fwd", "col_bwd"), "1d": ("row_fwd",)}


@pytest.mark.parametrize("backend", ["naive", "chunk"])
def test_batched_call_equals_separate_calls(backend):
    inputs = dplr_inputs(2, HEIGHT * WIDTH, 2, 4, 3)
    out = scan2d(*inputs, height=HEIGHT, width=WIDTH, backend=backend, chunk_size=16)
    assert out.shape == (4, 2, HEIGHT * WIDTH, 2, 3)
    for d, direction in enumerate(SCAN_DIRECTIONS["2d"]):
        order = scan_order(direction, height=HEIGHT, width=WIDTH)
        o, _ = state_evolution(*(x[:, order] for x in inputs), backend="naive")
        expected = torch.empty_like(o)
        expected[:, order] = o  # token order[i] of the map got output i of this reading
        assert rel_err(out[d], expected) < 1e-12, direction


def test_transposed_map_swaps_row_and_column_directions():
    inputs = dplr_inputs(1, HEIGHT * WIDTH, 2, 4, 3)

    def transpose(x: torch.Tensor, height: int, width: int) -> torch.Tensor:
        return x.unflatten(1, (height, width)).transpose(1, 2).flatten(1, 2)

    out = scan2d(*inputs, height=HEIGHT, width=WIDTH, backend="chunk")
    swapped = ("col_fwd", "col_bwd", "row_fwd", "row_bwd")
    out_t = scan2d(*(transpose(x, HEIGHT, WIDTH) for x in inputs), height=WIDTH, width=HEIGHT, directions=swapped)
    for d in range(4):
        assert rel_err(transpose(out_t[d], WIDTH, HEIGHT), out[d]) < 1e-12


def test_1d_mode_is_the_row_forward_sequence():
    inputs = dplr_inputs(2, HEIGHT * WIDTH, 1, 4, 4)
    out = scan2d(*inputs, height=HEIGHT, width=WIDTH, directions="1d")
    o, _ = state_evolution(*inputs, backend="naive")
    assert out.shape[0] == 1 and rel_err(out[0], o) < 1e-12


def test_gradients_flow_through_the_scan():
    inputs = dplr_inputs(1, HEIGHT * WIDTH, 1, 4, 4, requires_grad=True)
    for backend in ("naive", "chunk"):
        grads = torch.autograd.grad(scan2d(*inputs, height=HEIGHT, width=WIDTH, backend=backend).square().sum(), inputs)
        if backend == "naive":
            expected = grads
    assert all(rel_err(g, e) < 1e-10 for g, e in zip(grads, expected))


def test_bad_input_is_named():
    inputs = dplr_inputs(1, HEIGHT * WIDTH, 1, 4, 4)
    with pytest.raises(ValueError, match="height \\* width"):
        scan2d(*inputs, height=HEIGHT, width=WIDTH + 1)
    with pytest.raises(ValueError, match="unknown scan mode"):
        scan2d(*inputs, height=HEIGHT, width=WIDTH, directions="3d")
    with pytest.raises(ValueError, match="unknown scan direction"):
        scan2d(*inputs, height=HEIGHT, width=WIDTH, directions=("diag",))
