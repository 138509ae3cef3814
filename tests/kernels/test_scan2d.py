"""2D scan: the orders by hand, one batched call equal to separate calls, and the transpose symmetry."""

import pytest
import torch

from kernels import SCAN_DIRECTIONS, fused_cpu, scan2d, scan_order, state_evolution
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


FUSED = pytest.mark.skipif(not fused_cpu.available()[0], reason=fused_cpu.available()[1])
SCAN_SHAPES = [  # (B, H, K, V, height, width): partial chunks at 16; V = 40 is two fp64 column groups
    pytest.param((2, 2, 4, 3, HEIGHT, WIDTH), id="B2-H2-K4-V3-5x7"),
    pytest.param((1, 1, 20, 40, 6, 9), id="B1-H1-K20-V40-6x9"),
    pytest.param((3, 2, 8, 8, 1, 11), id="B3-H2-K8-V8-1x11"),
]


def _scan_loss(inputs, shape, backend, chunk_size, directions="2d"):
    *_, height, width = shape
    out = scan2d(*inputs, height=height, width=width, backend=backend, chunk_size=chunk_size, directions=directions)
    weights = torch.randn(out.shape, generator=torch.Generator().manual_seed(3), dtype=out.dtype)
    return out, (out * weights).sum()


@FUSED
@pytest.mark.parametrize("shape", SCAN_SHAPES)
@pytest.mark.parametrize("chunk_size", [16, 64])
@pytest.mark.parametrize("directions", ["2d", "1d", ("col_bwd", "row_fwd")], ids=["2d", "1d", "two"])
def test_fused_scan_reads_the_orders_by_index_like_the_loop(shape, chunk_size, directions):
    batch, heads, dk, dv, height, width = shape
    inputs = dplr_inputs(batch, height * width, heads, dk, dv, requires_grad=True)
    ref, ref_loss = _scan_loss(inputs, shape, "naive", chunk_size, directions)
    expected = torch.autograd.grad(ref_loss, inputs)
    out, loss = _scan_loss(inputs, shape, "fused_recurrent", chunk_size, directions)
    assert out.shape == ref.shape and rel_err(out, ref) < 1e-12
    for name, g, e in zip(["q", "k", "v", "a", "b", "gk"], torch.autograd.grad(loss, inputs), expected, strict=True):
        assert rel_err(g, e) < 1e-10, name


@FUSED
@pytest.mark.parametrize("shape", SCAN_SHAPES)
@pytest.mark.parametrize("directions", ["2d", "1d"])
def test_fused_scan_merges_the_directions_like_the_loop(shape, directions):
    # the merged scan (the SEB's call): sum_d merge[d] o_d, and the gradients of every input and of the weights,
    # which the backward kernel takes from the merged gradient and the forward's per-direction outputs
    batch, heads, dk, dv, height, width = shape
    inputs = dplr_inputs(batch, height * width, heads, dk, dv, requires_grad=True)
    n_dirs = len(SCAN_DIRECTIONS[directions])
    merge = torch.randn(n_dirs, heads, dv, dtype=torch.float64, generator=torch.Generator().manual_seed(5))
    merge.requires_grad_()
    grad = torch.randn(batch, height * width, heads, dv, dtype=torch.float64,
                       generator=torch.Generator().manual_seed(6))
    ref = (scan2d(*inputs, height=height, width=width, directions=directions, backend="naive")
           * merge[:, None, None]).sum(0)
    out = scan2d(*inputs, height=height, width=width, directions=directions, backend="fused_recurrent",
                 chunk_size=16, merge=merge)
    assert out.shape == ref.shape and rel_err(out, ref) < 1e-12
    names = ["q", "k", "v", "a", "b", "gk", "merge"]
    got, expected = torch.autograd.grad(out, [*inputs, merge], grad), torch.autograd.grad(ref, [*inputs, merge], grad)
    for name, g, e in zip(names, got, expected, strict=True):
        assert rel_err(g, e) < 1e-10, name
    # without a gradient for the weights the forward keeps no outputs for them
    fixed = merge.detach()
    out = scan2d(*inputs, height=height, width=width, directions=directions, backend="fused_recurrent", merge=fixed)
    got = torch.autograd.grad(out, inputs, grad)
    assert all(rel_err(g, e) < 1e-10 for g, e in zip(got, expected[:-1], strict=True))


@pytest.mark.parametrize("backend", ["naive", pytest.param("fused_recurrent", marks=FUSED)])
def test_merge_weights_of_the_wrong_shape_are_refused(backend):
    inputs = dplr_inputs(1, HEIGHT * WIDTH, 2, 4, 3)
    with pytest.raises(ValueError, match=r"merge must be \[D, H, V\] = \[4, 2, 3\].*got \[4, 3\]"):
        scan2d(*inputs, height=HEIGHT, width=WIDTH, backend=backend, merge=torch.ones(4, 3, dtype=torch.float64))


@FUSED
def test_fused_scan_takes_the_models_strided_views_and_keeps_fp32_accuracy():
    # the SEB hands views [B, T, H, K] of [B, T, C] projections (heads interleaved); fp32 against the fp32 loop
    batch, heads, dk, height, width = 2, 2, 16, 6, 8
    inputs64 = dplr_inputs(batch, height * width, heads, dk, dk)
    flat = [x.float().flatten(2).requires_grad_() for x in inputs64]  # [B, T, C]
    views = [x.view(batch, height * width, heads, dk) for x in flat]
    exact = scan2d(*inputs64, height=height, width=width, backend="naive")
    loop = scan2d(*views, height=height, width=width, backend="naive")
    fused = scan2d(*views, height=height, width=width, backend="fused_recurrent")
    assert fused.dtype == torch.float32 and rel_err(fused, exact) < 10 * max(rel_err(loop, exact), 1e-7)
    grads = torch.autograd.grad(fused.square().sum(), flat)
    loop_grads = torch.autograd.grad(loop.square().sum(), flat)
    assert all(rel_err(g, e) < 1e-5 for g, e in zip(grads, loop_grads, strict=True))
    half = scan2d(*(x.bfloat16() for x in views), height=height, width=width, backend="fused_recurrent")
    assert half.dtype == torch.bfloat16


@FUSED
def test_fused_scan_is_counted_as_every_order_of_every_head():
    from torch.utils.flop_counter import FlopCounterMode

    from kernels.flops import count_kernels, recurrent_state_evolution_flops

    inputs = dplr_inputs(2, HEIGHT * WIDTH, 3, 4, 5)
    with FlopCounterMode(display=False) as counter, count_kernels(counter) as records:
        scan2d(*inputs, height=HEIGHT, width=WIDTH, backend="fused_recurrent")
    expected = recurrent_state_evolution_flops(batch=2, heads=3 * 4, seq_len=HEIGHT * WIDTH, dk=4, dv=5)
    assert records["state_evolution"].backends == ["fused_recurrent"]
    assert records["state_evolution"].analytic_flops == expected
