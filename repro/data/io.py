"""Image reading and writing with checks that name the file and the problem.

Documented conversions (everything else is an error):

- grayscale (L, I;16 gray) stays a 2-D array: the SR literature resizes and measures it on its own gray channel;
  ``as_rgb`` replicates it to three channels for networks;
- 16-bit images become 8-bit by ``round(x / 257)`` (65535 -> 255);
- palette (P) images are expanded to RGB; LA/RGBA/PA images are accepted only when fully opaque (alpha dropped),
  since compositing a transparent image onto some background would invent pixels.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError


class ImageError(ValueError):
    """An image file that cannot be used as it is; the message names the file."""


def read_image(path: str | Path) -> np.ndarray:
    """Decode an image to uint8: HxW for grayscale, HxWx3 for colour. See the module docstring for conversions."""
    path = Path(path)
    if not path.is_file():
        raise ImageError(f"{path}: no such file")
    try:
        with Image.open(path) as im:
            im.load()  # force the full decode here, so a truncated file fails now and not later
            return _to_uint8(im, path)
    except (UnidentifiedImageError, OSError, SyntaxError) as err:
        raise ImageError(f"{path}: cannot decode image ({err}); the file is corrupt, truncated or not an image") from err


def _to_uint8(im: Image.Image, path: Path) -> np.ndarray:
    mode = im.mode
    if mode in ("1", "L"):
        return np.asarray(im.convert("L"), dtype=np.uint8)
    if mode.startswith("I;16") or mode in ("I", "I;16B", "I;16L"):
        arr = np.asarray(im).astype(np.float64)
        if arr.max(initial=0) > 65535 or arr.min(initial=0) < 0:
            raise ImageError(f"{path}: integer image with values outside 0..65535 (mode {mode})")
        return np.floor(arr / 257.0 + 0.5).astype(np.uint8)
    if mode == "RGB":
        return np.asarray(im, dtype=np.uint8)
    if mode == "P":
        has_alpha = "transparency" in im.info
        im = im.convert("RGBA" if has_alpha else "RGB")
        if not has_alpha:
            return np.asarray(im, dtype=np.uint8)
        mode = "RGBA"
    if mode in ("RGBA", "LA", "PA"):
        arr = np.asarray(im)
        if arr[..., -1].min() < 255:
            raise ImageError(f"{path}: image has a transparent alpha channel (mode {mode}); "
                             "remove the alpha channel or flatten it onto a background first")
        return arr[..., 0] if mode == "LA" else arr[..., :3].copy()
    if mode in ("RGB;16", "RGBA;16") or mode.endswith(";16"):
        raise ImageError(f"{path}: unsupported 16-bit colour mode {mode}; convert it to 8-bit RGB first")
    raise ImageError(f"{path}: unsupported image mode {mode}; expected grayscale, RGB, palette or 16-bit gray")


def as_rgb(img: np.ndarray) -> np.ndarray:
    """A colour view of an image: grayscale replicated to three channels, RGB unchanged."""
    if img.ndim == 2:
        return np.repeat(img[:, :, None], 3, axis=2)
    if img.ndim == 3 and img.shape[2] == 3:
        return img
    raise ValueError(f"expected HxW or HxWx3, got shape {img.shape}")


def write_png(path: str | Path, img: np.ndarray) -> None:
    """Write a uint8 HxW or HxWx3 array losslessly."""
    if img.dtype != np.uint8:
        raise TypeError(f"{path}: write_png expects uint8, got {img.dtype}")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(img).save(path)


def modcrop(img: np.ndarray, scale: int, *, path: str | Path = "<array>") -> np.ndarray:
    """Top-left crop to a multiple of ``scale`` (the benchmark convention)."""
    h, w = img.shape[:2]
    if h < scale or w < scale:
        raise ImageError(f"{path}: image {w}x{h} is smaller than the scale factor {scale}")
    return img[: h - h % scale, : w - w % scale]
