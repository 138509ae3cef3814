"""Table 2's inpainting evaluation sets, prepared once so that every model fills the same holes.

``prepare_inpaint_set`` writes each set as ``images/<stem>.png`` (RGB), ``masks/<stem>.png`` (255 = hole, the harness
convention, whatever the source's) and ``manifest.tsv``, which records where each image and mask came from, the
mask draw and the sha256 of both files' decoded pixels; ``load_inpaint_pairs`` reads the pairs back and refuses any
file that no longer matches. A model is then scored on files, not on a re-run of the mask draw.

Places365 and FFHQ come with MI-GAN's masks (255 = known), paired by file stem. CelebA-HQ has none: each image gets
an NVIDIA irregular mask from the evaluation half of the split in ``repro.data.masks``, image ``k`` (in name order)
from hole-ratio bin ``k mod 6``, so a set of 56 covers all six bins. Mural, the paper's third set, is not public;
FFHQ stands in for it and says so in every label.
"""

from __future__ import annotations

import csv
import os
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

import numpy as np

from layers.imresize import imresize
from repro.data.io import ImageError, as_rgb, read_image, write_png
from repro.data.manifest import sha256_pixels
from repro.data.masks import (
    IRREGULAR_BINS,
    MaskError,
    check_image_and_mask,
    hole_ratio,
    hole_ratio_bin,
    irregular_masks,
    read_mask,
    resize_nearest,
)
from repro.data.registry import get_dataset, image_files, locate

MANIFEST = "manifest.tsv"
COLUMNS = ("image", "image_source", "mask_source", "mask_convention", "mask_seed", "hole_ratio", "hole_bin", "height",
           "width", "image_sha256", "mask_sha256")
RESIZE_FILTER = "MATLAB bicubic imresize, antialiased (layers/imresize.py)"
IRREGULAR_RESIZE = "nearest-neighbour"


@dataclass(frozen=True)
class InpaintSet:
    """One evaluation set.

    Args:
        name: the Table 2 column (``"CelebA-HQ"``).
        dataset: registry name of its images.
        masks: registry name of its masks: its own (paired by stem) or ``"irregular_masks"`` (drawn per image).
        mask_convention: how ``masks`` marks holes (``repro.data.masks.CONVENTIONS``).
        size: images are resized to ``size`` x ``size`` with ``RESIZE_FILTER`` (None: used as stored).
        source: where the images come from, for the footnote.
        stand_in_for: the paper's set this one replaces, when the paper's is not available.
    """

    name: str
    dataset: str
    masks: str
    mask_convention: str
    size: int | None
    source: str
    stand_in_for: str | None = None

    @property
    def own_masks(self) -> bool:
        return self.masks != "irregular_masks"


INPAINT_SETS: dict[str, InpaintSet] = {s.name: s for s in (
    InpaintSet(name="Places365", dataset="Places365", masks="Places365_masks", mask_convention="known255", size=None,
               source="Places365 validation sample from MI-GAN, 256x256"),
    InpaintSet(name="CelebA-HQ", dataset="CelebA-HQ", masks="irregular_masks", mask_convention="hole255", size=256,
               source="CelebA-HQ sample from StarGAN v2, 1024x1024 JPEG"),
    InpaintSet(name="FFHQ", dataset="FFHQ", masks="FFHQ_masks", mask_convention="known255", size=None,
               source="FFHQ sample from MI-GAN, 256x256", stand_in_for="Mural"),
)}


class InpaintPair(NamedTuple):
    """One prepared pair: the image stem, the ground truth (uint8 HxWx3) and its holes (bool HxW, True = hole)."""

    name: str
    image: np.ndarray
    hole: np.ndarray


def get_inpaint_set(name: str) -> InpaintSet:
    if name not in INPAINT_SETS:
        raise KeyError(f"unknown inpainting set {name!r}; known: {', '.join(INPAINT_SETS)}")
    return INPAINT_SETS[name]


def set_label(name: str) -> str:
    """The column label of a set in tables: its name, with the paper's set it stands in for."""
    s = get_inpaint_set(name)
    return f"{s.name} (stand-in for {s.stand_in_for})" if s.stand_in_for else s.name


def description(name: str) -> str:
    """One line for a table footnote: source, size, mask rule and resize filter."""
    s = get_inpaint_set(name)
    size = f"resized to {s.size}x{s.size} with {RESIZE_FILTER}" if s.size else "used as stored"
    if s.own_masks:
        masks = "its own masks (MI-GAN, 255 = known), paired by file name"
    else:
        masks = (f"NVIDIA irregular masks from the evaluation half (index // 20 even), resized 512 -> {s.size} "
                 f"{IRREGULAR_RESIZE}, one per image by a seeded draw cycling through the bins "
                 f"{', '.join(IRREGULAR_BINS)}")
    stand_in = f"; stands in for {s.stand_in_for}, which is not public" if s.stand_in_for else ""
    return f"{set_label(name)}: {s.source}, {size}; {masks}{stand_in}."


class _Row(NamedTuple):
    stem: str
    image: np.ndarray
    hole: np.ndarray
    image_source: str
    mask_source: str
    mask_seed: str
    hole_bin: str


def prepare_inpaint_set(name: str, out_dir: str | Path, *, data_mirror: str | Path | None = None,
                        data_dir: str | Path = "data", seed: int = 0) -> Path:
    """Write the pairs of set ``name`` under ``out_dir`` (see the module docstring); returns the manifest's path.

    Every pair is read and checked before anything is written, and the manifest is removed first and written last
    (under a temporary name, then renamed), so an interrupted run leaves no manifest beside a partial set.

    Args:
        name: a key of ``INPAINT_SETS``.
        out_dir: the output folder (created when missing).
        data_mirror, data_dir: where the sets are found (``repro.data.registry.locate``; checksums are checked).
        seed: the mask draw of sets without their own masks (ignored by the others).
    """
    s = get_inpaint_set(name)
    out_dir = Path(out_dir)
    rows = _own_mask_rows(s, data_mirror, data_dir) if s.own_masks else _irregular_rows(s, data_mirror, data_dir, seed)
    manifest = out_dir / MANIFEST
    manifest.unlink(missing_ok=True)
    lines = []
    for r in rows:
        image_path, mask_path = out_dir / "images" / f"{r.stem}.png", out_dir / "masks" / f"{r.stem}.png"
        write_png(image_path, r.image)
        write_png(mask_path, r.hole.astype(np.uint8) * 255)
        h, w = r.hole.shape
        lines.append((r.stem, r.image_source, r.mask_source, s.mask_convention, r.mask_seed,
                      f"{hole_ratio(r.hole):.6f}", r.hole_bin, str(h), str(w), sha256_pixels(image_path),
                      sha256_pixels(mask_path)))
    tmp = manifest.with_name(f".{MANIFEST}.tmp")
    with open(tmp, "w") as fh:
        fh.write(f"# {description(name)}\n")
        fh.write("\t".join(COLUMNS) + "\n")
        fh.writelines("\t".join(line) + "\n" for line in lines)
    os.replace(tmp, manifest)
    return manifest


def _load_image(path: Path, size: int | None) -> np.ndarray:
    image = as_rgb(read_image(path))
    if size is None or image.shape[:2] == (size, size):
        return image
    if image.shape[0] != image.shape[1]:
        raise ImageError(f"{path}: {image.shape[1]}x{image.shape[0]} is not square; resizing it to {size}x{size} "
                         "would distort it")
    return imresize(image, output_shape=(size, size))


def _own_mask_rows(s: InpaintSet, data_mirror, data_dir) -> list[_Row]:
    images = locate(s.dataset, data_mirror=data_mirror, data_dir=data_dir)
    masks = locate(s.masks, data_mirror=data_mirror, data_dir=data_dir)
    by_stem = {p.stem: p for p in image_files(masks)}
    rows = []
    for path in image_files(images):
        mask_path = by_stem.get(path.stem)
        if mask_path is None:
            raise MaskError(f"{path}: no mask named {path.stem}.* in {masks}")
        image = _load_image(path, s.size)
        hole = read_mask(mask_path, convention=s.mask_convention)
        check_image_and_mask(image, hole, image_path=path, mask_path=mask_path)
        rows.append(_Row(path.stem, image, hole, _relative(s.dataset, path), _relative(s.masks, mask_path), "", ""))
    return rows


def draw_irregular_masks(pool: list[tuple[int, Path]], count: int, seed: int) -> list[tuple[int, Path]]:
    """The ``(index, path)`` of the mask of each of ``count`` images, image ``k`` from hole-ratio bin ``k mod 6``.

    Each bin's masks are shuffled by their own stream ``[seed, bin]`` and taken in turn (starting over when a bin
    runs out), so one seed fixes every image's mask and a set of at least six images covers all bins.
    """
    by_bin = [[m for m in pool if hole_ratio_bin(m[0]) == name] for name in IRREGULAR_BINS]
    if not all(by_bin):
        raise MaskError(f"the irregular mask pool lacks bin(s) {[n for n, b in zip(IRREGULAR_BINS, by_bin) if not b]}")
    queues = [[members[i] for i in np.random.default_rng([seed, b]).permutation(len(members))]
              for b, members in enumerate(by_bin)]
    drawn = []
    for k in range(count):
        queue = queues[k % len(queues)]
        drawn.append(queue[(k // len(queues)) % len(queue)])
    return drawn


def _irregular_rows(s: InpaintSet, data_mirror, data_dir, seed: int) -> list[_Row]:
    images = image_files(locate(s.dataset, data_mirror=data_mirror, data_dir=data_dir))
    pool = irregular_masks(locate(s.masks, data_mirror=data_mirror, data_dir=data_dir), "eval")
    rows = []
    for path, (index, mask_path) in zip(images, draw_irregular_masks(pool, len(images), seed)):
        image = _load_image(path, s.size)
        hole = resize_nearest(read_mask(mask_path, convention=s.mask_convention), *image.shape[:2])
        check_image_and_mask(image, hole, image_path=path, mask_path=mask_path)
        rows.append(_Row(path.stem, image, hole, _relative(s.dataset, path), _relative(s.masks, mask_path), str(seed),
                         hole_ratio_bin(index)))
    return rows


def _relative(dataset: str, path: Path) -> str:
    # The path inside a mirror or data_dir, as in MANIFEST.md and the checksum manifests.
    return f"{get_dataset(dataset).folder}/{path.name}"


def load_inpaint_pairs(prepared_dir: str | Path) -> list[InpaintPair]:
    """The pairs a ``prepare_inpaint_set`` run wrote, in manifest order, each checked against its recorded sha256."""
    prepared_dir = Path(prepared_dir)
    manifest = prepared_dir / MANIFEST
    if not manifest.is_file():
        raise FileNotFoundError(f"{manifest}: no manifest; prepare the set first (or the last run was interrupted)")
    with open(manifest) as fh:
        rows = list(csv.DictReader((line for line in fh if not line.startswith("#")), delimiter="\t"))
    pairs = []
    for row in rows:
        image_path = prepared_dir / "images" / f"{row['image']}.png"
        mask_path = prepared_dir / "masks" / f"{row['image']}.png"
        for path, key in ((image_path, "image_sha256"), (mask_path, "mask_sha256")):
            if not path.is_file():
                raise FileNotFoundError(f"{path}: listed in {manifest} but missing")
            if sha256_pixels(path) != row[key]:
                raise ValueError(f"{path}: decoded pixels differ from the sha256 in {manifest}; prepare the set again")
        pairs.append(InpaintPair(row["image"], as_rgb(read_image(image_path)), read_mask(mask_path, convention="hole255")))
    return pairs
