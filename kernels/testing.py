"""Random inputs in the stable range of each op and the error measure, for the tests and the benchmark."""

import torch
import torch.nn.functional as F


def rel_err(x: torch.Tensor, ref: torch.Tensor, floor: float = 1e-30) -> float:
    """Relative RMS error ||x - ref|| / max(||ref||, floor) (fla's test measure; the floor for references near 0)."""
    return ((x.double() - ref.double()).norm() / ref.double().norm().clamp_min(floor)).item()


def dplr_inputs(batch, seq_len, heads, dk, dv, *, dtype=torch.float64, decay=1.0, requires_grad=False):
    """RWKV-7-like inputs: a = -k_hat, b = eta * k_hat (||k_hat|| = 1, eta in (0, 1)), log-decay in [-decay, 0)."""
    shape = (batch, seq_len, heads, dk)
    q = torch.randn(shape, dtype=dtype)
    k = torch.randn(shape, dtype=dtype) / dk**0.5
    v = torch.randn(batch, seq_len, heads, dv, dtype=dtype)
    k_hat = F.normalize(torch.randn(shape, dtype=dtype), dim=-1)
    eta = torch.rand(shape, dtype=dtype)
    gk = -decay * torch.rand(shape, dtype=dtype).clamp_min(1e-3)
    tensors = [q, k, v, -k_hat, eta * k_hat, gk]
    return [x.requires_grad_(requires_grad) for x in tensors]


def delta_inputs(batch, seq_len, heads, dk, dv, *, dtype=torch.float64, requires_grad=False):
    """Delta-rule inputs in its stable range: ||k|| = 1, beta in (0, 1)."""
    q = torch.randn(batch, seq_len, heads, dk, dtype=dtype)
    k = F.normalize(torch.randn(batch, seq_len, heads, dk, dtype=dtype), dim=-1)
    v = torch.randn(batch, seq_len, heads, dv, dtype=dtype)
    beta = torch.rand(batch, seq_len, heads, dtype=dtype)
    return [x.requires_grad_(requires_grad) for x in (q, k, v, beta)]
