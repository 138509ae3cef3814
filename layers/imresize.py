"""MATLAB-compatible bicubic ``imresize`` for numpy arrays and torch tensors.

Follows MATLAB's ``imresize(img, scale, 'bicubic')`` (R2013+ semantics, the one every SR benchmark used to make its
LR images):

- Keys' cubic kernel with a = -0.5, support 4;
- when shrinking, the kernel is stretched by 1/scale and scaled by scale (antialiasing);
- output size ``ceil(in * scale)``; sample centres ``u = x / scale + 0.5 * (1 - 1 / scale)`` (1-based);
- out-of-range taps are mirrored symmetrically (``[1..n, n..1]``), weights are normalised to sum to one;
- separable: the dimension with the smaller scale goes first (the first dimension when both are equal);
- on uint8 input MATLAB rounds (half away from zero) and saturates to uint8 after EACH pass; float input stays float.

Every resize here is two dense matrix products, ``W_h @ X @ W_w^T``, with the weight matrices built once per size.
"""

from __future__ import annotations

import math
from functools import lru_cache

import numpy as np
import torch


def cubic(x: np.ndarray) -> np.ndarray:
    """Keys' cubic convolution kernel with a = -0.5 (MATLAB's 'bicubic')."""
    ax = np.abs(x)
    ax2, ax3 = ax**2, ax**3
    near = (1.5 * ax3 - 2.5 * ax2 + 1.0) * (ax <= 1)
    far = (-0.5 * ax3 + 2.5 * ax2 - 4.0 * ax + 2.0) * ((ax > 1) & (ax <= 2))
    return near + far


@lru_cache(maxsize=64)
def resize_matrix(in_length: int, out_length: int, scale: float, antialias: bool = True) -> np.ndarray:
    """Dense [out_length, in_length] float64 matrix of MATLAB's 1-D bicubic resize (rows sum to one)."""
    kernel_width = 4.0
    if scale < 1 and antialias:
        def kernel(x):
            return scale * cubic(scale * x)
        kernel_width = kernel_width / scale
    else:
        kernel = cubic
    x = np.arange(1, out_length + 1, dtype=np.float64)
    u = x / scale + 0.5 * (1 - 1 / scale)
    left = np.floor(u - kernel_width / 2)
    taps = int(math.ceil(kernel_width)) + 2
    indices = left[:, None] + np.arange(taps)[None, :]  # 1-based, may fall outside [1, in_length]
    weights = kernel(u[:, None] - indices)
    weights = weights / weights.sum(axis=1, keepdims=True)
    # Symmetric mirroring of out-of-range taps: the index sequence 1..n, n..1 repeated.
    mirror = np.concatenate([np.arange(in_length), np.arange(in_length)[::-1]])
    cols = mirror[np.mod(indices.astype(np.int64) - 1, 2 * in_length)]
    matrix = np.zeros((out_length, in_length), dtype=np.float64)
    np.add.at(matrix, (np.repeat(np.arange(out_length), taps), cols.ravel()), weights.ravel())
    return matrix


def output_size(in_size: tuple[int, int], scale: float | None, output_shape: tuple[int, int] | None) -> tuple[tuple[int, int], tuple[float, float]]:
    """MATLAB's rule: from a scale, size = ceil(in * scale); from a shape, per-dimension scale = out / in."""
    if (scale is None) == (output_shape is None):
        raise ValueError("imresize: give exactly one of scale or output_shape")
    if output_shape is not None:
        out = (int(output_shape[0]), int(output_shape[1]))
        if min(out) < 1:
            raise ValueError(f"imresize: output_shape must be positive, got {output_shape}")
        return out, (out[0] / in_size[0], out[1] / in_size[1])
    if scale <= 0:
        raise ValueError(f"imresize: scale must be positive, got {scale}")
    out = (int(math.ceil(in_size[0] * scale)), int(math.ceil(in_size[1] * scale)))
    return out, (float(scale), float(scale))


def _round_uint8(x: np.ndarray) -> np.ndarray:
    # MATLAB's uint8 conversion: saturate, then round half away from zero (values are >= 0 after the clip).
    return np.floor(np.clip(x, 0, 255) + 0.5)


def imresize(img, scale: float | None = None, *, output_shape: tuple[int, int] | None = None, antialias: bool = True):
    """Resize like MATLAB's ``imresize(img, scale, 'bicubic')``.

    Args:
        img: numpy array HxW or HxWxC (uint8, or float of any range), or a torch float tensor [..., H, W].
        scale: the factor for both dimensions (e.g. 1/4 to shrink, 4 to enlarge).
        output_shape: (H, W) instead of ``scale``.
        antialias: stretch the kernel when shrinking (MATLAB's default). Default: True.

    Returns:
        numpy input: an array of the same dtype (uint8 is rounded after each pass, as MATLAB does).
        torch input: a float tensor of the same dtype and device, not rounded or clamped.
    """
    if isinstance(img, torch.Tensor):
        return _imresize_torch(img, scale, output_shape, antialias)
    if not isinstance(img, np.ndarray):
        raise TypeError(f"imresize: expected a numpy array or torch tensor, got {type(img).__name__}")
    if img.ndim not in (2, 3):
        raise ValueError(f"imresize: expected HxW or HxWxC, got shape {img.shape}")
    if img.dtype == np.uint8:
        is_uint8 = True
    elif np.issubdtype(img.dtype, np.floating):
        is_uint8 = False
    else:
        raise TypeError(f"imresize: supports uint8 and float arrays, got {img.dtype}")
    (out_h, out_w), (s_h, s_w) = output_size(img.shape[:2], scale, output_shape)
    x = img.astype(np.float64)
    # The dimension with the smaller scale first; a stable order keeps height first on ties.
    for dim in sorted((0, 1), key=lambda d: (s_h, s_w)[d]):
        m = resize_matrix(x.shape[dim], (out_h, out_w)[dim], (s_h, s_w)[dim], antialias)
        x = np.tensordot(m, x, axes=([1], [dim]))
        x = np.moveaxis(x, 0, dim)
        if is_uint8:
            x = _round_uint8(x)
    return x.astype(np.uint8) if is_uint8 else x.astype(img.dtype)


def _imresize_torch(img: torch.Tensor, scale, output_shape, antialias) -> torch.Tensor:
    if not img.is_floating_point():
        raise TypeError(f"imresize: torch input must be a float tensor, got {img.dtype}")
    if img.ndim < 2:
        raise ValueError(f"imresize: expected [..., H, W], got shape {tuple(img.shape)}")
    (out_h, out_w), (s_h, s_w) = output_size(tuple(img.shape[-2:]), scale, output_shape)
    m_h = torch.from_numpy(resize_matrix(img.shape[-2], out_h, s_h, antialias)).to(img)
    m_w = torch.from_numpy(resize_matrix(img.shape[-1], out_w, s_w, antialias)).to(img)
    if s_h <= s_w:
        return (m_h @ img) @ m_w.T
    return m_h @ (img @ m_w.T)
