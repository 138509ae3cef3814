"""FLOP counting: closed forms of a conv net and a linear layer, and the kernel formulas of kernels/flops.py against
torch's FLOP counter on the plain-PyTorch backends (the chunked forms as the counter counts them, the recurrent forms
as it counts the naive loops when it also counts pointwise multiplies and adds)."""

import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from kernels import flops as kf
from kernels import fused_cpu

# from the api, not the package: the package attribute `selective_scan` becomes the submodule once
# kernels.selective_scan is imported (the api does so on first use)
from kernels.api import delta_rule, selective_scan, state_evolution
from repro.profile.flops import count_flops

aten = torch.ops.aten
FUSED, WHY_NOT_FUSED = fused_cpu.available()


def _numel(shape) -> int:
    return math.prod(shape)


# pointwise multiplies, adds and subtractions count one FLOP per output element; a sum one per input element (so a
# dot product of length n is 2n, as the counter counts a product); exp, softplus and copies count nothing
POINTWISE = {
    aten.mul: lambda *a, out_shape=None, **k: _numel(out_shape),
    aten.add: lambda *a, out_shape=None, **k: _numel(out_shape),
    aten.sub: lambda *a, out_shape=None, **k: _numel(out_shape),
    aten.sum: lambda x_shape, *a, out_shape=None, **k: _numel(x_shape),
}


def _counted(fn, pointwise: bool = False) -> int:
    with FlopCounterMode(display=False, custom_mapping=POINTWISE if pointwise else None) as counter:
        fn()
    return counter.get_total_flops()


def _tokens(batch, seq_len, heads, dk, dv):
    q = torch.randn(batch, seq_len, heads, dk)
    k = F.normalize(torch.randn(batch, seq_len, heads, dk), dim=-1)
    v = torch.randn(batch, seq_len, heads, dv)
    beta = torch.rand(batch, seq_len, heads)
    gk = -0.6065 * torch.rand(batch, seq_len, heads, dk)  # RWKV-7's log-decay range: the chunk is never split
    return q, k, v, beta, -k, 0.7 * k, gk


class _Stub:
    """The two attributes count_flops reads from a Workload: the model and an inference callable."""

    def __init__(self, model: nn.Module, *inputs: torch.Tensor) -> None:
        self.model = model.eval()
        self._inputs = inputs

    def inference(self):
        def run():
            with torch.no_grad():
                return self.model(*self._inputs)

        return run


def test_conv_net_and_linear_layer_match_their_closed_forms():
    net = nn.Sequential(nn.Conv2d(3, 16, 3, padding=1), nn.ReLU(), nn.Conv2d(16, 8, 5, padding=2, stride=2))
    counted = count_flops(_Stub(net, torch.rand(2, 3, 20, 24)))
    # conv: 2 * Cout * Cin * k^2 per output pixel (bias and ReLU not counted); the stride halves the second's outputs
    closed = 2 * 2 * 20 * 24 * 16 * 3 * 9 + 2 * 2 * 10 * 12 * 8 * 16 * 25
    assert counted["flops"] == closed and counted["macs"] == closed / 2 and counted["analytic"] == {}
    linear = count_flops(_Stub(nn.Linear(7, 5), torch.rand(3, 4, 7)))
    assert linear["flops"] == 2 * 3 * 4 * 7 * 5


@pytest.mark.parametrize("shape", [(2, 100, 3, 8, 12, 64), (1, 37, 2, 16, 16, 32), (1, 96, 1, 8, 8, 48), (2, 5, 1, 4, 4, 64)])
def test_chunked_formulas_equal_the_counter_on_the_chunk_backend(shape):
    batch, seq_len, heads, dk, dv, chunk = shape
    q, k, v, beta, a, b, gk = _tokens(batch, seq_len, heads, dk, dv)
    sizes = {"batch": batch, "heads": heads, "seq_len": seq_len, "dk": dk, "dv": dv, "chunk_size": chunk}
    assert _counted(lambda: delta_rule(q, k, v, beta, backend="chunk", chunk_size=chunk)) == kf.chunk_delta_rule_flops(**sizes)
    assert _counted(lambda: state_evolution(q, k, v, a, b, gk, backend="chunk", chunk_size=chunk)) == \
        kf.chunk_state_evolution_flops(**sizes)


def test_recurrent_formulas_equal_the_naive_loops_counted_with_pointwise_ops():
    batch, seq_len, heads, dk, dv = 2, 13, 3, 8, 12
    q, k, v, beta, a, b, gk = _tokens(batch, seq_len, heads, dk, dv)
    sizes = {"batch": batch, "heads": heads, "seq_len": seq_len, "dk": dk, "dv": dv}
    assert _counted(lambda: state_evolution(q, k, v, a, b, gk, backend="naive"), pointwise=True) == \
        kf.recurrent_state_evolution_flops(**sizes)
    assert _counted(lambda: delta_rule(q, k, v, beta, backend="naive"), pointwise=True) == \
        kf.recurrent_delta_rule_flops(**sizes)


def _scan_inputs(b=2, d=6, length=50, n=4, groups=2):
    return (torch.randn(b, d, length), torch.randn(b, d, length), -torch.rand(d, n), torch.randn(b, groups, n, length),
            torch.randn(b, groups, n, length))


def test_selective_scan_formula_and_what_the_counter_sees_of_its_chunk_backend():
    u, delta, A, B, C = _scan_inputs()
    D, bias = torch.ones(6), torch.zeros(6)
    formula = kf.selective_scan_flops(batch=2, channels=6, seq_len=50, state=4, skip=True, bias=True)
    naive = _counted(lambda: selective_scan(u, delta, A, B, C, D, delta_bias=bias, delta_softplus=True, backend="naive"),
                     pointwise=True)
    assert naive == formula
    # the chunked scan is pointwise ops and cumulative sums only: the stock counter sees none of it, so the profile
    # counts every backend of the scan by the formula (nothing is counted twice)
    assert _counted(lambda: selective_scan(u, delta, A, B, C, D, delta_bias=bias, backend="chunk")) == 0
    with FlopCounterMode(display=False) as counter, kf.count_kernels(counter) as records:
        selective_scan(u, delta, A, B, C, D, delta_bias=bias, backend="chunk")
    assert counter.get_total_flops() == formula == records["selective_scan"].analytic_flops
    assert records["selective_scan"].backends == ["chunk"]


class _Mixer(nn.Module):
    """A linear projection, then the state evolution on its output (as a SEB calls it)."""

    def __init__(self, backend: str, dim: int = 16, heads: int = 2) -> None:
        super().__init__()
        self.proj, self.backend, self.heads = nn.Linear(dim, dim), backend, heads

    def forward(self, x):
        b, t, c = x.shape
        y = self.proj(x).view(b, t, self.heads, c // self.heads)
        k = F.normalize(y, dim=-1)
        o, _ = state_evolution(y, k, y, -k, 0.5 * k, -0.3 * torch.ones_like(y), backend=self.backend)
        return o


@pytest.mark.parametrize("backend", ["chunk", "naive", "fused_recurrent"])
def test_the_hook_counts_each_backend_in_its_form_and_nothing_twice(backend):
    if backend == "fused_recurrent" and not FUSED:
        pytest.skip(f"fused CPU kernels unavailable: {WHY_NOT_FUSED}")
    x = torch.randn(2, 40, 16)
    counted = count_flops(_Stub(_Mixer(backend), x))
    linear = 2 * 2 * 40 * 16 * 16
    sizes = {"batch": 2, "heads": 2, "seq_len": 40, "dk": 8, "dv": 8}
    if backend == "chunk":  # the counter counts the chunked PyTorch code itself
        assert counted["flops"] == linear + kf.chunk_state_evolution_flops(**sizes)
        assert counted["analytic"] == {} and counted["kernels"]["state_evolution"]["forms"] == ["counted by the FLOP counter"]
    else:  # the loop's einsums (naive) are not added to the formula
        assert counted["flops"] == linear + kf.recurrent_state_evolution_flops(**sizes)
        assert counted["analytic"] == {"state_evolution": kf.recurrent_state_evolution_flops(**sizes)}
        assert counted["kernels"]["state_evolution"] == {"backends": [backend], "forms": ["recurrent"], "calls": 1}


def test_gpu_forms_are_the_chunked_formulas():
    q = torch.empty(1, 100, 2, 16)
    v = torch.empty(1, 100, 2, 8)
    sizes = {"batch": 1, "heads": 2, "seq_len": 100, "dk": 16, "dv": 8}
    form, flops = kf.analytic_flops("state_evolution", "fla", (q, q, v, q, q, q), {"chunk_size": 64})
    assert (form, flops) == ("chunked (C=16)", kf.chunk_state_evolution_flops(**sizes, chunk_size=16))  # fla's own C
    form, flops = kf.analytic_flops("delta_rule", "fla", (q, q, v, q[..., 0]), {"chunk_size": 32})
    assert (form, flops) == ("chunked (C=32)", kf.chunk_delta_rule_flops(**sizes, chunk_size=32))
    assert kf.analytic_flops("state_evolution", "chunk", (q, q, v, q, q, q), {}) is None


def test_no_observer_means_a_plain_call():
    assert kf.dispatch("state_evolution", "chunk", lambda x: x + 1, (1,), {}) == 2
    seen = []
    with kf.observe(lambda op, backend, fn, args, kwargs: seen.append((op, backend)) or fn(*args, **kwargs)):
        assert kf.dispatch("delta_rule", "naive", lambda x: 2 * x, (3,), {}) == 6
    assert seen == [("delta_rule", "naive")] and kf.dispatch("x", "y", lambda: 0, (), {}) == 0
