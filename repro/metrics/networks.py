"""Metrics that need parameter files: NIQE (pristine model), LPIPS (AlexNet v0.1), FID (Inception-v3).

pyiqa supplies the networks and the NIQE feature code; the files come from `metric_weights` (see weights.py) and
are loaded explicitly, so pyiqa never reaches for its download URLs.
"""

import math
from pathlib import Path

import numpy as np
import scipy.io
import torch

from repro.metrics.weights import ALEXNET_BACKBONE, FID_INCEPTION, LPIPS_ALEX_LINEAR, offline_hub

NIQE_BLOCK = 96


def load_niqe_params(path: Path) -> tuple[torch.Tensor, torch.Tensor]:
    """(mu [1, 36], cov [1, 36, 36]) in float64 from BasicSR's .npz or the LIVE release's modelparameters.mat."""
    path = Path(path)
    if path.suffix == ".npz":
        params = np.load(path)
        mu, cov = params["mu_pris_param"], params["cov_pris_param"]
    else:
        params = scipy.io.loadmat(path)
        mu, cov = params["mu_prisparam"], params["cov_prisparam"]
    mu = torch.as_tensor(np.asarray(mu, dtype=np.float64).reshape(1, -1))
    cov = torch.as_tensor(np.asarray(cov, dtype=np.float64))
    if mu.shape != (1, 36) or cov.shape != (36, 36):
        raise ValueError(f"{path}: expected NIQE mu 1x36 and cov 36x36, got {tuple(mu.shape)} and {tuple(cov.shape)}")
    return mu, cov[None]


def niqe_score(channel: np.ndarray, mu: torch.Tensor, cov: torch.Tensor) -> float:
    """NIQE of one 0-255 channel (Y or gray, already cropped), rounded first as BasicSR and MATLAB do.

    96x96 blocks without overlap, two scales (MATLAB-bicubic x1/2); NaN when fewer than two blocks fit, since the
    patch covariance is then undefined.
    """
    from pyiqa.archs.niqe_arch import niqe

    h, w = channel.shape
    if (h // NIQE_BLOCK) * (w // NIQE_BLOCK) < 2:
        return math.nan
    img = torch.from_numpy(np.round(np.asarray(channel, dtype=np.float64)))[None, None]
    return float(niqe(img, mu, cov, block_size_h=NIQE_BLOCK, block_size_w=NIQE_BLOCK))


def build_lpips(files: dict[str, Path], device: str | torch.device) -> torch.nn.Module:
    """pyiqa's LPIPS (AlexNet, v0.1) with the backbone and linear layers taken from the given files only."""
    from pyiqa.archs.lpips_arch import LPIPS

    with offline_hub({ALEXNET_BACKBONE.hub_path: files[ALEXNET_BACKBONE.names[0]]}):
        model = LPIPS(pretrained=False, net="alex", version="0.1", pretrained_model_path=None)
    linear_path = files[LPIPS_ALEX_LINEAR.names[0]]
    state = torch.load(linear_path, map_location="cpu", weights_only=True)
    state = {k.removeprefix("module."): v for k, v in state.items() if k.removeprefix("module.").startswith("lin")}
    expected = {k for k in model.state_dict() if k.startswith("lin") and not k.startswith("lins.")}
    if set(state) != expected:
        raise ValueError(f"{linear_path}: LPIPS linear-layer keys {sorted(state)} differ from the expected {sorted(expected)}")
    model.load_state_dict(state, strict=False)
    return model.eval().to(device)


def _to_rgb_tensor(img: np.ndarray, device: str | torch.device) -> torch.Tensor:
    rgb = np.repeat(img[..., None], 3, axis=2) if img.ndim == 2 else img
    return torch.from_numpy(np.ascontiguousarray(rgb)).permute(2, 0, 1)[None].to(device, torch.float32) / 255.0


@torch.no_grad()
def lpips_score(model: torch.nn.Module, pred: np.ndarray, ref: np.ndarray) -> float:
    """LPIPS between two uint8 images (gray ones repeated to RGB), fed as RGB in [-1, 1], full image."""
    device = next(model.parameters()).device
    return float(model(_to_rgb_tensor(pred, device), _to_rgb_tensor(ref, device), normalize=True).item())


def build_fid(files: dict[str, Path], device: str | torch.device) -> torch.nn.Module:
    """pyiqa's FID module (2048-d pool features of the FID Inception), weights from the given file only."""
    from pyiqa.archs.fid_arch import FID

    with offline_hub({FID_INCEPTION.hub_path: files[FID_INCEPTION.names[0]]}):
        model = FID(dims=2048)
    return model.eval().to(device)


@torch.no_grad()
def fid_score(model: torch.nn.Module, pred_dir: str | Path, ref_dir: str | Path) -> float:
    """clean-fid FID between two folders of images."""
    device = next(model.parameters()).device
    return float(model(str(pred_dir), str(ref_dir), mode="clean", device=device, num_workers=0, verbose=False))
