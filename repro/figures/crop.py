"""Where the qualitative grid crops an image: the square HR window with the most detail, chosen from the HR alone.

The window is picked from the ground truth, never from a model's output, so that it is the same for every model and
does not favour one of them. Detail is the gradient energy of the luma (BT.601 Y, ``repro.metrics.rgb_to_y``; a
gray image's own channel): the sum over the window of the squared horizontal and vertical forward differences.
Candidate windows lie on a coarse grid (a stride of a quarter of the window, plus the last position of each axis so
that the bottom and right edges are reachable); among equal energies the first in row-major order wins, so the
choice is deterministic.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from repro.metrics import rgb_to_y


@dataclass(frozen=True)
class CropBox:
    """A ``size`` x ``size`` window of an HR image whose top-left pixel is (``top``, ``left``)."""

    top: int
    left: int
    size: int

    def of(self, img: np.ndarray) -> np.ndarray:
        """The window of an HxW or HxWxC image."""
        return img[self.top:self.top + self.size, self.left:self.left + self.size]


def gradient_energy(img: np.ndarray) -> np.ndarray:
    """Per-pixel squared forward differences of the luma, HxW float64 (zero past the last row and column)."""
    luma = img.astype(np.float64) if img.ndim == 2 else rgb_to_y(img)
    energy = np.zeros_like(luma)
    energy[:, :-1] += np.diff(luma, axis=1) ** 2
    energy[:-1, :] += np.diff(luma, axis=0) ** 2
    return energy


def _positions(length: int, size: int, stride: int) -> np.ndarray:
    last = length - size
    return np.unique(np.append(np.arange(0, last + 1, stride), last))


def select_crop(hr: np.ndarray, size: int, *, stride: int | None = None) -> CropBox:
    """The ``size`` x ``size`` window of ``hr`` with the largest gradient energy (see the module docstring).

    Args:
        hr: the ground truth, uint8 HxW or HxWx3.
        size: the window's side in HR pixels, at most the image's shorter side.
        stride: the grid step of the candidate windows; default a quarter of ``size`` (at least one pixel).
    """
    h, w = hr.shape[:2]
    if size < 1 or size > min(h, w):
        raise ValueError(f"crop size {size} does not fit an image of {w}x{h} pixels (needs 1 <= size <= {min(h, w)})")
    stride = max(1, size // 4) if stride is None else stride
    if stride < 1:
        raise ValueError(f"crop stride must be at least 1, got {stride}")
    # summed-area table with a zero first row and column: any window's sum in four look-ups
    table = np.zeros((h + 1, w + 1))
    table[1:, 1:] = gradient_energy(hr).cumsum(axis=0).cumsum(axis=1)
    tops, lefts = _positions(h, size, stride), _positions(w, size, stride)
    t, l = np.meshgrid(tops, lefts, indexing="ij")
    sums = table[t + size, l + size] - table[t, l + size] - table[t + size, l] + table[t, l]
    best = np.unravel_index(int(np.argmax(sums)), sums.shape)  # argmax: the first maximum, row-major
    return CropBox(top=int(tops[best[0]]), left=int(lefts[best[1]]), size=size)


def crop_at(hr: np.ndarray, top: int, left: int, size: int) -> CropBox:
    """A window given by hand (``--crop-at``), checked to lie inside ``hr``."""
    h, w = hr.shape[:2]
    if size < 1 or top < 0 or left < 0 or top + size > h or left + size > w:
        raise ValueError(f"a {size}x{size} crop at (top {top}, left {left}) does not lie inside the {w}x{h} image")
    return CropBox(top=top, left=left, size=size)
