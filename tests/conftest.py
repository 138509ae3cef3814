"""Shared pytest fixtures. tests/ is deliberately not a package (pyiqa ships a top-level `tests` package)."""

import os
from pathlib import Path

import pytest
import torch

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


def pytest_collection_modifyitems(config, items):
    if torch.cuda.is_available():
        return
    skip_gpu = pytest.mark.skip(reason="needs a CUDA GPU (fla Triton kernels); none on this machine")
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip_gpu)
