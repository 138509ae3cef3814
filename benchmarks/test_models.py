"""Model timings: the x4 forward at a 64x64 LR input and one Adam training step (batch 2, 48x48 LR), for DiffRWKVIR
and DiffIR at their default (paper) configurations, as `python -m repro profile --compare diffrwkvir diffir`, and
for the small CPU-profile rows (config/config.yaml), which the default pipeline trains."""

from pathlib import Path

import pytest
import torch
import yaml

from repro import build_model
from repro.train.bench import Step
from repro.train.config import resolve

REPO = Path(__file__).resolve().parents[1]
CPU_PROFILE = yaml.safe_load((REPO / "config" / "config.yaml").read_text())
PAPER = ["diffrwkvir", "diffir"]
CPU_ROWS = ["srcnn", "vdsr", "swinir", "hat", "mambair", "mambairv2", "diffir", "diffrwkvir"]


def _cfg(name: str, cpu: bool) -> dict:
    """The run config of one row: the CPU profile's small variant, or the registry's default (paper) size."""
    cfg = resolve(CPU_PROFILE, model=name, scale=4)
    return cfg if cpu else {**cfg, "model_args": {}}


@pytest.mark.parametrize("name", PAPER)
def test_forward_paper_size(benchmark, name):
    torch.manual_seed(0)
    model = build_model(name, scale=4).eval()
    x = torch.rand(1, 3, 64, 64)
    with torch.no_grad():
        benchmark.pedantic(lambda: model(x), rounds=3, warmup_rounds=1)


@pytest.mark.parametrize("name", PAPER)
def test_train_step_paper_size(benchmark, name):
    benchmark.pedantic(Step(_cfg(name, cpu=False), batch=2, patch=48), rounds=3, warmup_rounds=1)


@pytest.mark.parametrize("name", CPU_ROWS)
def test_train_step_cpu_profile(benchmark, name):
    benchmark.pedantic(Step(_cfg(name, cpu=True), batch=8, patch=24), rounds=3, warmup_rounds=1)
