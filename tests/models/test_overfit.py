"""The model can learn: a tiny DiffRWKVIR fits one 48x48 patch pair to above 35 dB PSNR in a few hundred steps."""

import math

import pytest
import torch
import torch.nn.functional as F

from repro import build_model

pytestmark = pytest.mark.usefixtures("one_thread")


def test_tiny_model_overfits_a_single_patch_pair():
    torch.manual_seed(0)
    model = build_model("diffrwkvir_s1", scale=2, width=16, n_groups=1, depth=1, head_size=16, n_feats=16,
                        n_encoder_res=1, backend="chunk")
    # A smooth synthetic 48x48 HR patch (bicubic upsampling of 6x6 noise) and its 2x2-average 24x24 LR.
    hr = F.interpolate(torch.rand(1, 3, 6, 6), size=(48, 48), mode="bicubic", align_corners=False).clamp(0, 1)
    lq = F.avg_pool2d(hr, 2)
    steps = 200
    optimizer = torch.optim.Adam(model.parameters(), lr=5e-3)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, steps)
    with torch.no_grad():
        start = F.mse_loss(model(lq, hr).clamp(0, 1), hr).item()
    for _ in range(steps):
        loss = model.compute_losses(lq, hr)["total"]
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        schedule.step()
    with torch.no_grad():
        mse = F.mse_loss(model(lq, hr).clamp(0, 1), hr).item()
    psnr = 10 * math.log10(1 / mse)
    assert psnr > 35.0, f"PSNR {psnr:.2f} dB after {steps} steps (start {10 * math.log10(1 / start):.2f} dB)"
