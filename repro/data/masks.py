"""Hole masks: reading them under a stated convention, checking them against their image, and drawing new ones.

In the harness a hole mask is a bool HxW array with True on the pixels to fill; on disk it is an 8-bit PNG with
255 on holes. The files it reads follow two conventions, and the caller names which, because the pixels cannot tell
the two apart: ``"hole255"`` (NVIDIA irregular masks, 255 = hole) and ``"known255"`` (MI-GAN's sample masks,
255 = known pixel, 0 = hole).

Reading rule: a pixel is high when its value is >= 128. A colour mask must have equal channels, and a mask with more
than 5% of its pixels strictly between 32 and 223 is refused as not binary: a handful of antialiased edge pixels
pass, a photograph passed as a mask does not. Every mask in the mirror is 8-bit gray holding only 0 and 255.

Training masks come from ``FreeFormMasks`` (LaMa's thin / medium / thick generators) and from the NVIDIA pool, which
``irregular_split`` halves so that no training mask is ever an evaluation mask.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from repro.data.io import ImageError, read_image
from repro.data.registry import image_files

CONVENTIONS = ("hole255", "known255")
HIGH = 128  # a pixel is high when >= HIGH
GREY_LOW, GREY_HIGH = 32, 223  # values strictly between these count as grey
MAX_GREY_FRACTION = 0.05


class MaskError(ValueError):
    """A mask that cannot be used, alone or with its image; the message names the file(s)."""


def read_mask(path: str | Path, *, convention: str) -> np.ndarray:
    """The holes of a mask file as bool HxW (True = hole), by the rule in the module docstring.

    Args:
        path: the mask file.
        convention: ``"hole255"`` (255 = hole) or ``"known255"`` (255 = known, 0 = hole).
    """
    if convention not in CONVENTIONS:
        raise ValueError(f"read_mask: convention must be one of {CONVENTIONS}, got {convention!r}")
    try:
        arr = read_image(path)
    except ImageError as err:
        raise MaskError(str(err)) from err
    if arr.ndim == 3:
        if (arr != arr[..., :1]).any():
            raise MaskError(f"{path}: colour mask with unequal channels; a mask must be gray (or equal R, G, B)")
        arr = arr[..., 0]
    grey = float(((arr > GREY_LOW) & (arr < GREY_HIGH)).mean())
    if grey > MAX_GREY_FRACTION:
        raise MaskError(f"{path}: not a binary mask ({100 * grey:.1f}% of pixels lie strictly between {GREY_LOW} and "
                        f"{GREY_HIGH}, at most {100 * MAX_GREY_FRACTION:.0f}% allowed); is it an image?")
    high = arr >= HIGH
    return high if convention == "hole255" else ~high


def check_image_and_mask(image: np.ndarray, hole: np.ndarray, *, image_path: str | Path,
                         mask_path: str | Path) -> None:
    """Refuse a pair whose mask does not fit the image or leaves nothing to inpaint (or nothing known)."""
    pair = f"image {image_path} with mask {mask_path}"
    if image.shape[:2] != hole.shape:
        raise MaskError(f"{pair}: sizes differ (image {image.shape[1]}x{image.shape[0]}, "
                        f"mask {hole.shape[1]}x{hole.shape[0]}, WxH)")
    if not hole.any():
        raise MaskError(f"{pair}: the mask has no hole")
    if hole.all():
        raise MaskError(f"{pair}: the mask is all hole, no known pixel is left")


def hole_ratio(hole: np.ndarray) -> float:
    """The fraction of pixels that are holes."""
    if hole.dtype != bool or hole.ndim != 2:
        raise TypeError(f"hole_ratio: expected a bool HxW array, got {hole.dtype} of shape {hole.shape}")
    return float(hole.mean())


def resize_nearest(hole: np.ndarray, height: int, width: int) -> np.ndarray:
    """Nearest-neighbour resize of a bool mask: output pixel i reads input pixel floor((i + 0.5) * in / out).

    Interpolating and re-thresholding would move the hole edges; nearest keeps the mask binary and, for 512 -> 256,
    simply takes every other pixel.
    """
    rows = ((np.arange(height) + 0.5) * hole.shape[0] / height).astype(np.int64)
    cols = ((np.arange(width) + 0.5) * hole.shape[1] / width).astype(np.int64)
    return hole[rows[:, None], cols[None, :]]


# --- NVIDIA irregular masks (Liu et al. 2018): the mirror keeps every 20th of the 12,000 test masks -------------

IRREGULAR_COUNT = 12000
IRREGULAR_BINS = ("0-10%", "10-20%", "20-30%", "30-40%", "40-50%", "50-60%")


def _check_index(index: int) -> None:
    if not 0 <= index < IRREGULAR_COUNT:
        raise ValueError(f"NVIDIA irregular mask index must be in 0..{IRREGULAR_COUNT - 1}, got {index}")


def irregular_split(index: int) -> str:
    """``"eval"`` when ``index // 20`` is even, else ``"train"``.

    In the mirror's subset (indices 0, 20, ..., 11980) consecutive masks alternate, so each 1000-block (one
    hole-ratio bin, with or without the border constraint) gives 25 masks to each side: both halves cover every
    bin and border kind, and no mask is in both.
    """
    _check_index(index)
    return "eval" if (index // 20) % 2 == 0 else "train"


def hole_ratio_bin(index: int) -> str:
    """The hole-ratio bin of a mask from its index: 2000 masks per 10% bin, in order (MANIFEST.md measured it)."""
    _check_index(index)
    return IRREGULAR_BINS[index // 2000]


def irregular_masks(folder: str | Path, split: str) -> list[tuple[int, Path]]:
    """The ``(index, path)`` of each mask of one half (``"eval"`` or ``"train"``) in a folder of NVIDIA masks
    named by index (``00020.png``), in index order."""
    if split not in ("eval", "train"):
        raise ValueError(f"irregular_masks: split must be 'eval' or 'train', got {split!r}")
    files = image_files(Path(folder))
    bad = [str(p) for p in files if not p.stem.isdigit()]
    if bad:
        raise MaskError(f"{folder}: NVIDIA masks are named by their index (00020.png); not so: {', '.join(bad[:5])}")
    masks = sorted((int(p.stem), p) for p in files)
    return [(i, p) for i, p in masks if irregular_split(i) == split]


# --- Free-form training masks: LaMa's random thin / medium / thick generators ----------------------------------

@dataclass(frozen=True)
class Strokes:
    """LaMa's ``irregular_kwargs``: ``min_times``..``max_times`` (+1, see ``FreeFormMasks``) strokes, each of 1-5
    segments turning by ``0.01 + randint(max_angle)`` radians, ``10 + randint(max_len)`` px long and
    ``5 + randint(max_width)`` px wide (at 256 px)."""

    min_times: int
    max_times: int
    max_width: int
    max_angle: int
    max_len: int


@dataclass(frozen=True)
class Boxes:
    """LaMa's ``box_kwargs``: ``min_times``..``max_times`` axis-aligned boxes with sides in
    ``bbox_min_size``..``bbox_max_size`` px, kept ``margin`` px from the border (at 256 px)."""

    margin: int
    bbox_min_size: int
    bbox_max_size: int
    min_times: int
    max_times: int


@dataclass(frozen=True)
class Preset:
    """One LaMa mask config: each mask is strokes or boxes, chosen with the normalised probabilities; masks with
    more than ``max_hole_ratio`` of holes are drawn again (LaMa's ``max_tamper_area``)."""

    irregular_proba: float
    strokes: Strokes
    box_proba: float
    boxes: Boxes | None
    max_hole_ratio: float


# advimman/lama @ 786f5936b27fb3dacd2b1ad799e4de968ea697e7 (files unchanged since 552cd55, 2021-11-10).
PRESETS: dict[str, Preset] = {
    # configs/data_gen/random_thin_256.yaml
    "thin": Preset(irregular_proba=1.0, strokes=Strokes(min_times=4, max_times=50, max_width=10, max_angle=4, max_len=40),
                   box_proba=0.0, boxes=None, max_hole_ratio=0.5),
    # configs/data_gen/random_medium_256.yaml
    "medium": Preset(irregular_proba=1.0, strokes=Strokes(min_times=4, max_times=5, max_width=50, max_angle=4, max_len=100),
                     box_proba=0.3, boxes=Boxes(margin=0, bbox_min_size=10, bbox_max_size=50, min_times=1, max_times=5),
                     max_hole_ratio=0.5),
    # configs/data_gen/random_thick_256.yaml
    "thick": Preset(irregular_proba=1.0, strokes=Strokes(min_times=1, max_times=5, max_width=100, max_angle=4, max_len=200),
                    box_proba=0.3, boxes=Boxes(margin=10, bbox_min_size=30, bbox_max_size=150, min_times=1, max_times=3),
                    max_hole_ratio=0.5),
}
PRESET_SIDE = 256  # the side the preset numbers are given at
MAX_DRAWS = 1000  # redraws of a mask over max_hole_ratio; only a mask a few pixels wide can use them all up


class FreeFormMasks:
    """Random free-form hole masks drawn like LaMa's ``MixedMaskGenerator`` with one of ``PRESETS``.

    Ranges follow what LaMa's code does with the config when no ramp is set: the stroke count runs over
    ``min_times..max_times + 1`` (its generator adds one to ``max_times``) and box sides over
    ``bbox_min_size..bbox_max_size`` inclusive. A stroke is a chain of segments drawn with round ends (as
    ``cv2.line`` with a thickness does): every pixel within half the brush width of a segment is a hole.

    LaMa does not scale its numbers with the image: it resizes each image to 256 px on the short side before drawing,
    and its 512 px presets are separate, hand-set configs rather than doubled 256 ones. Here lengths, widths, box
    sizes and margins are in 256 px units multiplied by ``min(height, width) / 256``, so masks drawn at 256 x 256
    follow LaMa's distribution (not its pixels: the random streams and the rasteriser are this harness's) and other
    sizes keep its proportions; counts and angles do not scale.

    The presets differ in stroke width more than in area: over 1000 masks at 256 px the mean hole ratio is 0.27
    (thin: many narrow strokes), 0.24 (medium) and 0.27 (thick: few wide strokes or large boxes).

    Args:
        preset: ``"thin"``, ``"medium"`` or ``"thick"``.
    """

    def __init__(self, preset: str):
        if preset not in PRESETS:
            raise ValueError(f"FreeFormMasks: unknown preset {preset!r}; known: {', '.join(PRESETS)}")
        self.preset = preset
        self.params = PRESETS[preset]

    def __call__(self, rng: np.random.Generator, height: int, width: int) -> np.ndarray:
        """A bool ``height`` x ``width`` mask (True = hole) drawn from ``rng``; the same rng state gives the same mask."""
        p = self.params
        scale = min(height, width) / PRESET_SIDE
        box = p.box_proba / (p.irregular_proba + p.box_proba)
        for _ in range(MAX_DRAWS):
            if rng.random() < box:
                hole = _boxes(rng, height, width, p.boxes, scale)
            else:
                hole = _strokes(rng, height, width, p.strokes, scale)
            if hole.mean() <= p.max_hole_ratio:
                return hole
        raise RuntimeError(f"FreeFormMasks({self.preset!r}): no mask of at most {p.max_hole_ratio:.0%} holes in "
                           f"{MAX_DRAWS} draws at {width}x{height}; the mask is too small for the preset")


def _strokes(rng: np.random.Generator, height: int, width: int, s: Strokes, scale: float) -> np.ndarray:
    hole = np.zeros((height, width), dtype=bool)
    for i in range(int(rng.integers(s.min_times, s.max_times + 2))):
        x, y = int(rng.integers(width)), int(rng.integers(height))
        for _ in range(1 + int(rng.integers(5))):
            angle = 0.01 + int(rng.integers(s.max_angle))
            if i % 2 == 0:
                angle = 2 * math.pi - angle
            length = (10 + int(rng.integers(s.max_len))) * scale
            brush = (5 + int(rng.integers(s.max_width))) * scale
            end_x = min(max(int(x + length * math.sin(angle)), 0), width)
            end_y = min(max(int(y + length * math.cos(angle)), 0), height)
            _draw_capsule(hole, (x, y), (end_x, end_y), brush / 2)
            x, y = end_x, end_y
    return hole


def _boxes(rng: np.random.Generator, height: int, width: int, b: Boxes, scale: float) -> np.ndarray:
    hole = np.zeros((height, width), dtype=bool)
    margin = round(b.margin * scale)
    largest = max(1, min(round(b.bbox_max_size * scale), height - 2 * margin, width - 2 * margin))
    smallest = min(max(1, round(b.bbox_min_size * scale)), largest)
    for _ in range(int(rng.integers(b.min_times, b.max_times + 1))):
        bw, bh = int(rng.integers(smallest, largest + 1)), int(rng.integers(smallest, largest + 1))
        x0 = int(rng.integers(margin, max(margin, width - margin - bw) + 1))
        y0 = int(rng.integers(margin, max(margin, height - margin - bh) + 1))
        hole[y0:y0 + bh, x0:x0 + bw] = True
    return hole


def _draw_capsule(hole: np.ndarray, a: tuple[int, int], b: tuple[int, int], radius: float) -> None:
    # Marks the pixels (centres at integer coordinates) within `radius` of the segment a-b, in its bounding box only.
    (ax, ay), (bx, by) = a, b
    x0, x1 = max(0, math.floor(min(ax, bx) - radius)), min(hole.shape[1], math.ceil(max(ax, bx) + radius) + 1)
    y0, y1 = max(0, math.floor(min(ay, by) - radius)), min(hole.shape[0], math.ceil(max(ay, by) + radius) + 1)
    if x0 >= x1 or y0 >= y1:
        return
    px = np.arange(x0, x1, dtype=np.float64)[None, :] - ax
    py = np.arange(y0, y1, dtype=np.float64)[:, None] - ay
    dx, dy = bx - ax, by - ay
    length2 = dx * dx + dy * dy
    t = np.clip((px * dx + py * dy) / length2, 0, 1) if length2 else 0.0
    hole[y0:y1, x0:x1] |= (px - t * dx) ** 2 + (py - t * dy) ** 2 <= radius * radius
