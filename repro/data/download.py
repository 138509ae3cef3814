"""Fetching a dataset from its public location into the harness's data folder, with checksums.

Sets with a manifest are fetched file by file from the exact public blobs the manifest names (GitHub raw URLs at
fixed commits), each checked against the source sha256, then copied or decoded losslessly to PNG as the manifest
says. Sets known only by an archive are downloaded and unpacked; their image count is checked.
"""

from __future__ import annotations

import hashlib
import io
import shutil
import tarfile
import tempfile
import urllib.request
import zipfile
from pathlib import Path

from PIL import Image
from tqdm import tqdm

from repro.data.manifest import load_manifest, sha256_file
from repro.data.registry import IMAGE_SUFFIXES, DatasetSpec

TIMEOUT_S = 60


def _get(url: str) -> bytes:
    with urllib.request.urlopen(url, timeout=TIMEOUT_S) as response:
        return response.read()


def fetch(spec: DatasetSpec, data_dir: Path) -> None:
    """Download ``spec`` into ``data_dir / spec.folder``. Raises OSError when it cannot."""
    if spec.manifest:
        _fetch_files(spec, data_dir)
    elif spec.archive_url:
        _fetch_archive(spec, data_dir)
    else:
        raise OSError(f"{spec.name} has no public download location")


def _fetch_files(spec: DatasetSpec, data_dir: Path) -> None:
    entries = load_manifest(spec.manifest)
    staging = Path(tempfile.mkdtemp(prefix=f".{spec.name}-", dir=_ensure(data_dir)))
    try:
        for entry in tqdm(entries, desc=f"fetch {spec.name}", unit="file"):
            blob = _get(entry.source_url)
            if hashlib.sha256(blob).hexdigest() != entry.source_sha256:
                raise OSError(f"{entry.source_url}: checksum mismatch (expected {entry.source_sha256})")
            target = staging / Path(entry.file).name
            if entry.transform == "decode-to-png":
                try:
                    with Image.open(io.BytesIO(blob)) as im:
                        im.save(target, format="PNG")
                except (OSError, SyntaxError) as err:  # PIL's decode errors name no file
                    raise OSError(f"{entry.source_url} ({entry.file}): cannot decode the downloaded image ({err})") from err
            else:
                target.write_bytes(blob)
            if sha256_file(target) != entry.sha256:
                raise OSError(f"{entry.file}: the prepared file does not match the manifest sha256 {entry.sha256}")
        _install(staging, data_dir / spec.folder)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _fetch_archive(spec: DatasetSpec, data_dir: Path) -> None:
    staging = Path(tempfile.mkdtemp(prefix=f".{spec.name}-", dir=_ensure(data_dir)))
    try:
        archive = staging / Path(spec.archive_url).name
        with urllib.request.urlopen(spec.archive_url, timeout=TIMEOUT_S) as response, open(archive, "wb") as out:
            shutil.copyfileobj(response, out)
        unpacked = staging / "unpacked"
        if zipfile.is_zipfile(archive):
            with zipfile.ZipFile(archive) as z:
                z.extractall(unpacked)
        else:
            with tarfile.open(archive) as t:
                t.extractall(unpacked, filter="data")
        images = sorted(p for p in unpacked.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES)
        if spec.count is not None and len(images) < spec.count:
            raise OSError(f"{spec.archive_url}: expected at least {spec.count} images, archive has {len(images)}")
        flat = staging / "flat"
        flat.mkdir()
        for p in images:
            shutil.move(str(p), flat / p.name)
        _install(flat, data_dir / spec.folder)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _ensure(path: Path) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    return path


def _install(staging: Path, folder: Path) -> None:
    # Move into place only once everything checked out, so an interrupted download never looks complete.
    folder.parent.mkdir(parents=True, exist_ok=True)
    if folder.exists():
        shutil.rmtree(folder)
    shutil.move(str(staging), folder)
