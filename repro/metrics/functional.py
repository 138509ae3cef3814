"""Pixel metrics on numpy arrays in the 0-255 scale, computed in float64 (BasicSR/MATLAB conventions).

Every function takes the prediction first and the reference second, both HxW or HxWxC, any real dtype, values in
0..255. `crop_border` removes that many pixels from each side before measuring.
"""

import numpy as np
from scipy.ndimage import correlate1d

BT601_Y_WEIGHTS = np.array([65.481, 128.553, 24.966], dtype=np.float64)
BT601_Y_OFFSET = 16.0
SSIM_WINDOW = 11
SSIM_SIGMA = 1.5


def rgb_to_y(img: np.ndarray) -> np.ndarray:
    """Y of ITU-R BT.601 YCbCr ("MATLAB rgb2ycbcr"), range 16-235, float64, not rounded.

    `img` is HxWx3 RGB in 0..255: Y = 16 + (65.481 R + 128.553 G + 24.966 B) / 255.
    """
    img = np.asarray(img)
    if img.ndim != 3 or img.shape[2] != 3:
        raise ValueError(f"rgb_to_y expects an HxWx3 RGB image, got shape {img.shape}")
    return BT601_Y_OFFSET + img.astype(np.float64) @ BT601_Y_WEIGHTS / 255.0


def crop(img: np.ndarray, border: int) -> np.ndarray:
    """Remove `border` pixels from each side (HxW or HxWxC)."""
    if border < 0:
        raise ValueError(f"crop border must be >= 0, got {border}")
    if border == 0:
        return img
    h, w = img.shape[:2]
    if h <= 2 * border or w <= 2 * border:
        raise ValueError(f"image of size {h}x{w} is too small for a crop border of {border}")
    return img[border:-border, border:-border]


def _pair(pred: np.ndarray, ref: np.ndarray, crop_border: int) -> tuple[np.ndarray, np.ndarray]:
    pred, ref = np.asarray(pred), np.asarray(ref)
    if pred.shape != ref.shape:
        raise ValueError(f"prediction and reference shapes differ: {pred.shape} vs {ref.shape}")
    if pred.ndim not in (2, 3):
        raise ValueError(f"expected HxW or HxWxC images, got shape {pred.shape}")
    return crop(pred, crop_border).astype(np.float64), crop(ref, crop_border).astype(np.float64)


def mse(pred: np.ndarray, ref: np.ndarray, *, crop_border: int = 0) -> float:
    """Mean squared error over all pixels and channels."""
    pred, ref = _pair(pred, ref, crop_border)
    return float(np.mean((pred - ref) ** 2))


def psnr(pred: np.ndarray, ref: np.ndarray, *, crop_border: int = 0, data_range: float = 255.0) -> float:
    """10 log10(data_range^2 / MSE) over all pixels and channels; inf for identical images."""
    err = mse(pred, ref, crop_border=crop_border)
    return float("inf") if err == 0 else float(10.0 * np.log10(data_range**2 / err))


def rmse(pred: np.ndarray, ref: np.ndarray, *, crop_border: int = 0) -> float:
    """Root mean squared error in the images' own scale (0-255 here)."""
    return float(np.sqrt(mse(pred, ref, crop_border=crop_border)))


def gaussian_kernel_1d(size: int = SSIM_WINDOW, sigma: float = SSIM_SIGMA) -> np.ndarray:
    """Normalised 1-D Gaussian taps (what cv2.getGaussianKernel(size, sigma) returns)."""
    x = np.arange(size, dtype=np.float64) - (size - 1) / 2
    taps = np.exp(-(x**2) / (2 * sigma**2))
    return taps / taps.sum()


def _filter_valid(img: np.ndarray, taps: np.ndarray) -> np.ndarray:
    # separable filter, then keep only positions where the whole window lies inside the image
    radius = len(taps) // 2
    out = correlate1d(correlate1d(img, taps, axis=0, mode="constant"), taps, axis=1, mode="constant")
    return out[radius:-radius, radius:-radius]


def _ssim_channel(pred: np.ndarray, ref: np.ndarray, data_range: float) -> float:
    c1, c2 = (0.01 * data_range) ** 2, (0.03 * data_range) ** 2
    taps = gaussian_kernel_1d()
    mu_p, mu_r = _filter_valid(pred, taps), _filter_valid(ref, taps)
    var_p = _filter_valid(pred * pred, taps) - mu_p**2
    var_r = _filter_valid(ref * ref, taps) - mu_r**2
    cov = _filter_valid(pred * ref, taps) - mu_p * mu_r
    ssim_map = ((2 * mu_p * mu_r + c1) * (2 * cov + c2)) / ((mu_p**2 + mu_r**2 + c1) * (var_p + var_r + c2))
    return float(ssim_map.mean())


def ssim(pred: np.ndarray, ref: np.ndarray, *, crop_border: int = 0, data_range: float = 255.0) -> float:
    """SSIM with an 11x11 Gaussian window (sigma 1.5) over the valid region, averaged over channels.

    This is BasicSR's `calculate_ssim` (MATLAB ssim_index): filter, keep the region where the window fits, mean.
    """
    pred, ref = _pair(pred, ref, crop_border)
    if min(pred.shape[:2]) < SSIM_WINDOW:
        raise ValueError(f"SSIM needs images of at least {SSIM_WINDOW}x{SSIM_WINDOW} after cropping, got {pred.shape[:2]}")
    if pred.ndim == 2:
        return _ssim_channel(pred, ref, data_range)
    return float(np.mean([_ssim_channel(pred[..., c], ref[..., c], data_range) for c in range(pred.shape[2])]))


def sam(pred: np.ndarray, ref: np.ndarray, *, crop_border: int = 0) -> float:
    """Mean spectral angle (radians) between the per-pixel channel vectors of two HxWxC images.

    Zero vectors: two zero vectors count as identical (angle 0); a zero vector against a non-zero one counts as
    pi/2, the largest angle between non-negative vectors. The cosine is clipped to [-1, 1] before arccos.
    """
    pred, ref = _pair(pred, ref, crop_border)
    if pred.ndim != 3 or pred.shape[2] < 2:
        raise ValueError(f"SAM needs HxWxC images with C >= 2, got shape {pred.shape}")
    dot = np.sum(pred * ref, axis=2)
    norms = np.linalg.norm(pred, axis=2) * np.linalg.norm(ref, axis=2)
    both_zero = ~pred.any(axis=2) & ~ref.any(axis=2)
    cos = np.divide(dot, norms, out=np.zeros_like(dot), where=norms > 0)
    angles = np.arccos(np.clip(cos, -1.0, 1.0))
    angles[both_zero] = 0.0
    return float(angles.mean())
