"""SEB against a per-token loop in the paper's row-vector form (eq. 5, four scan orders); CAB (eq. 11); DSEB."""

import pytest
import torch
import torch.nn.functional as F

from kernels.fused_cpu import available
from models.dseb import DSEB
from models.ffn import build_ffn
from models.mixers import build_mixer
from models.seb import SEB

pytestmark = pytest.mark.usefixtures("one_thread")


def _perturb(module: torch.nn.Module, std: float = 0.2) -> None:
    with torch.no_grad():
        for p in module.parameters():
            p.add_(std * torch.randn_like(p))


def _orders(h: int, w: int) -> list[list[tuple[int, int]]]:
    row = [(i, j) for i in range(h) for j in range(w)]
    col = [(i, j) for j in range(w) for i in range(h)]
    return [row, row[::-1], col, col[::-1]]


def _seb_reference(seb: SEB, x: torch.Tensor) -> torch.Tensor:
    """The SEB written out token by token, with the paper's V x K state and row vectors."""
    b, c, h, w = x.shape
    n, hs = seb.n_heads, seb.head_size
    xs = seb.shift(x)
    out = torch.zeros(b, c, h, w, dtype=x.dtype)
    for bi in range(b):
        feats = {}
        for i in range(h):
            for j in range(w):
                t, ts = x[bi, :, i, j], xs[bi, :, i, j]
                mixed = [t + (ts - t) * mu for mu in seb.mix]
                r, k, v = seb.receptance(mixed[0]), seb.key(mixed[2]), seb.value(mixed[3])
                decay = torch.exp(-torch.exp(-F.softplus(-(seb.decay_bias + seb.decay_lora(mixed[1]))) - 0.5))
                eta = torch.sigmoid(seb.eta_bias + seb.eta_lora(mixed[4]))
                k_hat = F.normalize((k * seb.key_norm_scale).view(n, hs), dim=-1)
                k_tilde = (k * (1 + (eta - 1) * seb.key_eta_scale)).view(n, hs)
                feats[i, j] = (r.view(n, hs), k_hat, k_tilde, v.view(n, hs), decay.view(n, hs), eta.view(n, hs),
                               seb.gate_lora(mixed[5]))
        merged = {p: torch.zeros(c, dtype=x.dtype) for p in feats}
        for d, order in enumerate(_orders(h, w)):
            state = torch.zeros(n, hs, hs, dtype=x.dtype)  # per head S: V x K
            for p in order:
                r, k_hat, k_tilde, v, decay, eta, _ = feats[p]
                for hd in range(n):
                    transition = torch.diag(decay[hd]) - torch.outer(k_hat[hd], eta[hd] * k_hat[hd])
                    state[hd] = state[hd] @ transition + torch.outer(v[hd], k_tilde[hd])
                o = torch.stack([state[hd] @ r[hd] for hd in range(n)]).reshape(c)
                merged[p] = merged[p] + seb.direction_weight[d] * o
        for (i, j), o in merged.items():
            normed = F.group_norm(o.view(1, c), n, seb.group_norm.weight, seb.group_norm.bias, seb.group_norm.eps)
            out[bi, :, i, j] = seb.output(normed.view(c) * feats[i, j][6])
    return out


@pytest.mark.parametrize(
    "backend",
    ["naive", "chunk", pytest.param("fused_recurrent", marks=pytest.mark.skipif(not available()[0], reason="no C++"))],
)
def test_seb_matches_the_paper_recurrence_in_four_scan_orders(backend):
    seb = SEB(dim=8, head_size=4, shift="quad", backend=backend, chunk_size=16).double()
    _perturb(seb)
    x = torch.randn(2, 8, 4, 3, dtype=torch.float64)
    with torch.no_grad():
        torch.testing.assert_close(seb(x), _seb_reference(seb, x), rtol=1e-8, atol=1e-8)


def test_fresh_seb_is_zero_and_decays_lie_in_rwkv7_range():
    seb = SEB(dim=16, head_size=8, layer_id=1, n_layers=4)
    x = torch.randn(1, 16, 5, 6)
    assert torch.equal(seb(x), torch.zeros_like(x))
    # RWKV-7's initial decays spread from slow to fast across channels, all in (exp(-exp(-0.5)), 1).
    log_decay = -torch.exp(-F.softplus(-seb.decay_bias.detach()) - 0.5)
    assert float(log_decay.exp().min()) > 0.545 and float(log_decay.exp().max()) < 1.0
    assert float(log_decay.exp().max() - log_decay.exp().min()) > 0.3


def test_channel_attention_block_matches_eq_11():
    cab = build_ffn("cab", dim=12)
    conv1, _, conv2, attention = cab.cab
    squeeze, excite = attention.attention[1], attention.attention[3]
    x = torch.randn(2, 12, 5, 7)
    hidden = F.gelu(F.conv2d(x, conv1.weight, conv1.bias, padding=1))
    feat = F.conv2d(hidden, conv2.weight, conv2.bias, padding=1)
    pooled = feat.mean(dim=(2, 3))  # GlobalAveragePooling
    hidden = F.relu(pooled @ squeeze.weight.flatten(1).T + squeeze.bias)
    weight = torch.sigmoid(hidden @ excite.weight.flatten(1).T + excite.bias)
    torch.testing.assert_close(cab(x), feat * weight[:, :, None, None])


def test_mlp_variants_have_about_the_cab_size():
    sizes = {kind: sum(p.numel() for p in build_ffn(kind, dim=96).parameters())
             for kind in ("cab", "mlp_relu", "mlp_gelu", "gated_mlp")}
    assert max(sizes.values()) / min(sizes.values()) < 1.1, sizes


def test_dseb_prior_modulation_is_x_gamma_plus_beta():
    block = DSEB(dim=8, head_size=4, prior_dim=6, mixer="resnet", ffn="mlp_gelu")
    _perturb(block)
    x, z = torch.randn(2, 8, 3, 4), torch.randn(2, 6)

    def reference(x, z):
        def modulate(h, kernel):
            gamma, beta = (z @ kernel.weight.T).chunk(2, dim=1)
            return h * (1 + gamma[:, :, None, None]) + beta[:, :, None, None]

        def norm(h, ln):
            return F.layer_norm(h.permute(0, 2, 3, 1), (8,), ln.weight, ln.bias, ln.eps).permute(0, 3, 1, 2)

        x = x + block.mixer(modulate(norm(x, block.norm1), block.modulation1.kernel))
        return x + block.ffn(modulate(norm(x, block.norm2), block.modulation2.kernel))

    torch.testing.assert_close(block(x, z), reference(x, z))
    with pytest.raises(ValueError, match="prior_dim"):
        DSEB(dim=8, head_size=4, mixer="resnet")(x, z)


def test_attention_mixer_is_global_softmax_attention():
    mixer = build_mixer("attention", dim=8, head_size=4, shift="omni", scan="2d", layer_id=0, n_layers=1, backend="naive",
                        chunk_size=64)
    _perturb(mixer)
    x = torch.randn(1, 8, 3, 5)
    tokens = x.flatten(2).transpose(1, 2)[0]  # [T, C]
    q, k, v = mixer.qkv(tokens).split(8, dim=-1)
    heads = []
    for hd in range(2):
        sl = slice(4 * hd, 4 * hd + 4)
        heads.append(torch.softmax(q[:, sl] @ k[:, sl].T / 2.0, dim=-1) @ v[:, sl])
    expected = mixer.proj(torch.cat(heads, dim=-1)).T.reshape(1, 8, 3, 5)
    torch.testing.assert_close(mixer(x), expected)


@pytest.mark.skipif(not available()[0], reason="no C++ compiler: the fused kernels are not built here")
def test_seb_inference_inputs_pass_equals_the_torch_expressions():
    # under torch.no_grad() on the CPU the SEB computes gk, a, b and k_tilde in one C++ pass; with autograd on it
    # runs the torch expressions: the two agree to fp32 rounding, and so do the blocks' outputs
    torch.manual_seed(0)
    seb = SEB(dim=40, head_size=20, layer_id=1, n_layers=3)  # a head of 20: a whole vector and a partial one
    _perturb(seb)
    x = torch.randn(2, 40, 5, 6)
    args = (torch.randn(2, 30, 40), torch.randn(2, 30, 40), torch.randn(2, 30, 40))
    with torch.no_grad():
        fused = seb._scan_inputs(*args)
        out = seb(x)
    reference = seb._scan_inputs(*args)
    assert all(r.requires_grad for r in reference[:1])  # the torch path ran (the parameters carry gradients)
    for got, expected in zip(fused, reference, strict=True):
        torch.testing.assert_close(got, expected.detach(), rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(out, seb(x).detach(), rtol=1e-4, atol=1e-5)
