"""Token shifts: the Uni/Quad shifts against per-pixel definitions, the Omni-Shift re-parameterisation."""

import pytest
import torch
import torch.nn.functional as F

from models.shifts import OmniShift, QuadShift, UniShift, build_shift


def test_uni_shift_is_previous_token_in_row_major_order():
    x = torch.randn(2, 3, 4, 5)
    out = UniShift()(x)
    b, c, h, w = x.shape
    for i in range(h):
        for j in range(w):
            t = i * w + j
            expected = torch.zeros(b, c) if t == 0 else x[:, :, (t - 1) // w, (t - 1) % w]
            torch.testing.assert_close(out[:, :, i, j], expected, rtol=0, atol=0)


def test_quad_shift_takes_the_four_neighbours_per_channel_quarter():
    x = torch.randn(1, 9, 4, 5)  # 9 channels: quarters of 2 plus one channel passed through
    out = QuadShift()(x)
    h, w = x.shape[-2:]
    neighbour = {0: (0, -1), 1: (0, 1), 2: (-1, 0), 3: (1, 0)}  # left, right, up, down
    for ch in range(9):
        for i in range(h):
            for j in range(w):
                if ch >= 8:
                    expected = x[0, ch, i, j]
                else:
                    di, dj = neighbour[ch // 2]
                    si, sj = i + di, j + dj
                    expected = x[0, ch, si, sj] if 0 <= si < h and 0 <= sj < w else torch.tensor(0.0)
                assert out[0, ch, i, j] == expected


def test_omni_shift_folded_equals_its_four_branches_with_their_gradients():
    torch.manual_seed(0)
    shift = OmniShift(dim=6).double()
    with torch.no_grad():
        shift.alpha.copy_(torch.randn(4))
    x = torch.randn(2, 6, 11, 7, dtype=torch.float64, requires_grad=True)
    grad = torch.randn(2, 6, 11, 7, dtype=torch.float64)
    inputs = [x, *shift.parameters()]
    folded, branches = shift(x), shift.branches(x)
    torch.testing.assert_close(folded, branches, rtol=0, atol=1e-12)
    for got, expected in zip(torch.autograd.grad(folded, inputs, grad), torch.autograd.grad(branches, inputs, grad),
                             strict=True):
        torch.testing.assert_close(got, expected, rtol=0, atol=1e-12)
    # The folded path is one depthwise 5x5 convolution, in training and in eval alike.
    for mode in (shift.train, shift.eval):
        torch.testing.assert_close(mode()(x), F.conv2d(x, shift.fused_weight(), padding=2, groups=6), rtol=0, atol=0)
    # Weight updates are picked up (nothing cached).
    with torch.no_grad():
        shift.conv3x3.weight.add_(1.0)
    torch.testing.assert_close(shift(x), shift.branches(x), rtol=0, atol=1e-12)


def test_omni_shift_with_only_the_identity_branch_is_the_identity():
    shift = OmniShift(dim=4)
    with torch.no_grad():
        shift.alpha.copy_(torch.tensor([1.0, 0.0, 0.0, 0.0]))
    x = torch.randn(1, 4, 6, 6)
    torch.testing.assert_close(shift(x), x)
    torch.testing.assert_close(shift.branches(x), x)


def test_unknown_shift_names_the_allowed_values():
    with pytest.raises(ValueError, match="uni.*quad.*omni"):
        build_shift("hex", dim=4)
