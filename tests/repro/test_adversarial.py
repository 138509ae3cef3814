"""LaMa-style adversarial training of the inpainting networks: the PatchGAN, the R1 non-saturating loss against
closed forms, and the trainer with a discriminator (resumes exactly, refused for SR)."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from repro.train import checkpoint
from repro.train.adversarial import PatchDiscriminator, discriminator_loss, generator_term, settings
from repro.train.config import apply_overrides, load_profiles, resolve
from repro.train.loop import TrainingError, train

REPO = Path(__file__).resolve().parents[2]
PROFILES = [REPO / "config" / "config.yaml", REPO / "config" / "smoke.yaml"]

pytestmark = pytest.mark.usefixtures("one_thread")


def test_patchgan_gives_a_map_of_patch_logits():
    d = PatchDiscriminator(ndf=8, n_layers=3)
    out = d(torch.rand(2, 3, 64, 64))
    assert out.shape[:2] == (2, 1) and out.shape[-1] > 1 and torch.isfinite(out).all()
    convs = [m for m in d.modules() if isinstance(m, nn.Conv2d)]
    assert [c.stride[0] for c in convs] == [2, 2, 2, 1, 1] and convs[-1].out_channels == 1


class Constant(nn.Module):
    """A discriminator that says ``c`` everywhere, whatever it sees (its gradient, hence R1, is zero)."""

    def __init__(self, c: float) -> None:
        super().__init__()
        self.c = c

    def forward(self, x):
        return x[:, :1] * 0 + self.c


@pytest.mark.parametrize("hole", [0.0, 1.0])
def test_fake_counts_as_fake_in_the_hole_and_as_real_outside(hole):
    real, fake = torch.rand(2, 3, 8, 8), torch.rand(2, 3, 8, 8)
    c = torch.tensor(0.7)
    terms = discriminator_loss(Constant(0.7), real, fake, torch.full((2, 1, 8, 8), hole), gp_coef=1.0)
    fake_term = F.softplus(c) if hole else F.softplus(-c)
    torch.testing.assert_close(terms["d_total"], F.softplus(-c) + fake_term)
    assert terms["d_r1"] == 0
    torch.testing.assert_close(generator_term(Constant(0.7), fake, 10.0), 10 * F.softplus(-c))


def test_r1_is_the_squared_gradient_norm_of_the_real_logits():
    # a linear discriminator (1x1 conv, no bias): d(sum of logits)/d(pixel) = w, so |grad|^2 = H * W * |w|^2
    d = nn.Conv2d(3, 1, 1, bias=False)
    with torch.no_grad():
        d.weight.copy_(torch.tensor([0.5, -1.0, 2.0]).view(1, 3, 1, 1))
    real, fake, hole = torch.rand(4, 3, 6, 5), torch.rand(4, 3, 6, 5), torch.zeros(4, 1, 6, 5)
    with_r1 = discriminator_loss(d, real, fake, hole, gp_coef=0.25)
    without = discriminator_loss(d, real, fake, hole, gp_coef=0.0)
    torch.testing.assert_close(with_r1["d_r1"], torch.tensor(6 * 5 * 5.25))
    torch.testing.assert_close(with_r1["d_total"] - without["d_total"], 0.25 * with_r1["d_r1"])


def test_settings_are_off_at_weight_zero_and_refuse_unknown_keys():
    assert settings({}) is None and settings({"adversarial": {"weight": 0}}) is None
    assert settings({"adversarial": {"weight": 10}})["gp_coef"] == 0.001  # LaMa's lama-fourier.yaml
    with pytest.raises(ValueError, match="unknown keys"):
        settings({"adversarial": {"weight": 1, "ganloss": "hinge"}})


def _config(model: str, data_mirror: Path, tmp: Path, *sets: str) -> dict:
    cfg = resolve(load_profiles(PROFILES), model=model, scale=4)
    cfg = apply_overrides(cfg, [f"data_mirror={data_mirror}", f"train.cache_dir={tmp / 'cache'}",
                                "train.val_every=None", *sets])
    cfg["train"]["adversarial"] = {"weight": 10.0, "ndf": 8, "n_layers": 2}
    return cfg


def test_training_with_a_discriminator_resumes_exactly(data_mirror, tmp_path):
    cfg = _config("diffir_inpaint_s1", data_mirror, tmp_path)
    train(cfg, tmp_path / "once", progress=False)
    train(cfg, tmp_path / "twice", stop_at=2, progress=False)
    train(cfg, tmp_path / "twice", resume="auto", progress=False)
    a, b = (checkpoint.load(tmp_path / run / "checkpoints" / "last.pt") for run in ("once", "twice"))
    for key in ("model", "discriminator"):
        assert a[key].keys() == b[key].keys() and all(torch.equal(a[key][k], b[key][k]) for k in a[key]), key
    assert a["d_optimizer"]["state"]  # the discriminator was trained
    rows = list(csv.DictReader((tmp_path / "once" / "metrics.csv").open()))
    assert all("adv=" in r["terms"] and "d_total=" in r["terms"] for r in rows if r["terms"])
    losses = json.loads((tmp_path / "once" / "env.json").read_text())["losses"]
    assert losses["adversarial"].startswith("on: PatchGAN") and losses["perceptual"].startswith("off: ")


def test_an_sr_network_with_a_discriminator_is_refused(data_mirror, tmp_path):
    cfg = _config("srcnn", data_mirror, tmp_path)
    with pytest.raises(TrainingError, match="inpainting networks"):
        train(cfg, tmp_path / "sr", progress=False)
