"""MambaIR: official parameter counts and state-dict keys, any-size forward, gradients, overfitting a patch."""

import itertools
import re

import pytest
import torch

from baselines.mambair import SS2D
from repro import build_model

# Parameter counts of the official csguoh/MambaIR MambaIR class with the released option files (measured by building the upstream classes).
OFFICIAL_PARAMS = {("mambair", 4): 20_569_575, ("mambair", 2): 20_421_863,
                   ("mambair_light", 4): 924_492, ("mambair_light", 2): 905_016}

# Official state-dict keys (basicsr/archs/mambair_arch.py), brace-expanded; <i> = residual group, <j> = block.
# The RGB mean is a plain attribute there, not a buffer, so it has no key.
TOP_KEYS = "{conv_first,patch_embed.norm,norm,conv_after_body}.{weight,bias}"
GROUP_KEYS = "layers.<i>.conv.{weight,bias}"
BLOCK = "layers.<i>.residual_group.blocks.<j>."
BLOCK_KEYS = [BLOCK + "{ln_1,ln_2}.{weight,bias}", BLOCK + "{skip_scale,skip_scale2}",
              BLOCK + "self_attention.{x_proj_weight,dt_projs_weight,dt_projs_bias,A_logs,Ds,in_proj.weight,out_proj.weight}",
              BLOCK + "self_attention.{conv2d,out_norm}.{weight,bias}"]
CAB_KEYS = {"classic": BLOCK + "conv_blk.cab.{0,2,3.attention.1,3.attention.3}.{weight,bias}",
            "light": BLOCK + "conv_blk.cab.{0,1,3,4,5.attention.1,5.attention.3}.{weight,bias}"}
TAIL_KEYS = {("classic", 4): "{conv_before_upsample.0,upsample.0,upsample.2,conv_last}.{weight,bias}",
             ("classic", 2): "{conv_before_upsample.0,upsample.0,conv_last}.{weight,bias}",
             ("light", 4): "upsample.0.{weight,bias}", ("light", 2): "upsample.0.{weight,bias}"}
# Shapes of the stacked per-direction SSM tensors in the official SS2D: K=4 directions, d_inner = expand*C,
# R = ceil(C/16), N = d_state.
SSM_SHAPES = {"x_proj_weight": lambda c, di, n: (4, -(-c // 16) + 2 * n, di),
              "dt_projs_weight": lambda c, di, n: (4, di, -(-c // 16)), "dt_projs_bias": lambda c, di, n: (4, di),
              "A_logs": lambda c, di, n: (4 * di, n), "Ds": lambda c, di, n: (4 * di,)}

TINY = {"embed_dim": 30, "depths": (1, 2), "d_state": 4, "mlp_ratio": 1.5, "drop_path_rate": 0.0}


pytestmark = pytest.mark.usefixtures("one_thread")


def expand(pattern: str) -> list[str]:
    parts = re.split(r"(\{[^{}]*\})", pattern)
    options = [p[1:-1].split(",") if p.startswith("{") else [p] for p in parts]
    return ["".join(c) for c in itertools.product(*options)]


def official_keys(kind: str, scale: int, depths: tuple[int, ...]) -> set[str]:
    keys = set(expand(TOP_KEYS)) | set(expand(TAIL_KEYS[kind, scale]))
    for i, depth in enumerate(depths):
        keys |= set(expand(GROUP_KEYS.replace("<i>", str(i))))
        for j, pat in itertools.product(range(depth), BLOCK_KEYS + [CAB_KEYS[kind]]):
            keys |= set(expand(pat.replace("<i>", str(i)).replace("<j>", str(j))))
    return keys


@pytest.mark.parametrize("name,kind,embed,d_state,expand_ratio,depths",
                         [("mambair", "classic", 180, 16, 2.0, (6,) * 6), ("mambair_light", "light", 60, 10, 1.2, (6,) * 4)])
@pytest.mark.parametrize("scale", [4, 2])
def test_official_parameter_count_and_keys(name, kind, embed, d_state, expand_ratio, depths, scale):
    with torch.device("meta"):  # shapes only: no memory, no initialisation cost
        model = build_model(name, scale=scale)
    assert sum(p.numel() for p in model.parameters()) == OFFICIAL_PARAMS[name, scale]
    sd = model.state_dict()
    assert set(sd) == official_keys(kind, scale, depths)
    di = int(expand_ratio * embed)
    for key, shape in SSM_SHAPES.items():
        assert sd[f"layers.{len(depths) - 1}.residual_group.blocks.5.self_attention.{key}"].shape == shape(embed, di, d_state)
    assert model.descriptor.size_multiple == 1 and model.descriptor.scale == scale


def test_ss2d_merges_directions_in_place():
    # With the four directions sharing parameters and a transpose-symmetric depthwise kernel, SS2D commutes with
    # transposing the image: the transposed image's four scans are the original's, in another order. This checks the
    # flips and transposes of the merge.
    torch.manual_seed(0)
    ss2d = SS2D(dim=8, d_state=4, expand=2.0).double()
    with torch.no_grad():
        for name in ("x_proj_weight", "dt_projs_weight", "dt_projs_bias"):
            getattr(ss2d, name).copy_(getattr(ss2d, name)[:1].expand_as(getattr(ss2d, name)))
        for name in ("A_logs", "Ds"):
            p = getattr(ss2d, name)
            p.copy_(p.view(4, -1, *p.shape[1:])[:1].expand(4, *[-1] * p.dim()).reshape(p.shape))
        ss2d.conv2d.weight.copy_((ss2d.conv2d.weight + ss2d.conv2d.weight.transpose(2, 3)) / 2)
        ss2d.A_logs.add_(torch.rand_like(ss2d.A_logs[:ss2d.A_logs.shape[0] // 4]).repeat(4, 1))
    x = torch.randn(2, 5, 7, 8, dtype=torch.float64)
    torch.testing.assert_close(ss2d(x.transpose(1, 2)), ss2d(x).transpose(1, 2))


def test_tiny_overfits_one_patch(fit_l1):
    torch.manual_seed(0)
    model = build_model("mambair_light", scale=2, **TINY).train()
    hr = torch.rand(1, 3, 16, 16)
    lq = torch.nn.functional.avg_pool2d(hr, 2)
    losses = fit_l1(model, lq, hr, steps=100, lr=5e-3)
    assert losses[-1] < 0.15 * losses[0]
