"""Training data for SR: random aligned LR/HR patches from registry sets, in an order that resumes exactly.

Each HR image is cropped top-left to a multiple of the scale and degraded ONCE with the MATLAB-compatible bicubic
(the benchmark degradation of ``repro.data.prepare.make_pair``); the LR image is cached as a uint8 PNG under
``cache_dir`` and both are then held in memory (T91 + BSD200: ~300 images, ~100 MB). A patch is cut from the LR
image at (y, x) and from the HR image at (scale*y, scale*x), so it is the bicubic of the whole image, cropped, as in
the LR of every SR benchmark.

Sample ``g`` of the infinite stream is a pure function of ``(seed, g)``: epoch ``g // epoch_length`` visits every
image ``enlarge`` times in an order drawn from ``(seed, epoch)``; the crop and one of the 8 dihedral transforms
(BasicSR's ``augment``: horizontal flip, vertical flip, transpose) are drawn from ``(seed, g)``. Step ``t`` of a run
with a per-rank batch ``B`` on ``W`` ranks reads ``g = (t * W + rank) * B + i``, so a resumed run, any number of
loader workers and any split of the global batch over ranks see the same samples.

Images smaller than the HR patch are skipped with one warning that lists them (an error only when none is left):
padding would invent pixels, and T91 is mostly small (at x4 with 48x48 LR patches, 51 of its 91 images are under
192 px on a side). Smaller patches keep them: at x4, ``lr_patch <= 19`` uses all of T91.
"""

from __future__ import annotations

import copy
import hashlib
import inspect
import itertools
import os
import tempfile
import warnings
from functools import lru_cache
from pathlib import Path
from typing import NamedTuple

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, Sampler

from layers.imresize import imresize
from repro.data.io import ImageError, as_rgb, modcrop, read_image, write_png
from repro.data.registry import image_files, locate

# Part of every cache key: the resize (MATLAB bicubic, antialiased, uint8 after each pass) and the source of its
# implementation, so that any change to layers/imresize.py makes new entries instead of reading stale ones.
_IMRESIZE_SOURCE = Path(inspect.getsourcefile(imresize)).read_bytes()
IMRESIZE_VERSION = "matlab-bicubic-uint8/" + hashlib.sha256(_IMRESIZE_SOURCE).hexdigest()[:16]


class Sample(NamedTuple):
    """What sample ``g`` is: the image, the top-left corner of its LR crop, and the augmentation."""

    image: int
    y: int
    x: int
    hflip: bool
    vflip: bool
    rot90: bool  # a transpose, as BasicSR's augment; with the flips it gives all 8 rotations and reflections


def lr_cache_key(hr: np.ndarray, scale: int) -> str:
    """sha256 of the resize settings and the exact pixels the resize reads (the mod-cropped HR, its shape, dtype).

    Keyed by pixels rather than file bytes: a re-encoded copy of the same image shares the entry, and a changed
    file never meets a stale one.
    """
    h = hashlib.sha256(f"{IMRESIZE_VERSION}|x{scale}|{hr.shape}|{hr.dtype}|".encode())
    h.update(np.ascontiguousarray(hr).tobytes())
    return h.hexdigest()


def cached_lr(hr: np.ndarray, scale: int, cache_dir: str | Path, *, name: str = "image") -> np.ndarray:
    """``imresize(hr, 1 / scale)`` in uint8, read from ``cache_dir`` when made before, else made and written there.

    Args:
        hr: uint8 HxW or HxWx3, a multiple of ``scale``.
        scale: the SR factor.
        cache_dir: the cache folder (created when missing).
        name: a readable prefix of the entry's file name (the key alone decides what is read).
    """
    path = Path(cache_dir) / f"{name}.x{scale}.{lr_cache_key(hr, scale)[:32]}.png"
    expected = (hr.shape[0] // scale, hr.shape[1] // scale, *hr.shape[2:])
    if path.is_file():
        try:
            lr = read_image(path)
            if lr.shape == expected:
                return lr
        except ImageError as err:
            warnings.warn(f"{err}; remaking it", stacklevel=2)
    lr = imresize(hr, 1 / scale)
    path.parent.mkdir(parents=True, exist_ok=True)
    # Written under a temporary name, then renamed (atomic on POSIX): a killed run leaves no half-written entry, and
    # ranks that build the same entry at once each rename a whole file.
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.stem}.", suffix=".tmp.png")
    os.close(fd)
    try:
        write_png(tmp, lr)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return lr


@lru_cache(maxsize=4)
def _epoch_order(seed: int, epoch: int, n_images: int, enlarge: int) -> np.ndarray:
    # Every image `enlarge` times, shuffled; cached because consecutive samples share an epoch.
    # The stream [seed, 0, epoch] is kept apart from the per-sample [seed, 1, g].
    return np.random.default_rng([seed, 0, epoch]).permutation(np.tile(np.arange(n_images), enlarge))


def dihedral(img: np.ndarray, hflip: bool, vflip: bool, rot90: bool) -> np.ndarray:
    """BasicSR's ``augment`` on an HxWxC array: flip left-right, flip up-down, then transpose H and W."""
    if hflip:
        img = img[:, ::-1]
    if vflip:
        img = img[::-1]
    if rot90:
        img = img.transpose(1, 0, 2)
    return img


def _to_tensor(img: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(img.transpose(2, 0, 1))).float().div_(255)


def draw_sample(dataset, g: int, images: list[np.ndarray], patch: int) -> Sample:
    """Sample ``g`` of a patch stream (``SRPatches``, ``InpaintPatches``): its image from the epoch's order, then the
    crop corner in ``images[image]`` and the flips from the stream ``[seed, 1, g]``.

    Args:
        dataset: holds ``seed``, ``epoch_length``, ``enlarge`` and ``augment``.
        images: the arrays the crop is cut from (their sizes bound the corner).
        patch: the crop side in ``images``.
    """
    if g < 0:
        raise IndexError(f"{type(dataset).__name__}: sample index must be >= 0, got {g}")
    epoch, position = divmod(g, dataset.epoch_length)
    image = int(_epoch_order(dataset.seed, epoch, len(images), dataset.enlarge)[position])
    rng = np.random.default_rng([dataset.seed, 1, g])
    h, w = images[image].shape[:2]
    y, x = int(rng.integers(0, h - patch + 1)), int(rng.integers(0, w - patch + 1))
    flips = rng.integers(0, 2, size=3).astype(bool) & dataset.augment  # drawn either way: crops do not depend on it
    return Sample(image, y, x, *(bool(f) for f in flips))


class SRPatches(Dataset):
    """Random LR patches with their HR patches; ``dataset[g]`` is ``(lq, gt)`` for any ``g >= 0``.

    lq is float32 [3, lr_patch, lr_patch] and gt float32 [3, scale*lr_patch, scale*lr_patch], both in [0, 1];
    grayscale images are replicated to RGB. There is no ``__len__`` (the stream is infinite); ``epoch_length`` is
    the number of samples per epoch.

    Args:
        sets: registry names of SR sets (``["T91", "BSD200"]``), read in this order.
        scale: the SR factor.
        cache_dir: where the bicubic LR images are cached (``results/cache/lr``).
        lr_patch: the LR patch side. Default: 48 (the paper's).
        enlarge: each image appears this many times per epoch (BasicSR's dataset_enlarge_ratio). Default: 1.
        seed: the sample stream's seed. Default: 0.
        augment: draw flips and transposes. Default: True.
        data_mirror, data_dir, download: where the sets are found (see ``repro.data.registry.locate``).
    """

    def __init__(self, sets: list[str], *, scale: int, cache_dir: str | Path, lr_patch: int = 48, enlarge: int = 1,
                 seed: int = 0, augment: bool = True, data_mirror: str | Path | None = None,
                 data_dir: str | Path = "data", download: bool | None = None):
        if scale < 1 or lr_patch < 1 or enlarge < 1:
            raise ValueError(f"SRPatches: scale, lr_patch and enlarge must be positive, got {scale}, {lr_patch}, {enlarge}")
        self.scale, self.lr_patch, self.enlarge, self.seed, self.augment = scale, lr_patch, enlarge, seed, augment
        self.names: list[str] = []
        self.hr: list[np.ndarray] = []  # uint8 HxWx3, mod-cropped
        self.lr: list[np.ndarray] = []  # uint8 (H/s)x(W/s)x3
        small = []
        for set_name in sets:
            folder = locate(set_name, data_mirror=data_mirror, data_dir=data_dir, download=download)
            for path in image_files(folder):
                img = read_image(path)
                h, w = img.shape[:2]
                if h // scale < lr_patch or w // scale < lr_patch:
                    small.append(f"{path} ({w}x{h})")
                    continue
                hr = modcrop(img, scale, path=path)
                self.hr.append(as_rgb(hr))
                self.lr.append(as_rgb(cached_lr(hr, scale, cache_dir, name=f"{set_name}_{path.stem}")))
                self.names.append(f"{set_name}/{path.stem}")
        hr_side = scale * lr_patch
        if not self.hr:
            raise ValueError(f"SRPatches: no image of {', '.join(sets)} is at least {hr_side}x{hr_side} "
                             f"(x{scale}, LR patch {lr_patch}); use a smaller lr_patch")
        if small:
            warnings.warn(f"SRPatches: skipping {len(small)} of {len(small) + len(self.hr)} images smaller than the "
                          f"{hr_side}x{hr_side} HR patch (x{scale}, LR patch {lr_patch}): {', '.join(small)}",
                          stacklevel=2)
        self.epoch_length = len(self.hr) * enlarge

    def draw(self, g: int) -> Sample:
        """The image, crop and augmentation of sample ``g``: a pure function of ``(self.seed, g)``."""
        return draw_sample(self, g, self.lr, self.lr_patch)

    def __getitem__(self, g: int) -> tuple[torch.Tensor, torch.Tensor]:
        s = self.draw(g)
        p, k = self.lr_patch, self.scale
        lq = self.lr[s.image][s.y:s.y + p, s.x:s.x + p]
        gt = self.hr[s.image][k * s.y:k * (s.y + p), k * s.x:k * (s.x + p)]
        return _to_tensor(dihedral(lq, s.hflip, s.vflip, s.rot90)), _to_tensor(dihedral(gt, s.hflip, s.vflip, s.rot90))


class StepBatches(Sampler):
    """The global sample indices of one rank's batch for each step from ``start_step`` on, forever.

    Step ``t`` of rank ``r`` reads ``(t * world_size + r) * batch_size + i`` for ``i < batch_size``: the ranks
    together read the global batch ``[t * B * W, (t + 1) * B * W)``, whatever ``W`` is.
    """

    def __init__(self, batch_size: int, start_step: int = 0, rank: int = 0, world_size: int = 1):
        if batch_size < 1 or start_step < 0 or not 0 <= rank < world_size:
            raise ValueError(f"StepBatches: need batch_size >= 1, start_step >= 0, 0 <= rank < world_size; got "
                             f"{batch_size}, {start_step}, {rank}, {world_size}")
        self.batch_size, self.start_step, self.rank, self.world_size = batch_size, start_step, rank, world_size

    def __iter__(self):
        for step in itertools.count(self.start_step):
            first = (step * self.world_size + self.rank) * self.batch_size
            yield list(range(first, first + self.batch_size))


def _worker_init(worker_id: int) -> None:
    # A loader worker only slices and flips; torch's default of one thread per core in each worker would compete
    # with the training step for the same cores.
    torch.set_num_threads(1)


def make_loader(dataset: SRPatches, *, batch_size: int, start_step: int = 0, rank: int = 0, world_size: int = 1,
                workers: int = 0, seed: int | None = None) -> DataLoader:
    """An endless iterable of ``(lq, gt)`` batches for steps ``start_step, start_step + 1, ...``.

    The batches do not depend on ``workers`` (the DataLoader keeps the sampler's order).

    Args:
        dataset: the patches.
        batch_size: the per-rank batch; the global batch is ``batch_size * world_size``.
        start_step: the first step to load (the step a resumed run continues from).
        rank, world_size: this process and the number of processes (DDP).
        workers: loader processes (0: load in this process).
        seed: the sample stream's seed. Default: the dataset's own (a different one reads a copy, leaving
            ``dataset`` unchanged).
    """
    if seed is not None and seed != dataset.seed:
        dataset = copy.copy(dataset)  # shallow: the images are shared
        dataset.seed = seed
    # A generator of its own: the loader draws its workers' base seed from it when an iterator is made, which would
    # otherwise take a number from the global RNG and shift the training noise of a resumed run.
    return DataLoader(dataset, batch_sampler=StepBatches(batch_size, start_step, rank, world_size), num_workers=workers,
                      worker_init_fn=_worker_init if workers else None,
                      generator=torch.Generator().manual_seed(dataset.seed))


def build_training_data(cfg: dict, *, download: bool | None = None) -> SRPatches:
    """The patches a run config asks for (``repro.train.config.resolve``: ``scale``, ``data_mirror``, ``data_dir``
    and ``train.sets``, ``train.patch``, ``train.enlarge``, ``train.seed``, ``train.cache_dir``, the last by default
    ``results/cache/lr``)."""
    tc = cfg["train"]
    cache_dir = tc.get("cache_dir") or "results/cache/lr"
    return SRPatches(list(tc["sets"]), scale=int(cfg["scale"]), cache_dir=cache_dir, lr_patch=int(tc.get("patch", 48)),
                     enlarge=int(tc.get("enlarge", 1)), seed=int(tc.get("seed", 0)), data_mirror=cfg.get("data_mirror"),
                     data_dir=cfg.get("data_dir", "data"), download=download)
