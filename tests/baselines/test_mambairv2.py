"""MambaIRv2 (full and light): official parameter counts and keys, padding, deterministic eval routing, training."""

import itertools
import re

import pytest
import torch

from baselines.mambairv2 import mirror_pad
from repro import build_model

# Parameter counts of the official MambaIRv2 / MambaIRv2Light classes with the released option files (measured by building the upstream classes).
OFFICIAL_PARAMS = {("mambairv2", 4): 23_050_713, ("mambairv2", 2): 22_903_001,
                   ("mambairv2_light", 4): 789_680, ("mambairv2_light", 2): 774_092}

# Official state-dict keys (basicsr/archs/mambairv2_arch.py, mambairv2light_arch.py), brace-expanded;
# <i> = group, <j> = layer. relative_position_index_SA is a registered buffer there; the RGB mean and the shifted-window
# mask are not (the mask is recomputed for every input size).
TOP_KEYS = ["relative_position_index_SA", "{conv_first,patch_embed.norm,norm,conv_after_body}.{weight,bias}"]
GROUP_KEYS = "layers.<i>.conv.{weight,bias}"
LAYER = "layers.<i>.residual_group.layers.<j>."
LAYER_KEYS = [LAYER + "{norm1,norm2,norm3,norm4,wqkv,win_mhsa.proj,assm.out_norm,assm.out_proj,assm.in_proj.0,assm.CPE.0,"
                      "assm.route.0,assm.route.2}.{weight,bias}",
              LAYER + "{scale1,scale2,win_mhsa.relative_position_bias_table,embeddingA.weight,assm.embeddingB.weight}",
              LAYER + "assm.selectiveScan.{x_proj_weight,dt_projs_weight,dt_projs_bias,A_logs,Ds}"]
FFN_KEYS = {"mambairv2": LAYER + "{convffn1,convffn2}.{fc1,dwconv.depthwise_conv.0,fc2}.{weight,bias}",
            "mambairv2_light": LAYER + "{convffn1,convffn2}.{fc1,sg.norm,sg.conv,fc2}.{weight,bias}"}
TAIL_KEYS = {("mambairv2", 4): "{conv_before_upsample.0,upsample.0,upsample.2,conv_last}.{weight,bias}",
             ("mambairv2", 2): "{conv_before_upsample.0,upsample.0,conv_last}.{weight,bias}",
             ("mambairv2_light", 4): "upsample.0.{weight,bias}", ("mambairv2_light", 2): "upsample.0.{weight,bias}"}
# Official configurations: (C, depths, heads, d_state, inner_rank, num_tokens, mlp_ratio).
CONFIGS = {"mambairv2": (174, (6,) * 6, 6, 16, 64, 128, 2.0), "mambairv2_light": (48, (5,) * 4, 4, 8, 32, 64, 1.0)}

TINY = {"embed_dim": 12, "depths": (2, 1), "num_heads": (2, 3), "d_state": 4, "window_size": 4, "inner_rank": 4,
        "num_tokens": 5, "mlp_ratio": 2.0}


pytestmark = pytest.mark.usefixtures("one_thread")


def expand(pattern: str) -> list[str]:
    parts = re.split(r"(\{[^{}]*\})", pattern)
    return ["".join(c) for c in itertools.product(*[p[1:-1].split(",") if p.startswith("{") else [p] for p in parts])]


def official_keys(name: str, scale: int) -> set[str]:
    depths = CONFIGS[name][1]
    keys = {k for pat in TOP_KEYS + [TAIL_KEYS[name, scale]] for k in expand(pat)}
    for i, depth in enumerate(depths):
        keys |= set(expand(GROUP_KEYS.replace("<i>", str(i))))
        for j, pat in itertools.product(range(depth), LAYER_KEYS + [FFN_KEYS[name]]):
            keys |= set(expand(pat.replace("<i>", str(i)).replace("<j>", str(j))))
    return keys


@pytest.mark.parametrize("name", ["mambairv2", "mambairv2_light"])
@pytest.mark.parametrize("scale", [4, 2])
def test_official_parameter_count_keys_and_shapes(name, scale):
    with torch.device("meta"):  # shapes only: no memory, no initialisation cost
        model = build_model(name, scale=scale)
    assert sum(p.numel() for p in model.parameters()) == OFFICIAL_PARAMS[name, scale]
    sd = model.state_dict()
    assert set(sd) == official_keys(name, scale)
    c, depths, heads, n, rank, tokens, ratio = CONFIGS[name]
    hidden = int(c * ratio)
    r = -(-hidden // 16)
    last = f"layers.{len(depths) - 1}.residual_group.layers.{depths[-1] - 1}."
    expected = {"relative_position_index_SA": (256, 256),
                last + "win_mhsa.relative_position_bias_table": (31 * 31, heads),
                last + "assm.selectiveScan.x_proj_weight": (1, r + 2 * n, hidden),
                last + "assm.selectiveScan.dt_projs_weight": (1, hidden, r),
                last + "assm.selectiveScan.dt_projs_bias": (1, hidden),
                last + "assm.selectiveScan.A_logs": (hidden, n), last + "assm.selectiveScan.Ds": (hidden,),
                last + "embeddingA.weight": (rank, n), last + "assm.embeddingB.weight": (tokens, rank)}
    assert {k: tuple(sd[k].shape) for k in expected} == expected
    assert sd["relative_position_index_SA"].dtype == torch.int64
    assert model.descriptor.size_multiple == 16


def test_relative_position_index_is_swin_layout():
    model = build_model("mambairv2_light", scale=2, **TINY)
    rpi = model.relative_position_index_SA
    ws = 4
    # oracle: token p=(y1,x1), q=(y2,x2) -> (y1-y2+ws-1)*(2ws-1) + (x1-x2+ws-1)
    expected = torch.tensor([[(p // ws - q // ws + ws - 1) * (2 * ws - 1) + (p % ws - q % ws + ws - 1)
                              for q in range(ws * ws)] for p in range(ws * ws)])
    assert torch.equal(rpi, expected)


def test_mirror_pad_is_official_flip_concat():
    x = torch.arange(2 * 3 * 5 * 7, dtype=torch.float32).view(2, 3, 5, 7)
    official = torch.cat([x, x.flip(2)], 2)[:, :, :8]
    official = torch.cat([official, official.flip(3)], 3)[:, :, :, :12]
    assert torch.equal(mirror_pad(x, 8, 12), official)
    assert mirror_pad(x, 16, 16).shape == (2, 3, 16, 16)  # pads larger than the image repeat the mirroring


@pytest.mark.parametrize("name", ["mambairv2", "mambairv2_light"])
@pytest.mark.parametrize("scale", [2, 3, 4])
def test_tiny_forward_any_size_and_padding(name, scale):
    torch.manual_seed(0)
    model = build_model(name, scale=scale, **TINY).eval()
    lq = torch.rand(1, 3, 7, 5)
    with torch.no_grad():
        out = model(lq)
        padded = model(mirror_pad(lq, 8, 8))
    assert out.shape == (1, 3, 7 * scale, 5 * scale)
    assert torch.isfinite(out).all()
    torch.testing.assert_close(out, padded[..., :7 * scale, :5 * scale])
    with pytest.raises(ValueError, match=r"\[B, 3, h, w\]"):
        model(torch.rand(1, 1, 8, 8))


@pytest.mark.parametrize("name", ["mambairv2", "mambairv2_light"])
def test_eval_routing_is_deterministic(name):
    torch.manual_seed(0)
    model = build_model(name, scale=2, **TINY)
    lq = torch.rand(2, 3, 8, 12)
    with torch.no_grad():
        model.eval()
        torch.manual_seed(1)
        a = model(lq)
        torch.manual_seed(2)
        b = model(lq)
        model.train()  # the official Gumbel routing, random: two calls differ
        c, d = model(lq), model(lq)
    assert torch.equal(a, b)
    assert not torch.equal(c, d)


def test_tiny_overfits_one_patch(fit_l1):
    torch.manual_seed(0)
    model = build_model("mambairv2_light", scale=2, **TINY).train()
    hr = torch.rand(1, 3, 16, 16)
    lq = torch.nn.functional.avg_pool2d(hr, 2)
    losses = fit_l1(model, lq, hr, steps=100, lr=5e-3)
    assert losses[-1] < 0.15 * losses[0]
