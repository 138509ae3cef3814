"""Dataset registry, checksums, download, image reading and the prepared SR pairs."""

import hashlib
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from repro.data import download, manifest, registry
from repro.data.io import ImageError, as_rgb, modcrop, read_image
from repro.data.manifest import load_manifest, sha256_pixels
from repro.data.prepare import load_pairs, make_pair, prepare_sr
from repro.data.registry import DatasetError, get_dataset, locate, verify


@pytest.mark.parametrize("name", ["Set5", "Set14", "BSD100", "Urban100", "T91", "BSD200"])
def test_mirror_sets_pass_their_checksums(data_mirror, name):
    spec = get_dataset(name)
    assert verify(spec, data_mirror) == []
    assert len(registry.image_files(data_mirror / spec.folder)) == spec.count


@pytest.mark.parametrize("name", ["Urban100", "BSD200"])
def test_jpeg_sets_decode_to_the_recorded_pixels(data_mirror, name):
    # Our decoder must give the pixels the mirror recorded (Pillow / libjpeg-turbo); checked for every image.
    spec = get_dataset(name)
    assert verify(spec, data_mirror, pixels=True) == []


def test_manifest_matches_the_mirror_files(data_mirror):
    sums = dict(line.split()[::-1] for line in (data_mirror / "SHA256SUMS").read_text().splitlines())
    for entry in load_manifest("Set14"):
        assert sums[entry.file] == entry.sha256


def test_alias_and_unknown_names():
    assert get_dataset("B100").name == "BSD100"
    with pytest.raises(DatasetError, match="unknown dataset 'Set6'"):
        get_dataset("Set6")


def test_offline_missing_set_names_it_and_says_how(tmp_path):
    with pytest.raises(DatasetError, match=r"dataset Manga109 not found.*manga109\.org"):
        locate("Manga109", data_mirror=tmp_path / "mirror", data_dir=tmp_path / "data", download=False)


def _copy_set(data_mirror: Path, dest: Path, name: str) -> Path:
    spec = get_dataset(name)
    shutil.copytree(data_mirror / spec.folder, dest / spec.folder)
    return dest / spec.folder


def _flip_a_pixel(path: Path) -> None:
    """Corrupt an image so that both its bytes and its pixels differ from the manifest."""
    img = np.asarray(Image.open(path)).copy()
    img[0, 0, 0] ^= 1
    Image.fromarray(img).save(path)


def test_checksum_mismatch_and_missing_file_are_named(data_mirror, tmp_path):
    folder = _copy_set(data_mirror, tmp_path, "Set5")
    _flip_a_pixel(folder / "bird.png")
    (folder / "head.png").unlink()
    with pytest.raises(DatasetError) as err:
        locate("Set5", data_mirror=tmp_path, download=False)
    assert "bird.png: checksum mismatch" in str(err.value) and "head.png: missing" in str(err.value)


def _never_hash(path):
    raise AssertionError(f"{path} was hashed")


def test_presence_check_reads_no_file_but_names_a_missing_one(data_mirror, tmp_path, monkeypatch):
    # What the workflow asks when it builds its DAG: every set of a config, at every invocation, so no hashing.
    monkeypatch.setattr(registry, "sha256_file", _never_hash)
    monkeypatch.setattr(registry, "sha256_pixels", _never_hash)
    for name in ("Set5", "Set14", "BSD100", "Urban100"):
        assert locate(name, data_mirror=data_mirror, download=False, checksums=False) == data_mirror / get_dataset(name).folder
    folder = _copy_set(data_mirror, tmp_path, "Set5")
    (folder / "head.png").unlink()
    with pytest.raises(DatasetError, match="head.png: missing"):
        locate("Set5", data_mirror=tmp_path, download=False, checksums=False)


def test_a_corrupted_file_passes_the_presence_check_and_fails_prepare(data_mirror, tmp_path):
    folder = _copy_set(data_mirror, tmp_path / "mirror", "Set5")
    _flip_a_pixel(folder / "bird.png")
    assert locate("Set5", data_mirror=tmp_path / "mirror", download=False, checksums=False) == folder
    with pytest.raises(DatasetError, match=r"bird\.png: checksum mismatch"):
        prepare_sr("Set5", 4, tmp_path / "Set5_x4", data_mirror=tmp_path / "mirror", data_dir=tmp_path / "data")
    assert not (tmp_path / "Set5_x4").exists()  # checked before anything is written


def test_png_of_a_jpeg_set_is_accepted_by_its_pixels(data_mirror, tmp_path, monkeypatch):
    # Urban100 circulates as PNGs decoded from the original JPEGs; those are the same images. (Five images keep it
    # fast: the manifest is cut to them.)
    spec = registry.DatasetSpec(name="Urban5", task="sr", folder="Urban100/HR", count=5, manifest="Urban100")
    entries = load_manifest("Urban100")[:5]
    monkeypatch.setattr(registry, "load_manifest", lambda name: entries)
    (tmp_path / spec.folder).mkdir(parents=True)
    for e in entries:
        Image.open(data_mirror / e.file).save(tmp_path / spec.folder / f"{Path(e.file).stem}.png", compress_level=1)
    assert verify(spec, tmp_path) == []
    img = np.asarray(Image.open(tmp_path / spec.folder / "img001.png")).copy()
    img[5, 5, 1] ^= 4
    Image.fromarray(img).save(tmp_path / spec.folder / "img001.png", compress_level=1)
    expected = (f"{tmp_path / spec.folder / 'img001.png'}: checksum mismatch "
                "(neither the file nor its decoded pixels match the manifest)")
    assert verify(spec, tmp_path) == [expected]


def test_download_fetches_checks_and_converts(data_mirror, tmp_path, monkeypatch):
    # The public blobs are served from a local folder: the BMP sources of T91 are re-made from the mirror's PNGs.
    spec = get_dataset("Set5")
    entries = load_manifest("Set5")
    served = {e.source_url: (data_mirror / e.file).read_bytes() for e in entries}
    monkeypatch.setattr(download, "_get", lambda url: served[url])
    where = locate("Set5", data_dir=tmp_path / "data", download=True)
    assert where == tmp_path / "data" / spec.folder and verify(spec, tmp_path / "data") == []

    served[entries[0].source_url] = b"not the file"
    with pytest.raises(DatasetError, match="checksum mismatch"):
        locate("Set5", data_dir=tmp_path / "data2", download=True)
    assert not (tmp_path / "data2" / spec.folder).exists()  # nothing half-written is left looking complete


def test_download_decodes_to_png_when_the_manifest_says_so(data_mirror, tmp_path, monkeypatch):
    entries = [e for e in load_manifest("T91")][:3]
    monkeypatch.setattr(manifest, "load_manifest", lambda name: entries)
    monkeypatch.setattr(download, "load_manifest", lambda name: entries)
    served = {}
    for e in entries:
        buf = tmp_path / "src.bmp"
        Image.open(data_mirror / e.file).save(buf, format="BMP")
        served[e.source_url] = buf.read_bytes()
    # The manifest's source sha256 is that of the original BMP blob; ours re-encodes it, so check pixels instead.
    entries = [manifest.ManifestEntry(**{**e.__dict__, "source_sha256": hashlib.sha256(served[e.source_url]).hexdigest()})
               for e in entries]
    monkeypatch.setattr(download, "load_manifest", lambda name: entries)
    monkeypatch.setattr(download, "_get", lambda url: served[url])
    download.fetch(get_dataset("T91"), tmp_path / "data")
    for e in entries:
        out = tmp_path / "data" / e.file
        assert sha256_pixels(out) == e.decoded_sha256


def test_a_download_that_does_not_decode_is_named(tmp_path, monkeypatch):
    entry = load_manifest("T91")[0]
    blob = b"\x89PNG not really"
    entry = manifest.ManifestEntry(**{**entry.__dict__, "source_sha256": hashlib.sha256(blob).hexdigest()})
    monkeypatch.setattr(download, "load_manifest", lambda name: [entry])
    monkeypatch.setattr(download, "_get", lambda url: blob)
    with pytest.raises(OSError, match=f"{entry.file}\\): cannot decode the downloaded image"):
        download.fetch(get_dataset("T91"), tmp_path / "data")


def test_read_image_conversions(tmp_path):
    gray16 = (np.arange(64, dtype=np.uint16).reshape(8, 8) * 1000)
    Image.fromarray(gray16).save(tmp_path / "g16.png")
    out = read_image(tmp_path / "g16.png")
    assert out.dtype == np.uint8 and out.shape == (8, 8)
    np.testing.assert_array_equal(out, np.floor(gray16 / 257 + 0.5).astype(np.uint8))

    Image.fromarray(np.full((4, 4), 7, np.uint8)).save(tmp_path / "g.png")
    assert read_image(tmp_path / "g.png").shape == (4, 4)
    assert as_rgb(read_image(tmp_path / "g.png")).shape == (4, 4, 3)

    rgba = np.zeros((4, 4, 4), np.uint8)
    rgba[..., 3] = 255
    Image.fromarray(rgba).save(tmp_path / "opaque.png")
    assert read_image(tmp_path / "opaque.png").shape == (4, 4, 3)


@pytest.mark.parametrize("case", ["truncated", "garbage", "transparent", "missing"])
def test_read_image_errors_name_the_file(data_mirror, tmp_path, case):
    path = tmp_path / f"{case}.png"
    if case == "truncated":
        path.write_bytes((data_mirror / "Set5" / "HR" / "bird.png").read_bytes()[:5000])
    elif case == "garbage":
        path.write_bytes(b"\x89PNG but not really")
    elif case == "transparent":
        Image.fromarray(np.zeros((4, 4, 4), np.uint8)).save(path)
    with pytest.raises(ImageError, match=str(path)):
        read_image(path)


def test_modcrop_and_too_small_images():
    assert modcrop(np.zeros((10, 13, 3), np.uint8), 4).shape == (8, 12, 3)
    with pytest.raises(ImageError, match="smaller than the scale"):
        make_pair(np.zeros((3, 9, 3), np.uint8), 4, name="tiny.png")


def test_prepare_and_load_pairs(data_mirror, tmp_path):
    written = prepare_sr("Set14", 3, tmp_path / "Set14_x3", data_mirror=data_mirror, data_dir=tmp_path / "data")
    assert len(written) == 14
    pairs = {p.name: p for p in load_pairs(tmp_path / "Set14_x3", 3)}
    assert pairs["bridge"].hr.ndim == 2  # grayscale stays grayscale
    assert pairs["comic"].hr.shape == (360, 249, 3)  # 361x250 cropped to a multiple of 3
    (tmp_path / "Set14_x3" / "HR" / "comic.png").unlink()
    with pytest.raises(ImageError, match="comic.png: no such file"):
        load_pairs(tmp_path / "Set14_x3", 3)


def test_load_pairs_rejects_sizes_that_do_not_match_the_scale(tmp_path):
    (tmp_path / "HR").mkdir()
    (tmp_path / "LR").mkdir()
    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(tmp_path / "HR" / "a.png")
    Image.fromarray(np.zeros((3, 3, 3), np.uint8)).save(tmp_path / "LR" / "a.png")
    with pytest.raises(ImageError, match="does not match LR"):
        load_pairs(tmp_path, 4)


def test_a_truncated_file_in_the_mirror_is_named(data_mirror, tmp_path, capsys):
    # PIL's own message ("image file is truncated") names no file; the checksum pass must say which one it was.
    folder = _copy_set(data_mirror, tmp_path / "mirror", "Set5")
    bird = folder / "bird.png"
    bird.write_bytes(bird.read_bytes()[:5000])
    assert verify(get_dataset("Set5"), tmp_path / "mirror", pixels=True) == [
        f"{bird}: cannot decode image (image file is truncated); the file is corrupt, truncated or not an image"]
    from repro.cli import main

    with pytest.raises(SystemExit):
        main(["prepare", "--dataset", "Set5", "--scale", "4", "--out", str(tmp_path / "Set5_x4"),
              "--data-mirror", str(tmp_path / "mirror"), "--data-dir", str(tmp_path / "data")])
    assert f"{bird}: cannot decode image" in capsys.readouterr().err
    assert not (tmp_path / "Set5_x4").exists()
