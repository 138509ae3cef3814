"""Test-time procedures: the official MambaIR split against a naive reading of its rule; the x8 self-ensemble."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from repro import build_model
from repro import test_procedures as tp


class PieceAware(nn.Module):
    """A non-local x``scale`` network: nearest upsampling + the input's mean + a ramp from the input's top-left corner.

    Its output on a piece depends on where the piece starts and on all of its pixels, so any error in the piece
    bounds, the stitching offsets or the padding changes the stitched result.
    """

    def __init__(self, scale):
        super().__init__()
        self.scale = scale

    def forward(self, x):
        h, w = x.shape[-2:]
        ramp = (torch.arange(h * self.scale)[:, None] * 0.01 + torch.arange(w * self.scale)[None, :] * 0.001).to(x)
        return F.interpolate(x, scale_factor=self.scale, mode="nearest") + x.mean(dim=(-2, -1), keepdim=True) + ramp


def naive_official_split(forward, lq, scale, threshold, divisor=10):
    """The official rule, read pixel by pixel: each output pixel is looked up in the output of the piece that owns it.

    A side of n LR pixels: k = n // threshold + 1 pieces; numpy-reflect padding by (k - n % k) % k at the end;
    core c = padded // k; overlap s = c // divisor; piece i reads [i c - s, (i + 1) c + s), without the overlap
    before the first piece and after the last; output pixel Y belongs to piece Y // (c * scale).
    """
    img = lq[0].numpy()
    h, w = img.shape[-2:]
    kh, kw = h // threshold + 1, w // threshold + 1
    ph, pw = (kh - h % kh) % kh, (kw - w % kw) % kw
    img = np.pad(img, ((0, 0), (0, ph), (0, pw)), mode="reflect")
    ch, cw = img.shape[1] // kh, img.shape[2] // kw
    sh, sw = ch // divisor, cw // divisor

    def window(i, k, c, s):
        return i * c - (s if i > 0 else 0), (i + 1) * c + (s if i < k - 1 else 0)

    outputs = {}
    result = np.zeros((3, h * scale, w * scale), dtype=np.float32)
    for yy in range(h * scale):
        i = yy // (ch * scale)
        y0, y1 = window(i, kh, ch, sh)
        for xx in range(w * scale):
            j = xx // (cw * scale)
            x0, x1 = window(j, kw, cw, sw)
            if (i, j) not in outputs:
                outputs[i, j] = forward(torch.from_numpy(np.ascontiguousarray(img[None, :, y0:y1, x0:x1])))[0].numpy()
            result[:, yy, xx] = outputs[i, j][:, yy - y0 * scale, xx - x0 * scale]
    return torch.from_numpy(result)[None]


@pytest.mark.parametrize("h,w,threshold,scale", [
    (37, 23, 10, 2),    # 4 x 3 pieces, padding on both sides, overlap 1
    (130, 57, 40, 2),   # 4 x 2 pieces, overlap 3 and 2
    (40, 9, 10, 3),     # split along the height only, no padding
    (60, 61, 20, 2),    # 4 x 4 pieces, padding 3 on the width
])
def test_mambair_split_matches_a_naive_reading_of_the_official_rule(h, w, threshold, scale):
    net = PieceAware(scale)
    lq = torch.rand(1, 3, h, w)
    with torch.no_grad():
        stitched = tp.mambair_split_forward(net, lq, scale, threshold=threshold)
        reference = naive_official_split(net, lq, scale, threshold)
        whole = net(lq)
    assert stitched.shape == (1, 3, h * scale, w * scale)
    torch.testing.assert_close(stitched, reference, atol=1e-6, rtol=0)
    assert not torch.allclose(stitched, whole)  # the split is not the whole-image forward for this network


def test_mambair_split_with_a_real_network_matches_the_reference():
    net = build_model("mambairv2_light", scale=2, embed_dim=12, depths=(1,), num_heads=(2,), d_state=4, window_size=4,
                      inner_rank=4, num_tokens=8).eval()
    lq = torch.rand(1, 3, 30, 21)
    with torch.no_grad():
        stitched = tp.mambair_split_forward(net, lq, 2, threshold=12)
        reference = naive_official_split(net, lq, 2, 12)
    torch.testing.assert_close(stitched, reference, atol=1e-5, rtol=0)


def test_mambair_split_below_the_official_threshold_is_the_plain_forward():
    net = PieceAware(2)
    lq = torch.rand(1, 3, 199, 150)
    with torch.no_grad():
        assert torch.equal(tp.mambair_split_forward(net, lq, 2), net(lq))  # both sides below 200: one piece
        small = torch.rand(1, 3, 11, 7)
        assert torch.equal(tp.mambair_split_forward(net, small, 2, threshold=12), net(small))
        tall = torch.rand(1, 3, 200, 30)  # 200 is cut in two (200 // 200 + 1)
        torch.testing.assert_close(tp.mambair_split_forward(net, tall, 2), naive_official_split(net, tall, 2, 200),
                                   atol=1e-6, rtol=0)
        assert not torch.allclose(tp.mambair_split_forward(net, tall, 2), net(tall))
    assert tp.MAMBAIR_SPLIT_THRESHOLD == 200 and tp.MAMBAIR_SHAVE_DIVISOR == 10


def test_official_procedure_per_family():
    net = PieceAware(2)
    lq = torch.rand(1, 3, 30, 30)
    for family in ("swinir", "hat"):
        wrap, note = tp.official_procedure(family, 2)
        assert wrap(net) is net and "== harness" in note
    for family in ("mambair", "mambairv2"):
        wrap, note = tp.official_procedure(family, 2)
        assert "200" in note
        with torch.no_grad():
            assert torch.equal(wrap(net)(lq), net(lq))  # 30 < 200: whole image
    with pytest.raises(ValueError, match="no official test procedure is recorded for the 'bicubic' family"):
        tp.official_procedure("bicubic", 2)


def test_dihedral_transforms_are_the_eight_symmetries_and_invert():
    x = torch.rand(1, 3, 5, 7)
    seen = set()
    for k in range(8):
        y = tp.dihedral(x, k)
        assert torch.equal(tp.inverse_dihedral(y, k), x)
        seen.add(y.numpy().tobytes())
    assert len(seen) == 8


def edsr_forward_x8(forward, lq):
    """EDSR's forward_x8 written with numpy: the inputs by compounding flips 'v', 'h' and a transpose 't', the
    outputs transformed back in reverse order, then the mean."""
    def t(v, op):
        a = v.numpy()
        a = {"v": a[..., ::-1], "h": a[..., ::-1, :], "t": a.swapaxes(-2, -1)}[op]
        return torch.from_numpy(np.ascontiguousarray(a))

    inputs = [lq]
    for op in ("v", "h", "t"):
        inputs += [t(v, op) for v in inputs]
    outs = [forward(v) for v in inputs]
    for i in range(8):
        if i > 3:
            outs[i] = t(outs[i], "t")
        if i % 4 > 1:
            outs[i] = t(outs[i], "h")
        if i % 2 == 1:
            outs[i] = t(outs[i], "v")
    return torch.stack(outs).mean(0)


def test_self_ensemble_is_edsrs_forward_x8_and_leaves_an_equivariant_network_unchanged():
    torch.manual_seed(0)
    conv = nn.Sequential(nn.Conv2d(3, 12, 3, padding=1), nn.PixelShuffle(2))  # not equivariant (a random kernel)
    lq = torch.rand(1, 3, 9, 6)
    with torch.no_grad():
        ens = tp.self_ensemble_forward(conv, lq)
        torch.testing.assert_close(ens, edsr_forward_x8(conv, lq), atol=1e-6, rtol=0)
        assert not torch.allclose(ens, conv(lq), atol=1e-3)
        nearest = lambda x: F.interpolate(x, scale_factor=3, mode="nearest")  # dihedral-equivariant
        torch.testing.assert_close(tp.self_ensemble_forward(nearest, lq), nearest(lq), atol=1e-6, rtol=0)
