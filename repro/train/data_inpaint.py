"""Training data for inpainting: random image patches, each with a hole mask, in an order that resumes exactly.

The stream follows ``repro.train.data.SRPatches``: sample ``g`` is a pure function of ``(seed, g)``, epoch
``g // epoch_length`` visits every image ``enlarge`` times in an order drawn from ``(seed, epoch)``, and the crop
and dihedral transform come from the stream ``[seed, 1, g]``. The mask has a stream of its own, ``[seed, 2, g]``,
so changing the mask settings leaves the crops as they were.

A mask is, with probability ``irregular_fraction``, a random square crop (side 256 to 512 px) of a random NVIDIA
irregular mask from the training half of ``repro.data.masks.irregular_split`` (never one Table 2 evaluates on),
resized nearest-neighbour to the patch; otherwise a LaMa free-form mask of a preset drawn uniformly from
``presets``. A mask with no hole or no known pixel is drawn again from the same stream, which keeps it a function of
``(seed, g)``.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from typing import NamedTuple

import numpy as np
import torch
from torch.utils.data import Dataset

from repro.data.io import as_rgb, read_image
from repro.data.masks import PRESETS, FreeFormMasks, irregular_masks, read_mask, resize_nearest
from repro.data.registry import image_files, locate
from repro.train.data import _to_tensor, dihedral, draw_sample

IRREGULAR = "irregular"
MAX_MASK_DRAWS = 1000  # far beyond what a patch of 16 px or more needs; reached only when no valid mask can exist


DEFAULT_PRESETS = tuple(PRESETS)  # every LaMa preset: thin, medium, thick


class InpaintSample(NamedTuple):
    """What sample ``g`` is: the image, the top-left corner of its crop, the augmentation and the mask."""

    image: int
    y: int
    x: int
    hflip: bool
    vflip: bool
    rot90: bool
    mask_kind: str  # a preset name or "irregular"
    hole: np.ndarray  # bool patch x patch, True = hole


class InpaintPatches(Dataset):
    """Random ground-truth patches with hole masks; ``dataset[g]`` is ``(lq, gt)`` for any ``g >= 0``.

    gt is float32 [3, patch, patch] in [0, 1] (grayscale replicated to RGB) and lq float32 [4, patch, patch],
    ``cat(gt * (1 - m), m)`` with ``m`` 1 on holes. There is no ``__len__`` (the stream is infinite);
    ``epoch_length`` is the number of samples per epoch.

    Args:
        sets: registry names of the image sets, read in this order. Default: T91, BSD200.
        patch: the patch side. Default: 256 (the side the LaMa presets are defined at, and the evaluation size).
            Images smaller than the patch are skipped with one warning: at 256, 72 of T91's 91 images.
        enlarge: each image appears this many times per epoch. Default: 1.
        seed: the sample stream's seed. Default: 0.
        augment: draw flips and transposes. Default: True.
        presets: the ``repro.data.masks.PRESETS`` to draw free-form masks from. Default: thin, medium, thick.
        irregular_fraction: the probability of an NVIDIA mask. Default: 0.25.
        data_mirror, data_dir, download: where the sets are found (see ``repro.data.registry.locate``).
    """

    def __init__(self, sets: Sequence[str] = ("T91", "BSD200"), *, patch: int = 256, enlarge: int = 1, seed: int = 0,
                 augment: bool = True, presets: Sequence[str] = DEFAULT_PRESETS,
                 irregular_fraction: float = 0.25, data_mirror=None, data_dir="data", download: bool | None = None):
        if patch < 1 or enlarge < 1:
            raise ValueError(f"InpaintPatches: patch and enlarge must be positive, got {patch}, {enlarge}")
        if not 0 <= irregular_fraction <= 1:
            raise ValueError(f"InpaintPatches: irregular_fraction must be in [0, 1], got {irregular_fraction}")
        if not presets and irregular_fraction < 1:
            raise ValueError("InpaintPatches: no free-form preset given and irregular_fraction < 1")
        self.patch, self.enlarge, self.seed, self.augment = patch, enlarge, seed, augment
        self.irregular_fraction = irregular_fraction
        self.generators = [FreeFormMasks(p) for p in presets]
        self.names: list[str] = []
        self.images: list[np.ndarray] = []  # uint8 HxWx3
        small = []
        for set_name in sets:
            folder = locate(set_name, data_mirror=data_mirror, data_dir=data_dir, download=download)
            for path in image_files(folder):
                img = read_image(path)
                if min(img.shape[:2]) < patch:
                    small.append(f"{path} ({img.shape[1]}x{img.shape[0]})")
                    continue
                self.images.append(as_rgb(img))
                self.names.append(f"{set_name}/{path.stem}")
        if not self.images:
            raise ValueError(f"InpaintPatches: no image of {', '.join(sets)} is at least {patch}x{patch}; "
                             "use a smaller patch")
        if small:
            warnings.warn(f"InpaintPatches: skipping {len(small)} of {len(small) + len(self.images)} images smaller "
                          f"than the {patch}x{patch} patch: {', '.join(small)}", stacklevel=2)
        # The training half of the NVIDIA masks, bit-packed (300 masks of 512x512: 10 MB instead of 79).
        self.irregular: list[np.ndarray] = []
        self.irregular_width = 0
        if irregular_fraction > 0:
            folder = locate("irregular_masks", data_mirror=data_mirror, data_dir=data_dir, download=download)
            for _, path in irregular_masks(folder, "train"):
                hole = read_mask(path, convention="hole255")
                self.irregular.append(np.packbits(hole, axis=1))
                self.irregular_width = hole.shape[1]
        self.epoch_length = len(self.images) * enlarge

    def draw(self, g: int) -> InpaintSample:
        """The image, crop, augmentation and mask of sample ``g``: a pure function of ``(self.seed, g)``."""
        crop = draw_sample(self, g, self.images, self.patch)
        kind, hole = self._mask(np.random.default_rng([self.seed, 2, g]))
        return InpaintSample(*crop, kind, hole)

    def _mask(self, rng: np.random.Generator) -> tuple[str, np.ndarray]:
        p = self.patch
        for _ in range(MAX_MASK_DRAWS):
            if rng.random() < self.irregular_fraction:
                kind, hole = IRREGULAR, self._irregular_crop(rng)
            else:
                generator = self.generators[int(rng.integers(len(self.generators)))]
                kind, hole = generator.preset, generator(rng, p, p)
            if hole.any() and not hole.all():
                return kind, hole
        raise RuntimeError(f"InpaintPatches: no mask with both holes and known pixels in {MAX_MASK_DRAWS} draws "
                           f"at patch {p}x{p}; use a larger patch")

    def _irregular_crop(self, rng: np.random.Generator) -> np.ndarray:
        full = np.unpackbits(self.irregular[int(rng.integers(len(self.irregular)))], axis=1,
                             count=self.irregular_width).astype(bool)
        side = min(full.shape)
        crop = int(rng.integers(side // 2, side + 1))
        y, x = int(rng.integers(0, full.shape[0] - crop + 1)), int(rng.integers(0, full.shape[1] - crop + 1))
        return resize_nearest(full[y:y + crop, x:x + crop], self.patch, self.patch)

    def __getitem__(self, g: int) -> tuple[torch.Tensor, torch.Tensor]:
        s = self.draw(g)
        p = self.patch
        gt = _to_tensor(dihedral(self.images[s.image][s.y:s.y + p, s.x:s.x + p], s.hflip, s.vflip, s.rot90))
        m = torch.from_numpy(s.hole).float()[None]
        return torch.cat([gt * (1 - m), m]), gt


def build_inpaint_training_data(cfg: dict, *, download: bool | None = None) -> InpaintPatches:
    """The patches a run config asks for: ``data_mirror``, ``data_dir`` and ``train.sets``, ``train.patch``,
    ``train.enlarge``, ``train.seed``, ``train.masks.presets``, ``train.masks.irregular_fraction``."""
    tc = cfg["train"]
    masks = tc.get("masks") or {}
    return InpaintPatches(list(tc.get("sets", ("T91", "BSD200"))), patch=int(tc.get("patch", 256)),
                          enlarge=int(tc.get("enlarge", 1)), seed=int(tc.get("seed", 0)),
                          presets=list(masks.get("presets", DEFAULT_PRESETS)),
                          irregular_fraction=float(masks.get("irregular_fraction", 0.25)),
                          data_mirror=cfg.get("data_mirror"), data_dir=cfg.get("data_dir", "data"), download=download)
