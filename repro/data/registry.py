"""Registry of the datasets the paper uses, and where the harness finds them.

A set is looked up, in order, in the config's ``data_mirror`` (a read-only folder laid out like ../shared/datasets,
``<Set>/HR/...``), then in the harness's own ``data_dir`` (where downloads land), and is downloaded there when it is
in neither and the network is allowed. Every file with a known checksum is checked (``locate(checksums=False)`` only
looks for the files, for a workflow that plans its jobs from the sets present); offline with no copy, the error names
the set and says how to provide it.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from repro.data.manifest import MANIFEST_DIR, ManifestEntry, load_manifest, sha256_file, sha256_pixels

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff")


class DatasetError(RuntimeError):
    """A dataset that is missing, incomplete or fails its checksums; the message says which and what to do."""


@dataclass(frozen=True)
class DatasetSpec:
    """One dataset.

    Args:
        name: registry name (``"Set5"``).
        task: ``"sr"``, ``"inpaint"`` or ``"mask"``.
        folder: the image folder inside a mirror or data_dir (``"Set5/HR"``).
        count: the number of images in the standard set (None where it varies).
        manifest: name of the checksum manifest in repro/data/manifests, or None where no checksums are known.
        archive_url: a public archive holding the set, for sets without a per-file manifest.
        note: how to obtain the set by hand, shown when it cannot be found.
    """

    name: str
    task: str
    folder: str
    count: int | None = None
    manifest: str | None = None
    archive_url: str | None = None
    note: str = ""
    aliases: tuple[str, ...] = field(default_factory=tuple)


DATASETS: dict[str, DatasetSpec] = {s.name: s for s in (
    DatasetSpec(name="Set5", task="sr", folder="Set5/HR", count=5, manifest="Set5"),
    DatasetSpec(name="Set14", task="sr", folder="Set14/HR", count=14, manifest="Set14"),
    DatasetSpec(name="BSD100", task="sr", folder="BSD100/HR", count=100, manifest="BSD100", aliases=("B100",)),
    DatasetSpec(name="Urban100", task="sr", folder="Urban100/HR", count=100, manifest="Urban100"),
    DatasetSpec(name="Manga109", task="sr", folder="Manga109/HR", count=109,
                note="Manga109 is distributed on request by its authors (http://www.manga109.org, academic use only); "
                     "place the 109 HR PNGs in <data_mirror>/Manga109/HR/"),
    DatasetSpec(name="T91", task="sr", folder="T91/HR", count=91, manifest="T91"),
    DatasetSpec(name="BSD200", task="sr", folder="BSD200/HR", count=200, manifest="BSD200"),
    DatasetSpec(name="DIV2K", task="sr", folder="DIV2K/HR", count=900,
                archive_url="http://data.vision.ee.ethz.ch/cvl/DIV2K/DIV2K_train_HR.zip",
                note="DIV2K HR (0001-0800 train, 0801-0900 valid) from https://data.vision.ee.ethz.ch/cvl/DIV2K/; "
                     "place all HR PNGs in <data_mirror>/DIV2K/HR/"),
    DatasetSpec(name="Flickr2K", task="sr", folder="Flickr2K/HR", count=2650,
                archive_url="https://cv.snu.ac.kr/research/EDSR/Flickr2K.tar",
                note="Flickr2K from the EDSR authors (https://cv.snu.ac.kr/research/EDSR/Flickr2K.tar); "
                     "place the 2650 HR PNGs in <data_mirror>/Flickr2K/HR/"),
    DatasetSpec(name="Places365", task="inpaint", folder="Inpainting/Places365_val_256/images", manifest="Places365_val_256",
                note="the mirror holds a 16-image sample of the Places365 validation set (256x256)"),
    DatasetSpec(name="Places365_512", task="inpaint", folder="Inpainting/Places365_val_512/images",
                manifest="Places365_val_512"),
    DatasetSpec(name="CelebA-HQ", task="inpaint", folder="Inpainting/CelebA-HQ_1024/images", manifest="CelebA-HQ_1024",
                note="the mirror holds a 56-image sample of CelebA-HQ at 1024x1024"),
    DatasetSpec(name="FFHQ", task="inpaint", folder="Inpainting/FFHQ_256/images", manifest="FFHQ_256"),
    # the paper profile's inpainting training sets (config/paper.yaml train_inpaint); no per-file checksums known
    DatasetSpec(name="Places365_train", task="inpaint", folder="Places365_train/images", count=1803460,
                archive_url="http://data.csail.mit.edu/places/places365/train_256_places365standard.tar",
                note="Places365-Standard training images at 256x256 (http://places2.csail.mit.edu, 1,803,460 "
                     "images, about 24 GB); place them, flattened, in <data_mirror>/Places365_train/images/"),
    DatasetSpec(name="CelebA-HQ_train", task="inpaint", folder="CelebA-HQ_train/images",
                note="CelebA-HQ (Karras et al. 2018) has no public download URL of its own; make the 1024x1024 "
                     "images with the progressive-GAN scripts, keep LaMa's 28,000-image training split, and place "
                     "them in <data_mirror>/CelebA-HQ_train/images/"),
    DatasetSpec(name="Places365_masks", task="mask", folder="Inpainting/Places365_val_256/masks", count=16,
                manifest="Places365_val_256_masks", note="MI-GAN's masks for the Places365 sample; 255 = known, 0 = hole"),
    DatasetSpec(name="FFHQ_masks", task="mask", folder="Inpainting/FFHQ_256/masks", count=18, manifest="FFHQ_256_masks",
                note="MI-GAN's masks for the FFHQ sample; 255 = known, 0 = hole"),
    DatasetSpec(name="irregular_masks", task="mask", folder="Inpainting/masks/NVIDIA_irregular_test_every20th",
                count=600, manifest="irregular_masks",
                note="NVIDIA irregular mask test set (Liu et al. 2018), every 20th mask; 255 = hole"),
)}


def get_dataset(name: str) -> DatasetSpec:
    for spec in DATASETS.values():
        if name == spec.name or name in spec.aliases:
            return spec
    raise DatasetError(f"unknown dataset {name!r}; known: {', '.join(DATASETS)}")


def list_datasets(task: str | None = None) -> list[str]:
    return [n for n, s in DATASETS.items() if task is None or s.task == task]


def image_files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)


def missing_files(spec: DatasetSpec, root: Path) -> list[str]:
    """What the copy of ``spec`` under ``root`` lacks, judged by file names and count alone (empty list when complete).

    No file is opened, so this is cheap enough to run for every set whenever a workflow builds its DAG; ``verify``
    adds the checksums.

    Args:
        spec: the dataset.
        root: a mirror or data_dir, holding ``spec.folder``.
    """
    folder = root / spec.folder
    if not folder.is_dir():
        return [f"{folder}: folder not found"]
    files = image_files(folder)
    if spec.manifest is None:
        if spec.count is not None and len(files) != spec.count:
            return [f"{folder}: expected {spec.count} images, found {len(files)}"]
        return [] if files else [f"{folder}: no images"]
    stems = {p.stem for p in files}
    return [f"{folder / Path(entry.file).name}: missing" for entry in load_manifest(spec.manifest)
            if Path(entry.file).stem not in stems]


def checksum_mismatches(spec: DatasetSpec, root: Path, *, pixels: bool = False) -> list[str]:
    """The files of ``spec`` under ``root`` whose checksums differ from the manifest (files not there are skipped).

    Files are matched by name; a file whose bytes differ is accepted when its decoded pixels match (a PNG decoded
    from the original JPEG is the same image), which is checked only then, or always with ``pixels=True``. A file
    that does not decode (truncated, corrupt) is a problem that names it, like a mismatch.

    Args:
        spec: the dataset; one without a manifest has nothing to check.
        root: a mirror or data_dir, holding ``spec.folder``.
        pixels: also compare the decoded pixels of files whose bytes match.
    """
    folder = root / spec.folder
    if spec.manifest is None or not folder.is_dir():
        return []
    by_stem = {p.stem: p for p in image_files(folder)}
    problems = []
    for entry in load_manifest(spec.manifest):
        path = by_stem.get(Path(entry.file).stem)
        if path is None:
            continue  # reported by missing_files
        same_bytes = path.suffix == Path(entry.file).suffix and sha256_file(path) == entry.sha256
        if same_bytes and not pixels:
            continue
        try:
            decoded = sha256_pixels(path)
        except (OSError, SyntaxError, ValueError) as err:
            # PIL's decode errors ("image file is truncated") do not say which file; read_image's wording does.
            problems.append(f"{path}: cannot decode image ({err}); the file is corrupt, truncated or not an image")
            continue
        if decoded != entry.decoded_sha256:
            problems.append(f"{path}: checksum mismatch (neither the file nor its decoded pixels match the manifest)")
    return problems


def verify(spec: DatasetSpec, root: Path, *, pixels: bool = False) -> list[str]:
    """Problems with the copy of ``spec`` under ``root`` (empty list when it checks out): missing files, then
    checksum mismatches (see ``checksum_mismatches`` for ``pixels``)."""
    return missing_files(spec, root) + checksum_mismatches(spec, root, pixels=pixels)


def locate(name: str, *, data_mirror: str | Path | None = None, data_dir: str | Path = "data",
           download: bool | None = None, checksums: bool = True) -> Path:
    """The folder holding the images of dataset ``name``, checked against its manifest.

    Args:
        name: registry name (or alias).
        data_mirror: a read-only folder laid out as ``<Set>/HR/...``; searched first.
        data_dir: the harness's data folder; downloads land here.
        download: fetch the set when it is nowhere local. Default: unless ``REPRO_OFFLINE=1``.
        checksums: hash every file against the manifest. False checks only that the files are there (names and
            count), which reads no file: for deciding which sets a workflow plans, whose jobs then check the sums.
    """
    spec = get_dataset(name)
    tried = []
    for root in ([Path(data_mirror)] if data_mirror else []) + [Path(data_dir)]:
        folder = root / spec.folder
        if folder.is_dir():
            problems = verify(spec, root) if checksums else missing_files(spec, root)
            if problems:
                shown = "\n  ".join(problems[:10]) + ("\n  ..." if len(problems) > 10 else "")
                raise DatasetError(f"dataset {spec.name} at {folder} fails its checks:\n  {shown}")
            return folder
        tried.append(str(folder))
    if download is None:
        download = os.environ.get("REPRO_OFFLINE", "0") != "1"
    if download:
        from repro.data.download import fetch

        try:
            fetch(spec, Path(data_dir))
        except OSError as err:
            raise DatasetError(_missing_message(spec, tried, f"download failed: {err}")) from err
        return locate(name, data_mirror=None, data_dir=data_dir, download=False, checksums=checksums)
    raise DatasetError(_missing_message(spec, tried, "offline (REPRO_OFFLINE=1)"))


def _missing_message(spec: DatasetSpec, tried: list[str], why: str) -> str:
    how = spec.note or f"point the config's data_mirror at a folder holding {spec.folder}/"
    return (f"dataset {spec.name} not found (looked in: {', '.join(tried)}); {why}. "
            f"To provide it: {how}. The development mirror ../shared/datasets has Set5, Set14, BSD100, Urban100, "
            f"T91, BSD200 and the inpainting samples (see its MANIFEST.md).")


__all__ = ["DATASETS", "MANIFEST_DIR", "DatasetError", "DatasetSpec", "ManifestEntry", "checksum_mismatches", "get_dataset",
           "image_files", "list_datasets", "locate", "missing_files", "verify"]
