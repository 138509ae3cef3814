"""NIQE: pyiqa's features behind the sr protocol against a numpy re-implementation and MATLAB's published figure."""

import numpy as np
import pytest
import torch
from PIL import Image
from scipy.ndimage import convolve
from scipy.special import gamma

from layers.imresize import imresize
from repro.metrics import crop, get_protocol, networks, rgb_to_y

# MATLAB R2021a niqe_release on the Set14 baboon (BasicSR's tests/data/baboon.png), Y channel, no crop, as quoted by
# BasicSR-derived NIQE ports. BasicSR's numpy code and pyiqa both give 5.72996 here; pyiqa's calibration tolerance for
# NIQE is 6e-2, we ask for 1e-3.
MATLAB_NIQE_BABOON = 5.7296
AGGD_SHAPES = np.arange(0.2, 10.001, 0.001)
AGGD_RATIOS = gamma(2 / AGGD_SHAPES) ** 2 / (gamma(1 / AGGD_SHAPES) * gamma(3 / AGGD_SHAPES))


def load(path) -> np.ndarray:
    with Image.open(path) as img:
        return np.array(img)


def aggd_fit(x: np.ndarray) -> tuple[float, float, float]:
    """Asymmetric generalised Gaussian (shape, left scale, right scale) by moment matching over the shape grid."""
    x = x.ravel()
    left, right = np.sqrt(np.mean(x[x < 0] ** 2)), np.sqrt(np.mean(x[x > 0] ** 2))
    g = left / right
    r = np.mean(np.abs(x)) ** 2 / np.mean(x**2) * (g**3 + 1) * (g + 1) / (g**2 + 1) ** 2
    shape = AGGD_SHAPES[np.argmin((AGGD_RATIOS - r) ** 2)]
    k = np.sqrt(gamma(1 / shape) / gamma(3 / shape))
    return shape, left * k, right * k


def block_features(block: np.ndarray) -> list[float]:
    shape, left, right = aggd_fit(block)
    feats = [shape, (left + right) / 2]
    for shift in ((0, 1), (1, 0), (1, 1), (1, -1)):
        shape, left, right = aggd_fit(block * np.roll(block, shift, axis=(0, 1)))
        feats += [shape, (right - left) * gamma(2 / shape) / gamma(1 / shape), left, right]
    return feats


def niqe_numpy(y: np.ndarray, mu: np.ndarray, cov: np.ndarray, window: np.ndarray) -> float:
    """NIQE as in Mittal et al. 2012 / BasicSR: MSCN with a 7x7 Gaussian, 96px blocks, 2 scales, MVG distance."""
    y = np.round(y)
    rows, cols = y.shape[0] // 96, y.shape[1] // 96
    y = y[: rows * 96, : cols * 96]
    feats = []
    for size in (96, 48):
        mean = convolve(y, window, mode="nearest")
        std = np.sqrt(np.abs(convolve(y * y, window, mode="nearest") - mean**2))
        mscn = (y - mean) / (std + 1)
        feats.append(
            [
                block_features(mscn[i * size : (i + 1) * size, j * size : (j + 1) * size])
                for j in range(cols)
                for i in range(rows)
            ]
        )
        y = imresize(y / 255.0, 0.5) * 255.0
    feats = np.concatenate([np.asarray(f) for f in feats], axis=1)
    diff = mu - feats.mean(axis=0)
    return float(np.sqrt(diff @ np.linalg.pinv((cov + np.cov(feats, rowvar=False)) / 2) @ diff))


@pytest.fixture(scope="module")
def params(data_mirror):
    return np.load(data_mirror / "metrics" / "niqe" / "niqe_pris_params.npz")


def test_niqe_params_files_agree(data_mirror, params):
    mu, cov = networks.load_niqe_params(data_mirror / "metrics" / "niqe" / "modelparameters.mat")  # the LIVE release
    np.testing.assert_array_equal(mu.numpy().ravel(), params["mu_pris_param"].ravel())
    np.testing.assert_array_equal(cov.numpy()[0], params["cov_pris_param"])


def test_niqe_baboon_matches_numpy_and_matlab(data_mirror, params):
    mu, cov = networks.load_niqe_params(data_mirror / "metrics" / "niqe" / "niqe_pris_params.npz")
    y = rgb_to_y(load(data_mirror / "Set14" / "HR" / "baboon.png"))
    got = networks.niqe_score(y, mu, cov)
    ref = niqe_numpy(y, params["mu_pris_param"].ravel(), params["cov_pris_param"], params["gaussian_window"])
    assert got == pytest.approx(ref, abs=1e-4)  # pyiqa builds the 0.001 shape grid differently
    assert got == pytest.approx(MATLAB_NIQE_BABOON, abs=1e-3)


def test_sr_protocol_niqe_on_cropped_y_and_gray_channel(data_mirror, params, monkeypatch):
    p = get_protocol("sr", scale=4, metric_weights=data_mirror / "metrics")
    assert "niqe" not in p.missing
    hr = load(data_mirror / "Set5" / "HR" / "butterfly.png")
    h, w = hr.shape[:2]
    sr = np.array(Image.fromarray(hr).resize((w // 4, h // 4), Image.BICUBIC).resize((w, h), Image.BICUBIC))
    got = p.compute(sr, hr)["niqe"]
    ref = niqe_numpy(
        crop(rgb_to_y(sr), 4), params["mu_pris_param"].ravel(), params["cov_pris_param"], params["gaussian_window"]
    )
    assert got == pytest.approx(ref, abs=1e-4)  # pyiqa builds the 0.001 shape grid differently

    seen = []
    monkeypatch.setattr(networks, "niqe_score", lambda channel, *stats: seen.append(channel) or 0.0)
    gray = load(data_mirror / "Set14" / "HR" / "bridge.png")
    p.compute(gray, gray)
    np.testing.assert_array_equal(seen[0], crop(gray, 4))  # a gray image on its own channel, not a converted luma


def test_niqe_undefined_below_two_blocks():
    mu, cov = torch.zeros(1, 36, dtype=torch.float64), torch.eye(36, dtype=torch.float64)[None]
    assert np.isnan(networks.niqe_score(np.zeros((100, 150)), mu, cov))
