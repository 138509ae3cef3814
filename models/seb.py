"""State Evolution Block (Fig. 4): RWKV-7's time mix with a 2D scan, on feature maps [B, C, H, W].

Per head the state follows eq. 5 (the generalized delta rule, ``kernels.state_evolution``):
``S_t = S_{t-1} (diag(w_t) - k̂_t^T (η_t ⊙ k̂_t)) + v_t^T k̃_t``, ``o_t = S_t r_t^T``, read in the scan orders of
``kernels.SCAN_DIRECTIONS`` and merged with learned per-direction, per-channel weights.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from kernels import SCAN_DIRECTIONS, scan2d
from models.shifts import build_shift

__all__ = ["SCANS", "SEB", "LoRA", "lerp"]

SCANS = tuple(SCAN_DIRECTIONS)
_MIX_NAMES = ("r", "w", "k", "v", "eta", "g")
# RWKV-7's lerp init exponents per mix (larger: more of the shifted input in the low channels).
_MIX_POWERS = (0.2, 0.9, 0.7, 0.7, 0.9, 0.2)


def _fused_inputs(backend: str, device: torch.device) -> bool:
    """Whether the SEB's scan inputs take the fused C++ pass: the CPU kernels run the scan and are built."""
    from kernels.api import resolve_backend

    return device.type == "cpu" and resolve_backend(backend, device) == "fused_recurrent"


def lerp(a: torch.Tensor, b: torch.Tensor, mu: torch.Tensor) -> torch.Tensor:
    """LeRP of eq. 10: ``a + (b - a) * mu``, the learned per-channel interpolation between a token and its shift."""
    return a + (b - a) * mu


def lora_rank(dim: int, factor: float) -> int:
    """RWKV-7's LoRA sizes (``factor * sqrt(C)``), on a multiple of 8 and at least 8 for small widths."""
    return max(8, round(factor * math.sqrt(dim) / 8) * 8)


class LoRA(nn.Module):
    """LoRA of eq. 10: ``up(act(down(x)))``, the paper's ``A tanh(x B)`` (``B`` = down, ``A`` = up; the gate uses a
    sigmoid as RWKV-7). ``down`` starts at zero, so a fresh LoRA outputs zero.

    Args:
        dim: input (and default output) width.
        rank: inner width.
        act: ``"tanh"`` or ``"sigmoid"``.
        out_dim: output width. Default: ``dim``.
    """

    def __init__(self, *, dim: int, rank: int, act: str, out_dim: int | None = None) -> None:
        super().__init__()
        self.down = nn.Linear(dim, rank, bias=False)
        self.up = nn.Linear(rank, out_dim or dim, bias=False)
        self.act = {"tanh": torch.tanh, "sigmoid": torch.sigmoid}[act]
        nn.init.zeros_(self.down.weight)
        nn.init.orthogonal_(self.up.weight, gain=0.1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.up(self.act(self.down(x)))


class SEB(nn.Module):
    """Shift, LeRP mixes, r/k/v projections, LoRA decay and learning rate, 2D state evolution, GroupNorm, gate.

    Initialised as RWKV-7 (``rwkv7_train_simplified.py``): the output projection is zero, so a fresh block adds
    nothing to the residual stream, and decay rates spread from long to short memory across channels.

    Args:
        dim: channels C (a multiple of ``head_size``).
        head_size: channels per head (the state is head_size x head_size).
            Default: 32.
        shift: token shift, one of ``models.shifts.SHIFTS``.
            Default: ``"omni"``.
        scan: ``"2d"`` (four directions) or ``"1d"`` (row-major forward only).
            Default: ``"2d"``.
        layer_id: index of this block in the network (sets the initial mixes and decays).
            Default: 0.
        n_layers: number of blocks in the network.
            Default: 1.
        backend: state-evolution backend (``naive``, ``chunk``, ``fused_recurrent``, ``fla``, ``auto``).
            Default: ``"auto"``.
        chunk_size: chunk length of the chunked backends.
            Default: 64.
    """

    def __init__(self, *, dim: int, head_size: int = 32, shift: str = "omni", scan: str = "2d", layer_id: int = 0,
                 n_layers: int = 1, backend: str = "auto", chunk_size: int = 64) -> None:
        super().__init__()
        if dim % head_size:
            raise ValueError(f"SEB width {dim} must be a multiple of head_size {head_size}")
        if scan not in SCAN_DIRECTIONS:
            raise ValueError(f"unknown scan {scan!r}; expected one of {SCANS}")
        self.dim, self.head_size, self.n_heads = dim, head_size, dim // head_size
        self.scan, self.backend, self.chunk_size = scan, backend, chunk_size
        n_dirs = len(SCAN_DIRECTIONS[scan])

        self.shift = build_shift(shift, dim=dim)
        self.mix = nn.Parameter(torch.empty(len(_MIX_NAMES), dim))
        self.receptance = nn.Linear(dim, dim, bias=False)
        self.key = nn.Linear(dim, dim, bias=False)
        self.value = nn.Linear(dim, dim, bias=False)
        self.output = nn.Linear(dim, dim, bias=False)
        self.decay_lora = LoRA(dim=dim, rank=lora_rank(dim, 2.5), act="tanh")
        self.eta_lora = LoRA(dim=dim, rank=lora_rank(dim, 2.5), act="tanh")
        self.gate_lora = LoRA(dim=dim, rank=lora_rank(dim, 5.0), act="sigmoid")
        self.decay_bias = nn.Parameter(torch.empty(dim))
        self.eta_bias = nn.Parameter(torch.empty(dim))
        self.key_norm_scale = nn.Parameter(torch.empty(dim))
        self.key_eta_scale = nn.Parameter(torch.empty(dim))
        self.direction_weight = nn.Parameter(torch.full((n_dirs, dim), 1.0 / n_dirs))
        # RWKV-7's ln_x: eps = 1e-5 * head_size_divisor**2 with RWKV-LM's divisor 8, i.e. 64e-5.
        self.group_norm = nn.GroupNorm(self.n_heads, dim, eps=64e-5)
        self._init_rwkv7(layer_id, n_layers)

    @torch.no_grad()
    def _init_rwkv7(self, layer_id: int, n_layers: int) -> None:
        c = self.dim
        ratio_0_to_1 = layer_id / max(n_layers - 1, 1)
        ratio_1_to_0 = 1.0 - layer_id / n_layers
        channel = torch.arange(c, dtype=torch.float32) / c
        for i, power in enumerate(_MIX_POWERS):
            self.mix[i] = 1.0 - channel.pow(power * ratio_1_to_0)
        lin = torch.linspace(0.0, 1.0, c)
        self.decay_bias.copy_(-6.0 + 6.0 * lin.pow(1.0 + ratio_0_to_1**0.3) + 0.5)
        self.eta_bias.copy_(-0.19 + 0.4 * lin)
        self.key_norm_scale.copy_(0.71 - 0.1 * lin)
        self.key_eta_scale.fill_(1.02)
        for proj, bound in ((self.receptance, 0.5), (self.key, 0.05), (self.value, 0.5)):
            nn.init.uniform_(proj.weight, -bound / c**0.5, bound / c**0.5)
        nn.init.zeros_(self.output.weight)

    def _scan_inputs(self, k: torch.Tensor, lora_decay: torch.Tensor,
                     lora_eta: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """(gk, a, b, k_tilde) of the state evolution, each [B, T, C], from the key projection and the two LoRAs."""
        if not torch.is_grad_enabled() and k.dtype == torch.float32 and _fused_inputs(self.backend, k.device):
            # inference on the CPU: the expressions below in one C++ pass (kernels/csrc/seb_inputs_cpu.cpp)
            from kernels.fused_cpu import seb_scan_inputs

            return seb_scan_inputs(k, lora_decay, lora_eta, self.decay_bias, self.eta_bias, self.key_norm_scale,
                                   self.key_eta_scale, head_size=self.head_size)
        # RWKV-7's decay, -exp(-softplus(-z) - 0.5), is -exp(-0.5) sigmoid(z) (exp(-softplus(-z)) = sigmoid(z)): one
        # sigmoid instead of six elementwise passes; the log-decay lies in (-exp(-0.5), 0), the decay in (0.545, 1).
        log_decay = torch.sigmoid(self.decay_bias + lora_decay) * -math.exp(-0.5)
        eta = torch.sigmoid(self.eta_bias + lora_eta)
        heads = (*k.shape[:-1], self.n_heads, self.head_size)
        k_hat = F.normalize((k * self.key_norm_scale).view(heads), dim=-1).view(k.shape)
        k_tilde = k * (1.0 + (eta - 1.0) * self.key_eta_scale)
        return log_decay, -k_hat, eta * k_hat, k_tilde

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c, h, w = x.shape
        if c != self.dim:
            raise ValueError(f"SEB expects {self.dim} channels, got {c}")
        tokens = x.permute(0, 2, 3, 1).reshape(b, h * w, c)
        shifted = self.shift(x).permute(0, 2, 3, 1).reshape(b, h * w, c)
        # the six LeRP mixes of eq. 10, lerp(tokens, shifted, mu), share one difference: one subtraction and six
        # fused multiply-adds instead of six of each (elementwise passes dominate a 2-core CPU's forward)
        difference = shifted - tokens
        xr, xw, xk, xv, xeta, xg = (torch.addcmul(tokens, difference, mu) for mu in self.mix)

        r = self.receptance(xr)
        k = self.key(xk)
        v = self.value(xv)
        gate = self.gate_lora(xg)
        heads = (b, h * w, self.n_heads, self.head_size)
        # the rank-one terms' vectors of eq. 5: a = -k_hat, b = eta * k_hat; k becomes k_tilde
        gk, a_vec, b_vec, k = self._scan_inputs(k, self.decay_lora(xw), self.eta_lora(xeta))
        # the directions merged with their learned per-channel weights, in the scan (the fused kernel's backward
        # weighs the merged gradient itself: no per-direction gradient is stored)
        o = scan2d(r.view(heads), k.view(heads), v.view(heads), a_vec.view(heads), b_vec.view(heads), gk.view(heads),
                   height=h, width=w, directions=self.scan, scale=1.0, chunk_size=self.chunk_size, backend=self.backend,
                   merge=self.direction_weight.view(-1, self.n_heads, self.head_size))
        # RWKV-7's ln_x, GroupNorm(heads) of every token: a LayerNorm over each head's channels and the GroupNorm's
        # per-channel affine (a third faster than native_group_norm on [B*T, C], forward and backward)
        normed = F.layer_norm(o, (self.head_size,), eps=self.group_norm.eps).view(b, h * w, c)
        o = torch.addcmul(self.group_norm.bias, normed, self.group_norm.weight)
        out = self.output(o * gate)
        return out.view(b, h, w, c).permute(0, 3, 1, 2)
