"""DiffRWKVIR networks: registry and profiles, shapes, gradients, sampling, the 2D scan's reach, backends."""

from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
import yaml

from kernels.fused_cpu import available
from models.sr_net import DiffRWKVIRSR
from repro import build_model, list_models

REPO = Path(__file__).resolve().parents[2]
TINY = yaml.safe_load((REPO / "config" / "models" / "diffrwkvir_tiny.yaml").read_text())
NAMES = ("diffrwkvir", "diffrwkvir_s1", "diffrwkvir_inpaint", "diffrwkvir_inpaint_s1")


pytestmark = pytest.mark.usefixtures("one_thread")


def _perturb(module: torch.nn.Module, std: float = 0.05) -> None:
    """Move every parameter off its initial value (zero-initialised output projections block gradients at init).

    The channel-attention bottleneck biases are set positive: a ReLU unit that is off for the input passes no
    gradient to its weights, which is correct but would read as a dead parameter.
    """
    with torch.no_grad():
        for name, p in module.named_parameters():
            p.add_(std * torch.randn_like(p))
            if name.endswith("cab.3.attention.1.bias"):  # CAB's channel-attention squeeze
                p.fill_(1.0)


def _pair(name: str, batch: int = 1, size: tuple[int, int] = (7, 9), scale: int = 4):
    if "inpaint" in name:
        image, mask = torch.rand(batch, 3, *size), (torch.rand(batch, 1, *size) > 0.7).float()
        return torch.cat([image * (1 - mask), mask], dim=1), image
    return torch.rand(batch, 3, *size), torch.rand(batch, 3, size[0] * scale, size[1] * scale)


def _restore(model, name, lq, gt):
    """Stage 1 encodes the ground truth (``forward(lq, gt)``); stage 2 restores from ``lq`` alone."""
    return model(lq, gt) if name.endswith("_s1") else model(lq)


def _losses(model, name, lq, gt):
    if name.endswith("_s1"):
        return model.compute_losses(lq, gt)
    return model.compute_losses(lq, gt, prior_s1=torch.randn(lq.shape[0], model.diffusion.ipr_dim))


@pytest.mark.parametrize("profile", ["diffrwkvir_tiny", "diffrwkvir_cpu"])
def test_profiles_build_every_registered_model(profile):
    cfg = yaml.safe_load((REPO / "config" / "models" / f"{profile}.yaml").read_text())
    assert set(NAMES) <= set(list_models("diffrwkvir*"))
    assert set(cfg) == set(NAMES)
    for name in NAMES:
        model = build_model(name, **cfg[name]).eval()
        assert model.descriptor.stage == (1 if name.endswith("_s1") else 2)
        lq, gt = _pair(name, size=(8, 8))
        with torch.no_grad():
            out = _restore(model, name, lq, gt)
        assert out.shape == gt.shape and torch.isfinite(out).all()


VARIANTS = [{}, {"shift": "uni"}, {"shift": "quad"}, {"mixer": "attention"}, {"mixer": "resnet"}, {"ffn": "mlp_relu"},
            {"ffn": "mlp_gelu"}, {"ffn": "gated_mlp"}, {"scan": "1d"}]


@pytest.mark.parametrize("variant", VARIANTS, ids=lambda v: "-".join(v.values()) or "default")
def test_every_parameter_receives_a_gradient_in_every_variant(variant):
    model = build_model("diffrwkvir_s1", scale=2, **TINY["diffrwkvir_s1"], **variant)
    lq, gt = _pair("diffrwkvir_s1", size=(6, 5), scale=2)
    _losses(model, "diffrwkvir_s1", lq, gt)["total"].backward()
    assert [n for n, p in model.named_parameters() if p.grad is None] == []
    model.zero_grad()
    _perturb(model)
    _losses(model, "diffrwkvir_s1", lq, gt)["total"].backward()
    dead = [n for n, p in model.named_parameters() if not (torch.isfinite(p.grad).all() and p.grad.abs().sum() > 0)]
    assert dead == []


def test_stage2_losses_run_all_steps_from_the_noised_stage1_prior():
    model = build_model("diffrwkvir", scale=4, **TINY["diffrwkvir"])
    lq, gt = _pair("diffrwkvir", size=(6, 6))
    prior = torch.randn(1, model.diffusion.ipr_dim)
    losses = model.compute_losses(lq, gt, prior_s1=prior, generator=torch.Generator().manual_seed(3))
    z = model.predict_prior(lq, prior, generator=torch.Generator().manual_seed(3))
    torch.testing.assert_close(losses["ipr"], F.l1_loss(z, prior))
    torch.testing.assert_close(losses["l1"], F.l1_loss(model.net(lq, z), gt))
    torch.testing.assert_close(losses["total"], losses["l1"] + losses["ipr"])
    assert model.diffusion.num_timesteps == 5


def test_stage2_sampling_is_deterministic_for_a_fixed_seed():
    model = build_model("diffrwkvir", scale=2, timesteps=7, **TINY["diffrwkvir"]).eval()
    _perturb(model)
    lq = torch.rand(2, 3, 6, 7)
    with torch.no_grad():
        torch.manual_seed(11)
        first = model(lq)
        torch.manual_seed(11)
        second = model(lq)
        torch.manual_seed(12)
        other = model(lq)
        by_generator = model(lq, generator=torch.Generator().manual_seed(11))
    assert torch.equal(first, second)
    assert torch.equal(first, by_generator)
    assert not torch.allclose(first, other)


def _corner_response(net: torch.nn.Module, size: int = 16) -> tuple[float, float]:
    """Output change at the bottom-right corner when the top-left input pixel changes, and vice versa."""
    x = torch.rand(1, 3, size, size)
    y = x.clone()
    y[:, :, 0, 0] += 1.0
    z = x.clone()
    z[:, :, -1, -1] += 1.0
    with torch.no_grad():
        base, top_left, bottom_right = net(x), net(y), net(z)
    s = base.shape[-1] // size
    return (float((top_left - base)[..., -s:, -s:].abs().max()), float((bottom_right - base)[..., :s, :s].abs().max()))


def test_2d_scan_sees_the_whole_image_and_1d_scan_is_causal():
    def net(**kwargs):
        # A per-pixel FFN: CAB's channel attention pools over the whole image and would hide what the scan reaches.
        model = DiffRWKVIRSR(scale=2, width=16, n_groups=1, depth=1, head_size=16, prior_dim=None, ffn="mlp_gelu",
                             backend="chunk", **kwargs).eval()
        _perturb(model, std=0.2)
        return model

    forward, backward = _corner_response(net())
    assert forward > 1e-6 and backward > 1e-6
    forward, backward = _corner_response(net(scan="1d"))
    assert forward > 1e-6 and backward == 0.0  # the row-major scan only looks back
    # The convolutions alone do not reach across a 16x16 input, so the reach above is the scan's.
    assert _corner_response(net(mixer="resnet")) == (0.0, 0.0)


def test_chunk_fused_and_naive_backends_give_the_same_network_output():
    backends = ("naive", "chunk", "fused_recurrent") if available()[0] else ("naive", "chunk")
    models = {backend: build_model("diffrwkvir", scale=2, backend=backend, **TINY["diffrwkvir"]).eval()
              for backend in backends}
    _perturb(models["naive"])
    for backend in backends[1:]:
        models[backend].load_state_dict(models["naive"].state_dict())
    lq = torch.rand(1, 3, 11, 10)
    with torch.no_grad():
        out = {b: m(lq, generator=torch.Generator().manual_seed(0)) for b, m in models.items()}
    for backend in backends[1:]:
        torch.testing.assert_close(out[backend], out["naive"], rtol=1e-4, atol=1e-4)


def test_eval_mode_reparameterisation_keeps_the_output():
    model = build_model("diffrwkvir_s1", scale=2, **TINY["diffrwkvir_s1"])
    _perturb(model)
    lq, gt = _pair("diffrwkvir_s1", size=(6, 6), scale=2)
    with torch.no_grad():
        torch.testing.assert_close(model.eval()(lq, gt), model.train()(lq, gt), rtol=0, atol=1e-5)


def test_stage2_loads_the_stage1_network_and_keeps_no_stage1_cpen():
    s1 = build_model("diffrwkvir_s1", scale=4, **TINY["diffrwkvir_s1"])
    s2 = build_model("diffrwkvir", scale=4, **TINY["diffrwkvir"])
    _perturb(s1)
    s2.load_stage1(s1.state_dict())
    for key, value in s1.net.state_dict().items():
        assert torch.equal(s2.net.state_dict()[key], value), key
    assert not any(k.startswith("cpen.") for k in s2.state_dict())
    with pytest.raises(ValueError, match="net"):
        s2.load_stage1({"cpen.E.0.weight": torch.zeros(1)})


def test_paper_profile_matches_table4_parameter_count():
    n_params = sum(p.numel() for p in build_model("diffrwkvir", scale=4).parameters())
    assert abs(n_params / 11.04e6 - 1) < 0.05, n_params


def test_bad_inputs_are_named():
    with pytest.raises(ValueError, match="ttt.*attention.*resnet"):
        build_model("diffrwkvir", mixer="mamba", **TINY["diffrwkvir"])
    with pytest.raises(ValueError, match="cab.*mlp_relu.*mlp_gelu.*gated_mlp"):
        build_model("diffrwkvir_inpaint", ffn="swiglu", **TINY["diffrwkvir_inpaint"])
    with pytest.raises(ValueError, match="2d.*1d"):
        build_model("diffrwkvir_s1", scan="3d", **TINY["diffrwkvir_s1"])
    with pytest.raises(ValueError, match="scale"):
        build_model("diffrwkvir", scale=8)
    s1 = build_model("diffrwkvir_s1", scale=2, **TINY["diffrwkvir_s1"])
    with pytest.raises(ValueError, match="RGB"):
        s1.net(torch.rand(1, 4, 8, 8))
    with pytest.raises(ValueError, match="gt"):
        s1(torch.rand(1, 3, 8, 8))
    with pytest.raises(ValueError, match="gt must be"):
        s1(torch.rand(1, 3, 8, 8), torch.rand(1, 3, 15, 16))
    with pytest.raises(ValueError, match="multiple of head_size"):
        build_model("diffrwkvir", width=20, head_size=16)
