"""SRCNN and VDSR: parameter counts (papers), the Y-channel colour path, SRCNN's test-time padding, training sanity.

Oracles: published parameter counts (SRCNN 8,032 weights + 97 biases; VDSR 665,921 with bias), scikit-image's
MATLAB-style rgb2ycbcr/ycbcr2rgb, scipy's ``correlate(mode="nearest")`` for MATLAB's ``imfilter(.., 'same',
'replicate')``, and MATLAB bicubic (``layers.imresize``) for the colour path.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy import ndimage
from skimage.color import rgb2ycbcr, ycbcr2rgb

from baselines.srcnn import SRCNN, rgb_to_ycbcr, srcnn, ycbcr_to_rgb
from baselines.vdsr import VDSR, vdsr
from layers.imresize import imresize
from repro import build_model

pytestmark = pytest.mark.usefixtures("one_thread")


def count(m: torch.nn.Module, kind: str) -> int:
    return sum(p.numel() for n, p in m.named_parameters() if n.endswith(kind))


def test_param_counts():
    m = srcnn()
    assert (count(m, "weight"), count(m, "bias")) == (8_032, 97)
    assert sum(p.numel() for p in vdsr().parameters()) == 665_921
    assert sum(p.numel() for p in vdsr(bias=False).parameters()) == 664_704
    assert len(vdsr().residual_layer) == 18  # 1 + 18 + 1 = 20 conv layers


def test_ycbcr_matches_skimage():
    rgb = torch.rand(2, 3, 5, 7, dtype=torch.float64)
    ref = rgb2ycbcr(rgb.permute(0, 2, 3, 1).numpy()) / 255.0
    ours = rgb_to_ycbcr(rgb).permute(0, 2, 3, 1).numpy()
    np.testing.assert_allclose(ours, ref, atol=1e-12)
    back_ref = ycbcr2rgb(ref * 255.0)
    np.testing.assert_allclose(ycbcr_to_rgb(rgb_to_ycbcr(rgb)).permute(0, 2, 3, 1).numpy(), back_ref, atol=1e-4)
    torch.testing.assert_close(ycbcr_to_rgb(rgb_to_ycbcr(rgb)), rgb)
    assert rgb_to_ycbcr(torch.ones(1, 3, 1, 1))[0, 0].item() == pytest.approx(235 / 255)


@pytest.mark.parametrize("cls", [SRCNN, VDSR])
@pytest.mark.parametrize("scale", [2, 3, 4])
def test_identity_on_y_gives_bicubic(cls, scale, monkeypatch):
    model = cls(scale=scale)
    monkeypatch.setattr(model, "restore_y", lambda y: y)
    lq = torch.rand(2, 3, 9, 7)
    out = model(lq)
    assert out.shape == (2, 3, 9 * scale, 7 * scale)
    assert (out - imresize(lq, scale)).abs().max().item() < 1 / 255


def test_vdsr_is_residual_on_y():
    model = vdsr(scale=2, depth=4, width=8)
    torch.nn.init.zeros_(model.output.weight)
    torch.nn.init.zeros_(model.output.bias)
    y = torch.rand(1, 1, 6, 5)
    torch.testing.assert_close(model.restore_y(y), y)


def test_srcnn_same_replicate_padding_matches_imfilter():
    model = srcnn(scale=2, n1=3, n2=2)
    for conv in (model.conv1, model.conv2, model.conv3):
        torch.nn.init.normal_(conv.weight, std=0.1)
        torch.nn.init.normal_(conv.bias, std=0.1)
    y = torch.rand(1, 1, 11, 13, dtype=torch.float64)
    model = model.double()
    w1, b1 = model.conv1.weight.detach().numpy(), model.conv1.bias.detach().numpy()
    w2, b2 = model.conv2.weight.detach().numpy()[:, :, 0, 0], model.conv2.bias.detach().numpy()
    w3, b3 = model.conv3.weight.detach().numpy(), model.conv3.bias.detach().numpy()
    img = y[0, 0].numpy()
    f1 = np.stack([np.maximum(ndimage.correlate(img, w1[i, 0], mode="nearest") + b1[i], 0) for i in range(3)])
    f2 = np.maximum(np.einsum("oi,ihw->ohw", w2, f1) + b2[:, None, None], 0)
    f3 = sum(ndimage.correlate(f2[i], w3[0, i], mode="nearest") for i in range(2)) + b3[0]
    np.testing.assert_allclose(model.restore_y(y)[0, 0].detach().numpy(), f3, atol=1e-12)


def test_bad_inputs_raise():
    with pytest.raises(ValueError, match="RGB lq"):
        srcnn()(torch.rand(1, 1, 8, 8))
    with pytest.raises(ValueError, match="supports scales"):
        build_model("vdsr", scale=5)


def _y(x: torch.Tensor) -> torch.Tensor:
    return rgb_to_ycbcr(x)[:, :1]


@pytest.fixture
def patch_pair():
    torch.manual_seed(0)
    hr = imresize(torch.rand(1, 3, 8, 8), 4).clamp(0, 1)  # 32x32 with band-limited detail
    return imresize(hr, 1 / 2), hr


def _fit(model: torch.nn.Module, lq: torch.Tensor, hr: torch.Tensor, lr: float, steps: int) -> tuple[float, float]:
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    first = None
    for _ in range(steps):
        opt.zero_grad()
        loss = (_y(model(lq)) - _y(hr)).abs().mean()
        first = loss.item() if first is None else first
        loss.backward()
        opt.step()
    return first, loss.item()


def test_vdsr_overfits_one_pair_beyond_bicubic(patch_pair):
    lq, hr = patch_pair
    bicubic_l1 = (_y(imresize(lq, 2)) - _y(hr)).abs().mean().item()
    _, last = _fit(vdsr(scale=2, depth=5, width=16), lq, hr, lr=1e-3, steps=100)
    assert last < 0.8 * bicubic_l1


def test_srcnn_fits_one_pair(patch_pair):
    # SRCNN maps Y to Y from a N(0, 1e-3) start, so it first has to learn the identity: within a few seconds it
    # gets from ~0.45 (predicting ~0) to a few 1e-2, not yet below bicubic (the paper trains for 1e8 steps).
    lq, hr = patch_pair
    first, last = _fit(srcnn(scale=2, n1=16, n2=8), lq, hr, lr=1e-2, steps=300)
    assert first > 0.3 and last < 0.05 * first
