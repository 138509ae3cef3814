"""DiffIR (stage 1, stage 2, inpainting) and the IPR prior pieces in layers/prior.py.

Oracles: the official parameter counts (measured by building the upstream Zj-BinXia/DiffIR classes), an analytic count written from
the official module definitions, the official state-dict key layout (recorded below in compact form from
Zj-BinXia/DiffIR S1_arch.py / S2_arch.py / ldm/ddpm.py), the verified T=4 schedule values, and closed-form
properties of the DDPM posterior.
"""

from __future__ import annotations

import pytest
import torch

from baselines.diffir import diffir, diffir_inpaint, diffir_inpaint_s1, diffir_s1
from layers.prior import CPEN, IPRDiffusion, MLPDenoiser, linear_beta_schedule
from repro import build_model, get_descriptor

TINY = {"dim": 8, "num_blocks": (1, 1, 1, 2), "num_refinement_blocks": 1, "heads": (1, 2, 2, 4), "ffn_expansion_factor": 2.0,
        "n_encoder_res": 1}
TINY_INPAINT = {**TINY, "num_refinement_blocks": 0, "layernorm_type": "WithBias"}


pytestmark = pytest.mark.usefixtures("one_thread")


def n_params(m: torch.nn.Module) -> int:
    return sum(p.numel() for p in m.parameters())


# Official configurations: options/train_DiffIRS{1,2}_x4.yml and DiffIR-inpainting DiffIRS2-place2.yaml.
SR = {"in_ch": 3, "scale": 4, "dim": 64, "blocks": (13, 1, 1, 1), "refine": 13, "heads": (1, 2, 4, 8), "ffn": 2.2,
      "ln": "BiasFree", "n_res": 9}
INPAINT = {"in_ch": 4, "scale": None, "dim": 52, "blocks": (1, 1, 1, 9), "refine": 0, "heads": (1, 2, 4, 8), "ffn": 1.8,
           "ln": "WithBias", "n_res": 5}


def analytic_g(cfg: dict) -> int:
    """Parameters of the official DIRformer, written from S2_arch.py (bias=False in the blocks)."""
    def block(d: int, h: int) -> int:
        hid = int(d * cfg["ffn"])
        norms = 2 * (2 * d if cfg["ln"] == "WithBias" else d)
        attn = h + 256 * 2 * d + d * 3 * d + 3 * d * 9 + d * d
        ffn = d * 2 * hid + 2 * hid * 9 + hid * d + 256 * 2 * d
        return norms + attn + ffn

    c = cfg["dim"]
    (n1, n2, n3, n4), (h1, h2, h3, h4) = cfg["blocks"], cfg["heads"]
    total = cfg["in_ch"] * c * 9
    total += n1 * block(c, h1) + n2 * block(2 * c, h2) + n3 * block(4 * c, h3) + n4 * block(8 * c, h4)
    total += c * (c // 2) * 9 + 2 * c * c * 9 + 4 * c * 2 * c * 9  # downsamples
    total += 8 * c * 16 * c * 9 + 8 * c * 4 * c + n3 * block(4 * c, h3)  # up4_3, reduce3, decoder3
    total += 4 * c * 8 * c * 9 + 4 * c * 2 * c + n2 * block(2 * c, h2)  # up3_2, reduce2, decoder2
    total += 2 * c * 4 * c * 9 + n1 * block(2 * c, h1) + cfg["refine"] * block(2 * c, h1)  # up2_1, decoder1, refinement
    if cfg["scale"] is None:
        total += 2 * c * 3 * 9  # `output` conv, no bias
    else:
        total += 2 * (2 * c * 8 * c * 9 + 8 * c) + 2 * c * 3 * 9 + 3  # x4 Upsampler (two conv+PS, bias) + last conv
    return total


def analytic_cpen(in_ch: int, n_res: int) -> int:
    def conv(i: int, o: int) -> int:
        return i * o * 9 + o

    return conv(in_ch, 64) + n_res * 2 * conv(64, 64) + conv(64, 128) + conv(128, 128) + conv(128, 256) + 2 * (256 * 256 + 256)


DENOISE = 513 * 256 + 256 + 256 * 256 + 256


def test_param_counts_sr_x4_official():
    s1, s2 = diffir_s1(), diffir()
    assert (n_params(s1), n_params(s1.G), n_params(s1.E)) == (24_801_478, 23_459_142, 1_342_336)
    assert (n_params(s2), n_params(s2.G), n_params(s2.condition), n_params(s2.denoise)) == (
        24_971_206, 23_459_142, 1_314_688, 197_376)
    assert analytic_g(SR) == 23_459_142 and analytic_cpen(51, 9) == 1_342_336 and analytic_cpen(3, 9) == 1_314_688
    assert DENOISE == 197_376


def test_param_counts_inpaint_official_config():
    # Derived from DiffIRS2-place2.yaml: the analytic formula above gives G 25,150,698; CPEN_S1 (112 in) 1,082,048;
    # CPEN_S2 (64 in) 1,054,400; denoiser 197,376.
    s1, s2 = diffir_inpaint_s1(), diffir_inpaint()
    assert analytic_g(INPAINT) == n_params(s1.G) == n_params(s2.G) == 25_150_698
    assert analytic_cpen(112, 5) == n_params(s1.E) == 1_082_048
    assert analytic_cpen(64, 5) == n_params(s2.condition) == 1_054_400
    assert n_params(s1) == 26_232_746 and n_params(s2) == 26_402_474
    assert s1.E.E[0].weight.shape == (64, 112, 3, 3) and s2.condition.E[0].weight.shape == (64, 64, 3, 3)


BLOCK_KEYS = ("norm1.body.weight", "attn.temperature", "attn.kernel.0.weight", "attn.qkv.weight", "attn.qkv_dwconv.weight",
              "attn.project_out.weight", "norm2.body.weight", "ffn.project_in.weight", "ffn.dwconv.weight",
              "ffn.project_out.weight", "ffn.kernel.0.weight")
SCHEDULE_BUFFERS = ("betas", "alphas_cumprod", "alphas_cumprod_prev", "sqrt_alphas_cumprod", "sqrt_one_minus_alphas_cumprod",
                    "log_one_minus_alphas_cumprod", "sqrt_recip_alphas_cumprod", "sqrt_recipm1_alphas_cumprod",
                    "posterior_variance", "posterior_log_variance_clipped", "posterior_mean_coef1", "posterior_mean_coef2")


def official_g_keys(blocks, refine, with_bias_ln: bool, tail: str) -> set[str]:
    keys = {"G.patch_embed.proj.weight", "G.reduce_chan_level3.weight", "G.reduce_chan_level2.weight"}
    keys |= {f"G.{m}.body.0.weight" for m in ("down1_2", "down2_3", "down3_4", "up4_3", "up3_2", "up2_1")}
    suffixes = BLOCK_KEYS + (("norm1.body.bias", "norm2.body.bias") if with_bias_ln else ())
    levels = {"encoder_level1": blocks[0], "encoder_level2": blocks[1], "encoder_level3": blocks[2], "latent": blocks[3],
                  "decoder_level3": blocks[2], "decoder_level2": blocks[1], "decoder_level1": blocks[0], "refinement": refine}
    keys |= {f"G.{lvl}.{i}.{s}" for lvl, n in levels.items() for i in range(n) for s in suffixes}
    tails = {"x4": ("tail.0.0", "tail.0.2", "tail.1"), "x3": ("tail.0.0", "tail.1")}
    if tail == "inpaint":
        keys.add("G.output.weight")
    else:
        keys |= {f"G.{t}.{p}" for t in tails[tail] for p in ("weight", "bias")}
    return keys


def official_cpen_keys(prefix: str, n_res: int) -> set[str]:
    idx = [0] + [f"{2 + i}.body.{j}" for i in range(n_res) for j in (0, 2)] + [2 + n_res, 4 + n_res, 6 + n_res]
    keys = {f"{prefix}E.{i}.{p}" for i in idx for p in ("weight", "bias")}
    return keys | {f"{prefix}mlp.{i}.{p}" for i in (0, 2) for p in ("weight", "bias")}


def official_s2_prior_keys(n_res: int) -> set[str]:
    denoise = {f"resmlp.{m}.{p}" for m in ("0", "2.resmlp.0") for p in ("weight", "bias")}
    keys = official_cpen_keys("condition.", n_res) | official_cpen_keys("diffusion.condition.", n_res)
    keys |= {f"denoise.{k}" for k in denoise} | {f"diffusion.model.{k}" for k in denoise}
    return keys | {f"diffusion.{b}" for b in SCHEDULE_BUFFERS}


def test_state_dict_keys_equal_official_sr_x4():
    g = official_g_keys(SR["blocks"], SR["refine"], False, "x4")
    assert set(diffir_s1().state_dict()) == g | official_cpen_keys("E.", 9)
    assert set(diffir().state_dict()) == g | official_s2_prior_keys(9)


def test_state_dict_keys_equal_official_inpaint():
    g = official_g_keys(INPAINT["blocks"], 0, True, "inpaint")
    assert set(diffir_inpaint_s1().state_dict()) == g | official_cpen_keys("E.", 5)
    assert set(diffir_inpaint().state_dict()) == g | official_s2_prior_keys(5)


def test_state_dict_layout_official_x2():
    """The official x2 models (S1_arch.py / S2_arch.py with scale 2) pixel-unshuffle the LR input by 2 before G's patch
    embedding and CPEN_S2, feed CPEN_S1 cat[PU2(LQ), PU4(GT)] and keep the x4 tail; only these shapes differ from x4
    (recorded from the official code at dim 64)."""
    s1, s2 = diffir_s1(scale=2), diffir(scale=2)
    g = official_g_keys(SR["blocks"], SR["refine"], False, "x4")
    assert set(s1.state_dict()) == g | official_cpen_keys("E.", 9)
    assert set(s2.state_dict()) == g | official_s2_prior_keys(9)
    x4_s1, x4_s2 = diffir_s1().state_dict(), diffir().state_dict()
    differ_s1 = {k: tuple(v.shape) for k, v in s1.state_dict().items() if v.shape != x4_s1[k].shape}
    differ_s2 = {k: tuple(v.shape) for k, v in s2.state_dict().items() if v.shape != x4_s2[k].shape}
    assert differ_s1 == {"G.patch_embed.proj.weight": (64, 12, 3, 3), "E.E.0.weight": (64, 60, 3, 3)}
    assert differ_s2 == {"G.patch_embed.proj.weight": (64, 12, 3, 3), "condition.E.0.weight": (64, 12, 3, 3),
                         "diffusion.condition.E.0.weight": (64, 12, 3, 3)}
    assert get_descriptor("diffir", scale=2).size_multiple == 16 and get_descriptor("diffir").size_multiple == 8


def test_x3_is_an_extension_with_a_x3_tail():
    """DiffIR has no official x3: ours runs G at the LR size with a x3 tail and CPEN_S1 on cat[LQ, PU3(GT)]."""
    m = diffir_s1(scale=3, **TINY)
    assert set(m.state_dict()) == official_g_keys(TINY["num_blocks"], 1, False, "x3") | official_cpen_keys("E.", 1)
    assert m.G.tail[0][0].weight.shape[0] == 9 * 2 * TINY["dim"] and m.E.E[0].weight.shape[1] == 3 + 27


def test_official_state_dict_round_trip_strict():
    src, dst = diffir(**TINY), diffir(**TINY)
    dst.load_state_dict(src.state_dict(), strict=True)
    assert dst.diffusion.model is dst.denoise and dst.diffusion.condition is dst.condition
    assert torch.equal(dst.denoise.resmlp[0].weight, src.denoise.resmlp[0].weight)


@pytest.mark.parametrize("scale", [2, 3, 4])
def test_forward_shapes_sr(scale):
    s1, s2 = diffir_s1(scale=scale, **TINY).eval(), diffir(scale=scale, **TINY).eval()
    lq, gt = torch.rand(2, 3, 13, 11), torch.rand(2, 3, 13 * scale, 11 * scale)
    with torch.no_grad():
        assert s1(lq, gt).shape == gt.shape
        assert s2(lq).shape == gt.shape
        assert s1.encode_prior(lq, gt).shape == (2, 256)


@pytest.mark.parametrize("scale,size", [(2, 16), (4, 8)])
def test_padding_crops_back_consistently(scale, size):
    """On an input already a multiple of the size multiple (16 at x2, 8 at x4), the padded path equals G applied
    directly to (lq, CPEN_S1(cat[PixelUnshuffle_u(lq), PixelUnshuffle_{s*u}(gt)])), u = 2 at x2 (official layout)."""
    m = diffir_s1(scale=scale, **TINY).eval()
    u = 2 if scale == 2 else 1
    lq, gt = torch.rand(1, 3, size, 2 * size), torch.rand(1, 3, scale * size, 2 * scale * size)
    pu = torch.nn.functional.pixel_unshuffle
    with torch.no_grad():
        z = m.E(torch.cat([pu(lq, u), pu(gt, scale * u)], 1))
        torch.testing.assert_close(m(lq, gt), m.G(lq, z))


def test_bad_inputs_raise():
    m = diffir(scale=4, **TINY)
    with pytest.raises(ValueError, match="lq of shape"):
        m(torch.rand(1, 4, 8, 8))
    with pytest.raises(ValueError, match="gt must have shape"):
        m.compute_losses(torch.rand(1, 3, 8, 8), torch.rand(1, 3, 16, 16), prior_s1=torch.zeros(1, 256))
    with pytest.raises(ValueError, match="scale"):
        diffir(scale=5, **TINY)


def test_registry_descriptors():
    assert build_model("diffir", scale=2, **TINY).descriptor.stage == 2
    d = build_model("diffir_inpaint_s1", **TINY_INPAINT).descriptor
    assert (d.stage, d.task, d.size_multiple) == (1, "inpaint", 8)


def _assert_all_grads(model: torch.nn.Module):
    missing = [n for n, p in model.named_parameters() if p.grad is None or not p.grad.abs().sum() > 0]
    assert not missing, f"no gradient reached {missing}"


def test_load_stage1_initialises_g_only():
    s1, s2 = diffir_s1(scale=2, **TINY), diffir(scale=2, **TINY)
    cond_before = s2.condition.E[0].weight.clone()
    loaded = s2.load_stage1(s1.state_dict())
    assert set(loaded) == {k for k in s1.state_dict() if k.startswith("G.")}
    for (name, p1), p2 in zip(s1.G.state_dict().items(), s2.G.state_dict().values()):
        assert torch.equal(p1, p2), name
    assert torch.equal(s2.condition.E[0].weight, cond_before)
    with pytest.raises(ValueError, match="G tensors are missing"):
        diffir(scale=2, **{**TINY, "dim": 16}).load_stage1(s1.state_dict())


def test_overfit_one_pair_stage1_then_stage2():
    torch.manual_seed(0)
    lq = torch.rand(1, 3, 8, 8)
    gt = torch.nn.functional.interpolate(lq, scale_factor=2, mode="bilinear", align_corners=False)
    s1 = diffir_s1(scale=2, **TINY)
    opt = torch.optim.Adam(s1.parameters(), lr=2e-3)
    first = s1.compute_losses(lq, gt)["total"].item()
    for _ in range(25):
        opt.zero_grad()
        loss = s1.compute_losses(lq, gt)["total"]
        loss.backward()
        opt.step()
    assert loss.item() < 0.3 * first
    s2 = diffir(scale=2, **TINY)
    s2.load_stage1(s1.state_dict())
    with torch.no_grad():
        prior = s1.encode_prior(lq, gt)
    opt = torch.optim.Adam(s2.parameters(), lr=2e-3)
    first_ipr = s2.compute_losses(lq, gt, prior_s1=prior)["l1_ipr"].item()
    for _ in range(25):
        opt.zero_grad()
        losses = s2.compute_losses(lq, gt, prior_s1=prior)
        losses["total"].backward()
        opt.step()
    assert losses["l1_ipr"].item() < 0.3 * first_ipr


def test_schedule_values_t4():
    d = IPRDiffusion(denoise=MLPDenoiser(), condition=CPEN(in_channels=3, n_encoder_res=1), timesteps=4)
    torch.testing.assert_close(d.betas, torch.tensor([0.1000, 0.2943, 0.5910, 0.9900]), atol=1e-4, rtol=0)
    torch.testing.assert_close(d.alphas_cumprod, torch.tensor([0.9000, 0.6351, 0.2598, 0.00260]), atol=1e-4, rtol=0)
    assert all(getattr(d, b).dtype == torch.float32 and getattr(d, b).shape == (4,) for b in d._SCHEDULE)


@pytest.mark.parametrize("timesteps", [4, 10])
def test_posterior_mean_identities(timesteps):
    """q(x_{t-1} | x_t, x0) has mean sqrt(abar_{t-1}) x0 when x_t = sqrt(abar_t) x0, and the last step returns x0."""
    d = IPRDiffusion(denoise=MLPDenoiser(timesteps=timesteps), condition=torch.nn.Identity(), timesteps=timesteps)
    ac = torch.cumprod(1 - linear_beta_schedule(timesteps, 0.1, 0.99), 0)
    ac_prev = torch.cat([torch.ones(1, dtype=torch.float64), ac[:-1]])
    lhs = d.posterior_mean_coef1.double() + d.posterior_mean_coef2.double() * ac.sqrt()
    torch.testing.assert_close(lhs, ac_prev.sqrt(), atol=1e-6, rtol=0)
    assert d.posterior_mean_coef1[0] == pytest.approx(1.0) and d.posterior_mean_coef2[0] == pytest.approx(0.0, abs=1e-7)


class _OracleDenoiser(torch.nn.Module):
    """Always predicts a fixed x0; records the timestep feature it was given."""

    def __init__(self, x0: torch.Tensor, timesteps: int) -> None:
        super().__init__()
        self.x0, self.ipr_dim, self.timesteps, self.calls = x0, x0.shape[1], timesteps, []

    def forward(self, x, t, c):
        self.calls.append((t.clone(), torch.is_grad_enabled()))
        return self.x0.expand_as(x)


def test_reverse_chain_with_perfect_denoiser_returns_x0():
    x0 = torch.randn(1, 256)
    oracle = _OracleDenoiser(x0, 4)
    d = IPRDiffusion(denoise=oracle, condition=CPEN(in_channels=3, n_encoder_res=1), timesteps=4)
    z = d(torch.rand(3, 3, 8, 8), generator=torch.Generator().manual_seed(1))
    torch.testing.assert_close(z, x0.expand(3, -1))
    assert [int(t[0]) for t, _ in oracle.calls] == [3, 2, 1, 0]


def test_denoiser_input_layout():
    """Input is cat[c, t / (10 T), x_t] (the timestep sits right after the 256 condition entries)."""
    den = MLPDenoiser(timesteps=4)
    seen = []
    den.resmlp[0].register_forward_hook(lambda mod, inp, out: seen.append(inp[0]))
    c, x = torch.full((2, 256), 7.0), torch.full((2, 256), -3.0)
    den(x, torch.tensor([3, 1]), c)
    feat = seen[0]
    assert feat.shape == (2, 513)
    assert torch.all(feat[:, :256] == 7.0) and torch.all(feat[:, 257:] == -3.0)
    torch.testing.assert_close(feat[:, 256], torch.tensor([3 / 40, 1 / 40]))


def test_training_path_noises_prior_and_runs_all_steps_with_grad():
    x0 = torch.randn(2, 256)
    oracle = _OracleDenoiser(torch.zeros(1, 256), 4)
    d = IPRDiffusion(denoise=oracle, condition=CPEN(in_channels=3, n_encoder_res=1), timesteps=4)
    g1, g2 = torch.Generator().manual_seed(5), torch.Generator().manual_seed(5)
    d(torch.rand(2, 3, 8, 8), x0.requires_grad_(), generator=g1)
    assert [int(t[0]) for t, _ in oracle.calls] == [3, 2, 1, 0]
    assert all(grad_on for _, grad_on in oracle.calls)  # no torch.no_grad() around the training chain
    # The first step sees x_T = sqrt(abar_3) x0 + sqrt(1 - abar_3) eps with the generator's first draw.
    eps = torch.randn(2, 256, generator=g2)
    expected = d.sqrt_alphas_cumprod[3] * x0 + d.sqrt_one_minus_alphas_cumprod[3] * eps
    seen = []
    d.model = _Recorder(seen)
    d(torch.rand(2, 3, 8, 8), x0, generator=torch.Generator().manual_seed(5))
    torch.testing.assert_close(seen[0], expected)


class _Recorder(torch.nn.Module):
    def __init__(self, seen: list) -> None:
        super().__init__()
        self.seen = seen

    def forward(self, x, t, c):
        self.seen.append(x.detach().clone())
        return torch.zeros_like(x)


def test_stage2_sampling_deterministic_for_seed():
    m = diffir(scale=2, **TINY).eval()
    lq = torch.rand(1, 3, 8, 8)
    with torch.no_grad():
        a = m(lq, generator=torch.Generator().manual_seed(123))
        b = m(lq, generator=torch.Generator().manual_seed(123))
        c = m(lq, generator=torch.Generator().manual_seed(124))
    assert torch.equal(a, b)
    assert not torch.equal(a, c)
