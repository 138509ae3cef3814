"""The contract every registered network keeps (layers/registry.py): one parametrized test over ``list_models()``.

Each network is built small (``TINY``; a new registered name without an entry fails ``test_every_model_has_a_
tiny_config``) and checked for what the harness relies on: the descriptor, odd input sizes at every scale, the
smallest input, gradients, bf16 where the descriptor allows it, and exact tiling where it claims it. Model-specific
behaviour (official keys and counts, oracles of the blocks) stays in the per-model test files.
"""

from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
import yaml

from repro import build_model, get_descriptor, list_models

REPO = Path(__file__).resolve().parents[1]
_SWIN = {"img_size": 16, "embed_dim": 12, "depths": (2,), "num_heads": (2,), "window_size": 4, "drop_path_rate": 0.0}
_HAT = {**_SWIN, "compress_ratio": 3, "squeeze_factor": 4}
_MAMBA = {"embed_dim": 30, "depths": (1, 2), "d_state": 4, "mlp_ratio": 1.5, "drop_path_rate": 0.0}
_MAMBA2 = {"embed_dim": 12, "depths": (2, 1), "num_heads": (2, 3), "d_state": 4, "window_size": 4, "inner_rank": 4,
           "num_tokens": 5, "mlp_ratio": 2.0}
_DIFFIR = {"dim": 8, "num_blocks": (1, 1, 1, 2), "num_refinement_blocks": 1, "heads": (1, 2, 2, 4),
           "ffn_expansion_factor": 2.0, "n_encoder_res": 1}
_DIFFIR_INPAINT = {**_DIFFIR, "num_refinement_blocks": 0, "layernorm_type": "WithBias"}
TINY = {
    "bicubic": {}, "srcnn": {}, "vdsr": {"depth": 3, "width": 8},
    "swinir": _SWIN, "swinir_light": _SWIN, "hat": _HAT, "hat_s": _HAT,
    "mambair": _MAMBA, "mambair_light": _MAMBA, "mambairv2": _MAMBA2, "mambairv2_light": _MAMBA2,
    "diffir_s1": _DIFFIR, "diffir": _DIFFIR, "diffir_inpaint_s1": _DIFFIR_INPAINT, "diffir_inpaint": _DIFFIR_INPAINT,
    **yaml.safe_load((REPO / "config" / "models" / "diffrwkvir_tiny.yaml").read_text()),
}
NAMES = sorted(TINY)
SR_CASES = [(n, s) for n in NAMES if get_descriptor(n).task == "sr" for s in get_descriptor(n).scales]

pytestmark = pytest.mark.usefixtures("one_thread")


def build(name: str, scale: int | None = None) -> torch.nn.Module:
    return build_model(name, **TINY[name], **({} if scale is None else {"scale": scale}))


def pair(model: torch.nn.Module, height: int, width: int, batch: int = 1) -> tuple[torch.Tensor, torch.Tensor]:
    """An input of the network's kind and the matching ground truth (inpainting: masked image + mask, 1 on holes)."""
    d = model.descriptor
    gt = torch.rand(batch, 3, height * d.scale, width * d.scale)
    if d.task == "sr":
        return torch.rand(batch, 3, height, width), gt
    mask = (torch.rand(batch, 1, height, width) > 0.6).float()
    return torch.cat([gt * (1 - mask), mask], dim=1), gt


def restore(model: torch.nn.Module, lq: torch.Tensor, gt: torch.Tensor) -> torch.Tensor:
    """Stage 1 encodes the ground truth (``forward(lq, gt)``); stage 2 runs from seeded noise; others take lq alone."""
    stage = model.descriptor.stage
    if stage == 1:
        return model(lq, gt)
    if stage == 2:
        return model(lq, generator=torch.Generator().manual_seed(0))
    return model(lq)


def loss(model: torch.nn.Module, lq: torch.Tensor, gt: torch.Tensor) -> torch.Tensor:
    if model.descriptor.stage == 2:
        prior = torch.randn(lq.shape[0], model.diffusion.ipr_dim)
        return model.compute_losses(lq, gt, prior_s1=prior)["total"]
    if model.descriptor.stage == 1:
        return model.compute_losses(lq, gt)["total"]
    return F.l1_loss(model(lq), gt)


def test_every_model_has_a_tiny_config():
    assert set(TINY) == set(list_models())


@pytest.mark.parametrize("name", NAMES)
def test_descriptor_is_attached_and_consistent(name):
    model = build(name)
    d = model.descriptor
    assert d == get_descriptor(name) and d.name == name
    assert d.in_channels == (3 if d.task == "sr" else 4)
    assert d.tiling in ("exact", "blend") and d.size_multiple >= 1 and d.min_input_size >= 1
    assert (d.scales == (1,)) == (d.task == "inpaint") and d.scale in d.scales
    assert (d.stage is not None) == hasattr(model, "compute_losses")


@pytest.mark.parametrize("name,scale", SR_CASES, ids=[f"{n}-x{s}" for n, s in SR_CASES])
def test_sr_odd_sizes_at_every_scale(name, scale):
    model = build(name, scale).eval()
    lq, gt = pair(model, 13, 17, batch=2)
    with torch.no_grad():
        out = restore(model, lq, gt)
    assert out.shape == gt.shape and torch.isfinite(out).all()


@pytest.mark.parametrize("name", [n for n in NAMES if get_descriptor(n).task == "inpaint"])
def test_inpainting_odd_sizes(name):
    model = build(name).eval()
    lq, gt = pair(model, 13, 11)
    with torch.no_grad():
        out = restore(model, lq, gt)
    assert out.shape == gt.shape and torch.isfinite(out).all()


@pytest.mark.parametrize("name", [n for n in NAMES if get_descriptor(n).task == "inpaint"])
def test_inpainting_pads_as_the_official_inpainting_code(name):
    """An odd-sized input is padded with numpy's ``symmetric`` mode (LaMa's ``pad_img_to_modulo``, which DiffIR's
    inpainting code copies), not reflected: the output equals the crop of the output of the symmetric-padded input."""
    from layers.padding import pad_reflect_to_multiple, pad_symmetric_to_multiple

    model = _perturb_all(build(name).eval())
    lq, gt = pair(model, 13, 11)
    multiple = model.descriptor.size_multiple
    padded = [(pad(lq, multiple), pad(gt, multiple)) for pad in (pad_symmetric_to_multiple, pad_reflect_to_multiple)]
    with torch.no_grad():
        out = restore(model, lq, gt)
        symmetric, reflect = (restore(model, a, b)[..., :13, :11] for a, b in padded)
    torch.testing.assert_close(out, symmetric, rtol=0, atol=1e-6)
    assert (out - reflect).abs().max() > 1e-4  # the two paddings give different outputs, so the check can fail


def test_symmetric_padding_is_numpys():
    import numpy as np

    from layers.padding import pad_symmetric_to_multiple

    x = torch.arange(2 * 3 * 5, dtype=torch.float64).reshape(1, 2, 3, 5)
    for multiple in (4, 8):  # 8 pads 3 rows by 5: more than the side, mirrored again as numpy does
        want = np.pad(x.numpy(), ((0, 0), (0, 0), (0, -3 % multiple), (0, -5 % multiple)), mode="symmetric")
        np.testing.assert_array_equal(pad_symmetric_to_multiple(x, multiple).numpy(), want)


@pytest.mark.parametrize("name", NAMES)
def test_smallest_input_and_wrong_channels(name):
    model = build(name).eval()
    side = model.descriptor.min_input_size
    lq, gt = pair(model, side, side)
    with torch.no_grad():
        assert restore(model, lq, gt).shape == gt.shape
        lq, gt = pair(model, 8, 8)
        with pytest.raises(ValueError, match=f"B, {model.descriptor.in_channels}, "):
            restore(model, torch.cat([lq, lq[:, :1]], dim=1), gt)


def _perturb(model: torch.nn.Module) -> None:
    """Move every parameter off its initial value: zero-initialised output projections (SEB, ResNet mixer) pass no
    gradient at init. The channel-attention squeeze biases are set positive: a ReLU unit that is off for the whole
    input passes no gradient to its weights, which is correct but would read as a dead parameter."""
    with torch.no_grad():
        for n, p in model.named_parameters():
            p.add_(0.05 * torch.randn_like(p))
            if n.endswith("attention.1.bias"):
                p.fill_(1.0)


def _perturb_all(model: torch.nn.Module) -> torch.nn.Module:
    _perturb(model)
    return model


@pytest.mark.parametrize("name", [n for n in NAMES if n != "bicubic"])
def test_gradients_reach_every_parameter(name):
    inpaint = get_descriptor(name).task == "inpaint"
    model = build(name, None if inpaint else 2).train()
    _perturb(model)
    # 16 x 16 for the U-Nets: their bottleneck runs at 1/8, and a 1 x 1 map (one token) leaves the decay unused.
    lq, gt = pair(model, *((16, 16) if inpaint else (8, 8)), batch=2)
    loss(model, lq, gt).backward()
    params = dict(model.named_parameters())
    assert [n for n, p in params.items() if p.grad is None] == []
    assert [n for n, p in params.items() if not (torch.isfinite(p.grad).all() and p.grad.abs().sum() > 0)] == []


@pytest.mark.parametrize("name", [n for n in NAMES if get_descriptor(n).supports_bf16])
def test_bf16_autocast_stays_close_to_fp32(name):
    """What ``supports_bf16`` promises: bf16 autocast inference on the CPU stays finite and close to fp32."""
    model = build(name, None if get_descriptor(name).task == "inpaint" else 2).eval()
    lq, gt = pair(model, 13, 17)
    with torch.no_grad():
        ref = restore(model, lq, gt)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            low = restore(model, lq, gt)
    assert torch.isfinite(low).all()
    assert (low.float() - ref).abs().max().item() < 0.05


@pytest.mark.parametrize("name", [n for n in NAMES if get_descriptor(n).tiling == "exact"])
def test_exact_tiling_reproduces_the_whole_image_inside_a_margin(name):
    """What ``tiling == "exact"`` promises: a tile's output equals the whole image's output away from the tile border
    (here 3 LR pixels of bicubic support plus the convolutions' reach, ``3 s + 8`` HR pixels)."""
    scale = 2
    model = build(name, scale).eval()
    lq = torch.rand(1, 3, 40, 40)
    with torch.no_grad():
        whole, tile = model(lq), model(lq[..., 8:32, 8:32])
    m = 3 * scale + 8
    inner = slice(8 * scale + m, 32 * scale - m)
    torch.testing.assert_close(tile[..., m:-m, m:-m], whole[..., inner, inner], rtol=0, atol=1e-5)
