"""Shared pytest fixtures. tests/ is deliberately not a package (pyiqa ships a top-level `tests` package)."""

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

REPO = Path(__file__).resolve().parents[1]


def _mirror() -> Path:
    return Path(os.environ.get("REPRO_DATA_MIRROR", REPO.parent / "shared" / "datasets")).resolve()


@pytest.fixture(scope="session")
def data_mirror() -> Path:
    """The offline dataset mirror (../shared/datasets or $REPRO_DATA_MIRROR).

    Outside CI a missing mirror skips the test; in CI (CI=true) it is an error, so real-data tests never vanish.
    """
    root = _mirror()
    if not (root / "Set5" / "HR").is_dir():
        msg = f"dataset mirror not found at {root} (set REPRO_DATA_MIRROR or place shared/datasets beside the repo)"
        if os.environ.get("CI") == "true":
            pytest.fail(msg)
        pytest.skip(msg)
    return root


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)
    yield


@pytest.fixture
def one_thread():
    """One intra-op thread: tiny models are dominated by per-op overhead, and a second OpenMP thread only adds
    synchronisation (on a busy shared machine, long waits). Use with `pytestmark = pytest.mark.usefixtures(...)`."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def _fit_l1(model: torch.nn.Module, lq: torch.Tensor, hr: torch.Tensor, *, steps: int, lr: float) -> list[float]:
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    losses = []
    for _ in range(steps):
        loss = F.l1_loss(model(lq), hr)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    return losses


@pytest.fixture
def fit_l1():
    """``fit_l1(model, lq, hr, steps=, lr=)``: Adam on the L1 loss of one pair; returns the loss of every step."""
    return _fit_l1


@pytest.fixture
def overfit_x2_psnr():
    """``overfit_x2_psnr(model, steps=120)``: fit an x2 model to one smooth 16x16 -> 32x32 patch pair (Adam 3e-3);
    returns (final PSNR, bicubic PSNR, last / first loss), the PSNRs in dB on [0, 1] images."""

    def run(model: torch.nn.Module, steps: int = 120) -> tuple[float, float, float]:
        g = torch.Generator().manual_seed(0)
        hr = F.interpolate(torch.rand(1, 3, 16, 16, generator=g), size=(32, 32), mode="bicubic").clamp(0, 1)
        lr = F.avg_pool2d(hr, 2)
        losses = _fit_l1(model, lr, hr, steps=steps, lr=3e-3)
        model.eval()
        with torch.no_grad():
            psnr = -10 * torch.log10(F.mse_loss(model(lr).clamp(0, 1), hr)).item()
        bicubic = F.interpolate(lr, scale_factor=2, mode="bicubic").clamp(0, 1)
        return psnr, -10 * torch.log10(F.mse_loss(bicubic, hr)).item(), losses[-1] / losses[0]

    return run


@pytest.fixture
def snakemake():
    """``snakemake(args, cwd, timeout=900)``: run the repository's Snakefile in ``cwd`` (a subprocess, not checked);
    returns the CompletedProcess with its text output."""

    def run(args: list[str], cwd, timeout: float = 900):
        cmd = [sys.executable, "-m", "snakemake", "-s", str(REPO / "Snakefile"), *args]
        return subprocess.run(cmd, check=False, cwd=cwd, capture_output=True, text=True, timeout=timeout)

    return run


def pytest_collection_modifyitems(config, items):
    if torch.cuda.is_available():
        return
    skip_gpu = pytest.mark.skip(reason="needs a CUDA GPU (fla Triton kernels); none on this machine")
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip_gpu)


@pytest.fixture
def latex_blocks():
    """``latex_blocks(tex, n_columns)``: (block title, table lines) of a LaTeX table the harness wrote, in order."""
    import re

    def parse(tex: str, n_columns: int) -> list[tuple[str, list[str]]]:
        out = []
        for chunk in tex.split(rf"\multicolumn{{{n_columns}}}{{l}}")[1:]:
            lines = chunk.split(r"\bottomrule")[0].splitlines()
            title = re.match(r"\{\\textit\{(.*)\}\} \\\\", lines[0]).group(1)
            out.append((title, [line for line in lines[1:] if line.endswith(r"\\") and "&" in line]))
        return out

    return parse

