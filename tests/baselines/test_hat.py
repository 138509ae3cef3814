"""HAT baselines against the official implementation's facts.

Oracles: the parameter counts of the official models (XPixelGroup/HAT ``hat/archs/hat_arch.py`` with the
``options/test/HAT_SRx*.yml`` / ``HAT-S_SRx*.yml`` arguments); the state-dict layout read from that file and recorded
below; a naive per-pixel overlapping cross-attention; the padding rule of ``hat/models/hat_model.py:test``.
"""

from __future__ import annotations

import functools
import math

import pytest
import torch
import torch.nn.functional as F

from baselines.hat import OCAB, overlapping_relative_position_index, pad_like_hat_test
from repro import build_model, get_descriptor

TINY = {"img_size": 16, "embed_dim": 12, "depths": (2,), "num_heads": (2,), "window_size": 4, "compress_ratio": 3,
        "squeeze_factor": 4, "drop_path_rate": 0.0}


def n_params(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def official_hat_keys(*, scale: int, embed_dim: int, depths: tuple[int, ...], num_heads: tuple[int, ...], window_size: int,
                      compress_ratio: int, squeeze_factor: int, overlap_ratio: float, mlp_ratio: float) -> dict[str, tuple]:
    """Key -> shape of an official HAT state dict (params and persistent buffers), from hat_arch.py.

    Network-level buffers relative_position_index_SA [w^2, w^2] and relative_position_index_OCA [w^2, o^2]
    (o = w + int(overlap_ratio * w)); per HAB: norm1, attn.{relative_position_bias_table, qkv, proj} (no index
    buffer), conv_block.cab.{0, 2, 3.attention.1, 3.attention.3}, norm2, mlp.{fc1, fc2}; per group one OCAB
    ``overlap_attn`` with norm1, qkv, relative_position_bias_table [(w + o - 1)^2, heads], proj, norm2, mlp; then
    the group's ``conv``. Pixel-shuffle reconstruction as in SwinIR.
    """
    c, w, hidden = embed_dim, window_size, int(embed_dim * mlp_ratio)
    o = w + int(overlap_ratio * w)
    cc, cs = c // compress_ratio, c // squeeze_factor
    keys = {"relative_position_index_SA": (w * w, w * w), "relative_position_index_OCA": (w * w, o * o),
            "conv_first.weight": (c, 3, 3, 3), "conv_first.bias": (c,), "patch_embed.norm.weight": (c,),
            "patch_embed.norm.bias": (c,), "norm.weight": (c,), "norm.bias": (c,),
            "conv_after_body.weight": (c, c, 3, 3), "conv_after_body.bias": (c,),
            "conv_before_upsample.0.weight": (64, c, 3, 3), "conv_before_upsample.0.bias": (64,),
            "conv_last.weight": (3, 64, 3, 3), "conv_last.bias": (3,)}
    stages = [9] if scale == 3 else [4] * int(math.log2(scale))
    for k, mult in enumerate(stages):
        keys[f"upsample.{2 * k}.weight"] = (mult * 64, 64, 3, 3)
        keys[f"upsample.{2 * k}.bias"] = (mult * 64,)

    def transformer_parts(p: str) -> dict[str, tuple]:
        return {p + "norm1.weight": (c,), p + "norm1.bias": (c,), p + "norm2.weight": (c,), p + "norm2.bias": (c,),
                p + "mlp.fc1.weight": (hidden, c), p + "mlp.fc1.bias": (hidden,),
                p + "mlp.fc2.weight": (c, hidden), p + "mlp.fc2.bias": (c,)}

    for i, (depth, heads) in enumerate(zip(depths, num_heads)):
        keys[f"layers.{i}.conv.weight"] = (c, c, 3, 3)
        keys[f"layers.{i}.conv.bias"] = (c,)
        for j in range(depth):
            p = f"layers.{i}.residual_group.blocks.{j}."
            keys.update(transformer_parts(p))
            keys.update({p + "attn.relative_position_bias_table": ((2 * w - 1) ** 2, heads),
                         p + "attn.qkv.weight": (3 * c, c), p + "attn.qkv.bias": (3 * c,),
                         p + "attn.proj.weight": (c, c), p + "attn.proj.bias": (c,),
                         p + "conv_block.cab.0.weight": (cc, c, 3, 3), p + "conv_block.cab.0.bias": (cc,),
                         p + "conv_block.cab.2.weight": (c, cc, 3, 3), p + "conv_block.cab.2.bias": (c,),
                         p + "conv_block.cab.3.attention.1.weight": (cs, c, 1, 1),
                         p + "conv_block.cab.3.attention.1.bias": (cs,),
                         p + "conv_block.cab.3.attention.3.weight": (c, cs, 1, 1),
                         p + "conv_block.cab.3.attention.3.bias": (c,)})
        p = f"layers.{i}.residual_group.overlap_attn."
        keys.update(transformer_parts(p))
        keys.update({p + "relative_position_bias_table": ((w + o - 1) ** 2, heads), p + "qkv.weight": (3 * c, c),
                     p + "qkv.bias": (3 * c,), p + "proj.weight": (c, c), p + "proj.bias": (c,)})
    return keys


HAT_CONFIG = {"embed_dim": 180, "depths": (6,) * 6, "num_heads": (6,) * 6, "window_size": 16, "compress_ratio": 3,
              "squeeze_factor": 30, "overlap_ratio": 0.5, "mlp_ratio": 2.0}
HAT_S_CONFIG = dict(HAT_CONFIG, embed_dim=144, compress_ratio=24, squeeze_factor=24)


@functools.cache
def full_model(name: str, scale: int) -> torch.nn.Module:
    return build_model(name, scale=scale)


@pytest.mark.parametrize("name,scale,expected", [("hat", 4, 20_772_507), ("hat", 2, 20_624_795), ("hat_s", 4, 9_621_183)])
def test_full_model_matches_official_count_and_keys(name, scale, expected):
    model = full_model(name, scale)
    assert n_params(model) == expected
    spec = official_hat_keys(scale=scale, **(HAT_CONFIG if name == "hat" else HAT_S_CONFIG))
    assert {k: tuple(v.shape) for k, v in model.state_dict().items()} == spec
    assert sum(math.prod(s) for k, s in spec.items() if not k.startswith("relative_position_index")) == expected


@pytest.mark.parametrize("scale", [2, 3, 4])
def test_tiny_state_dict_keys_equal_official(scale):
    tiny = {**TINY, "depths": (3, 2), "num_heads": (2, 3)}
    model = build_model("hat", scale=scale, **tiny)
    spec = official_hat_keys(scale=scale, overlap_ratio=0.5, mlp_ratio=2.0,
                             **{k: v for k, v in tiny.items() if k not in ("drop_path_rate", "img_size")})
    assert {k: tuple(v.shape) for k, v in model.state_dict().items()} == spec


def test_state_dict_exact_keys_and_counts():
    sd = full_model("hat", 4).state_dict()
    assert len(sd) == 864
    assert sd["relative_position_index_OCA"].shape == (256, 576)
    assert sd["layers.5.residual_group.overlap_attn.relative_position_bias_table"].shape == (39 * 39, 6)
    assert sd["layers.0.residual_group.blocks.3.conv_block.cab.3.attention.1.weight"].shape == (6, 180, 1, 1)
    assert not any(k.endswith(("attn_mask", "attn.relative_position_index")) for k in sd)  # computed in forward


def test_descriptor():
    d = get_descriptor("hat", scale=2)
    assert (d.family, d.scale, d.size_multiple, d.supports_bf16, d.paper) == ("hat", 2, 16, True, "HAT[22]")
    assert get_descriptor("hat_s").size_multiple == 16


def test_bad_input_and_config():
    model = build_model("hat", scale=2, **TINY)
    with pytest.raises(ValueError, match="RGB"):
        model(torch.rand(1, 4, 8, 8))
    with pytest.raises(ValueError, match="scales"):
        build_model("hat_s", scale=5)
    with pytest.raises(ValueError, match="compress_ratio"):
        build_model("hat_s", scale=2, **{**TINY, "compress_ratio": 24, "squeeze_factor": 24})


def test_padding_follows_official_test():
    x = torch.arange(13.0).view(1, 1, 13, 1).expand(1, 1, 13, 16)
    padded = pad_like_hat_test(x, 16)
    # rows: reflected without repeating the edge; columns: already a multiple of 16, left alone (unlike SwinIR).
    assert padded.shape == (1, 1, 16, 16)
    assert padded[0, 0, :, 0].tolist() == list(range(13)) + [11.0, 10.0, 9.0]
    tiny = pad_like_hat_test(torch.arange(3.0).view(1, 1, 3, 1), 8)  # padding larger than the image
    assert tiny[0, 0, :, 0].tolist() == [0, 1, 2, 1, 0, 1, 2, 1]


@pytest.mark.parametrize("ws,overlap", [(4, 6), (8, 12)])
def test_overlapping_relative_position_index(ws, overlap):
    ours = overlapping_relative_position_index(ws, overlap)
    side = ws + overlap - 1
    seen: dict[int, tuple[int, int]] = {}
    for qi in range(ws * ws):
        for ki in range(overlap * overlap):
            (qy, qx), (ky, kx) = divmod(qi, ws), divmod(ki, overlap)
            # The official formula, written out per pair.
            assert ours[qi, ki] == (ky - qy + ws - overlap + 1) * side + (kx - qx + ws - overlap + 1)
            # What it must mean: one table entry (after PyTorch's wrap of negative indices) per displacement.
            entry = int(ours[qi, ki]) % side ** 2
            assert seen.setdefault(entry, (ky - qy, kx - qx)) == (ky - qy, kx - qx)
    assert len(seen) == side ** 2


def naive_ocab(ocab: OCAB, x: torch.Tensor, h: int, w: int, rpi: torch.Tensor) -> torch.Tensor:
    """OCAB per query pixel: keys/values from the zero-padded overlapping window around the query's window."""
    ws, os_, nh = ocab.window_size, ocab.overlap_size, ocab.num_heads
    c = x.shape[-1]
    d = c // nh
    pad = (os_ - ws) // 2
    q, k, v = ocab.qkv(ocab.norm1(x[0])).view(h, w, 3, nh, d).unbind(2)
    k, v = (F.pad(t.permute(2, 3, 0, 1), (pad, pad, pad, pad)).permute(2, 3, 0, 1) for t in (k, v))  # zeros outside
    out = torch.zeros(h, w, c)
    for r in range(h):
        for s in range(w):
            top, left = r // ws * ws, s // ws * ws
            qi = (r % ws) * ws + s % ws
            kk = k[top:top + os_, left:left + os_].reshape(os_ * os_, nh, d)
            vv = v[top:top + os_, left:left + os_].reshape(os_ * os_, nh, d)
            bias = ocab.relative_position_bias_table[rpi[qi]]  # [os^2, nh]
            logits = (q[r, s][None] * kk).sum(-1) * d ** -0.5 + bias
            out[r, s] = (logits.softmax(0)[..., None] * vv).sum(0).reshape(c)
    y = x[0] + ocab.proj(out.view(h * w, c))
    return (y + ocab.mlp(ocab.norm2(y)))[None]


def test_ocab_equals_naive_overlapping_attention():
    torch.manual_seed(0)
    ocab = OCAB(dim=8, window_size=4, overlap_ratio=0.5, num_heads=2, mlp_ratio=2.0)
    torch.nn.init.normal_(ocab.relative_position_bias_table, std=0.5)
    torch.nn.init.normal_(ocab.qkv.bias, std=0.5)  # nonzero bias: padded keys differ from qkv(0)
    h, w = 8, 12
    x = torch.randn(1, h * w, 8)
    rpi = overlapping_relative_position_index(4, 6)
    with torch.no_grad():
        torch.testing.assert_close(ocab(x, (h, w), rpi), naive_ocab(ocab, x, h, w, rpi), atol=1e-5, rtol=1e-5)


def test_tiny_model_overfits_one_patch(overfit_x2_psnr):
    torch.manual_seed(0)
    psnr, bicubic, ratio = overfit_x2_psnr(build_model("hat", scale=2, **TINY))
    # Measured here: 38.2 dB against bicubic's 25.3 dB; the loss falls to ~5% of its start.
    assert psnr > bicubic + 4.0 and ratio < 0.15, (psnr, bicubic, ratio)
