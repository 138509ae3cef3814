"""The Bicubic baseline: MATLAB bicubic upscaling, checked against Pillow's float bicubic (Keys a = -0.5, same sample
centres) away from the borders, where the two differ only in boundary handling (mirror vs. clamp)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from baselines.bicubic import bicubic
from repro import build_model


@pytest.mark.parametrize("scale", [2, 3, 4])
def test_interior_matches_pillow_float_bicubic(scale):
    lq = torch.rand(1, 3, 11, 9, dtype=torch.float64)
    out = bicubic(scale=scale)(lq)
    assert out.shape == (1, 3, 11 * scale, 9 * scale) and out.dtype == torch.float64
    margin = 2 * scale
    for c in range(3):
        img = Image.fromarray(lq[0, c].numpy().astype(np.float32), mode="F")
        ref = np.asarray(img.resize((9 * scale, 11 * scale), Image.BICUBIC))
        np.testing.assert_allclose(out[0, c, margin:-margin, margin:-margin].numpy(), ref[margin:-margin, margin:-margin],
                                   atol=1e-5)


def test_constant_image_stays_constant_everywhere():
    out = bicubic(scale=3)(torch.full((2, 3, 5, 4), 0.3))
    torch.testing.assert_close(out, torch.full((2, 3, 15, 12), 0.3))


def test_registry_entry_is_parameter_free():
    model = build_model("bicubic", scale=2)
    assert sum(p.numel() for p in model.parameters()) == 0
    assert model.descriptor.family == "bicubic" and model.descriptor.scales == (2, 3, 4)
    assert model(torch.rand(1, 3, 7, 5)).shape == (1, 3, 14, 10)


def test_bad_inputs_raise():
    with pytest.raises(ValueError, match="RGB lq"):
        bicubic()(torch.rand(1, 4, 8, 8))
    with pytest.raises(ValueError, match="supports scales"):
        build_model("bicubic", scale=8)
