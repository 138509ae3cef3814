"""SR training patches: aligned with the benchmark bicubic, cached once, and in an order that resumes exactly."""

import copy
import itertools
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from layers.imresize import imresize
from repro.data import registry
from repro.data.registry import DatasetSpec
from repro.train import data
from repro.train.data import SRPatches, make_loader

SCALE, PATCH = 4, 12


@pytest.fixture(scope="module")
def set5(data_mirror, tmp_path_factory):
    """Set5 at x4 with 12x12 LR patches (its LR made once for the whole module)."""
    cache = tmp_path_factory.mktemp("lr_cache")
    return SRPatches(["Set5"], scale=SCALE, lr_patch=PATCH, cache_dir=cache, data_mirror=data_mirror, enlarge=2, seed=3)


def _u8(t: torch.Tensor) -> np.ndarray:
    """A [3, h, w] tensor in [0, 1] back to uint8 HxWx3 (exact: the patches are uint8 / 255)."""
    return np.rint(t.numpy().transpose(1, 2, 0) * 255).astype(np.uint8)


def _synthetic_set(monkeypatch, root: Path, sizes: dict[str, tuple[int, ...]]) -> str:
    """Register a set 'Synth' of random PNGs (shape per name) laid out as a mirror under ``root``."""
    folder = root / "Synth" / "HR"
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for name, shape in sizes.items():
        Image.fromarray(rng.integers(0, 256, shape, dtype=np.uint8)).save(folder / f"{name}.png")
    monkeypatch.setitem(registry.DATASETS, "Synth", DatasetSpec(name="Synth", task="sr", folder="Synth/HR"))
    return "Synth"


def test_patches_are_the_bicubic_of_the_whole_image_cropped(set5, data_mirror):
    files = registry.image_files(data_mirror / "Set5" / "HR")
    set5_plain = copy.copy(set5)
    set5_plain.augment = False
    for g in (0, 1, 7, 12):
        s = set5_plain.draw(g)
        assert not (s.hflip or s.vflip or s.rot90)
        hr = np.asarray(Image.open(files[s.image]).convert("RGB"))
        hr = hr[: hr.shape[0] // SCALE * SCALE, : hr.shape[1] // SCALE * SCALE]
        lq, gt = set5_plain[g]
        assert lq.dtype == gt.dtype == torch.float32 and lq.min() >= 0 and lq.max() <= 1
        assert lq.shape == (3, PATCH, PATCH) and gt.shape == (3, SCALE * PATCH, SCALE * PATCH)
        # the oracle: MATLAB bicubic of the whole mod-cropped HR, cropped at (y, x); HR cropped at (s*y, s*x)
        np.testing.assert_array_equal(_u8(lq), imresize(hr, 1 / SCALE)[s.y:s.y + PATCH, s.x:s.x + PATCH])
        np.testing.assert_array_equal(_u8(gt), hr[SCALE * s.y:SCALE * (s.y + PATCH), SCALE * s.x:SCALE * (s.x + PATCH)])
        # and away from the crop's border (3 LR px > the x4 kernel's reach), the bicubic of the HR patch itself
        np.testing.assert_array_equal(_u8(lq)[3:-3, 3:-3], imresize(_u8(gt), 1 / SCALE)[3:-3, 3:-3])


def test_augmentation_is_one_dihedral_transform_applied_to_both(set5):
    plain = copy.copy(set5)
    plain.augment = False
    seen = set()
    for g in range(40):
        s = set5.draw(g)
        assert plain.draw(g)[:3] == s[:3]  # the crop does not depend on the augmentation
        seen.add(s[3:])
        for aug, ref in zip(set5[g], plain[g], strict=True):
            np.testing.assert_array_equal(_u8(aug), data.dihedral(_u8(ref), s.hflip, s.vflip, s.rot90))
        # Still aligned: away from the border the bicubic of the augmented HR patch is the augmented LR patch, to one
        # grey level (a transpose swaps which pass comes first, so the uint8 rounding between passes can differ).
        lq, gt = (_u8(t).astype(int) for t in set5[g])
        assert np.abs(lq - imresize(gt.astype(np.uint8), 1 / SCALE))[3:-3, 3:-3].max() <= 1
    assert len(seen) == 8


def test_the_stream_is_a_function_of_seed_and_index(set5, data_mirror, tmp_path):
    again = SRPatches(["Set5"], scale=SCALE, lr_patch=PATCH, cache_dir=tmp_path, data_mirror=data_mirror, enlarge=2, seed=3)
    other = SRPatches(["Set5"], scale=SCALE, lr_patch=PATCH, cache_dir=tmp_path, data_mirror=data_mirror, enlarge=2, seed=4)
    for g in (0, 5, 10**6):
        assert all(torch.equal(a, b) for a, b in zip(set5[g], again[g], strict=True))
    assert [set5.draw(g) for g in range(10)] != [other.draw(g) for g in range(10)]
    with pytest.raises(IndexError):
        set5[-1]


def test_each_epoch_shows_every_image_enlarge_times(set5):
    assert set5.epoch_length == 10  # 5 images, enlarge 2
    orders = [[set5.draw(g).image for g in range(e * 10, (e + 1) * 10)] for e in range(3)]
    for order in orders:
        assert sorted(order) == sorted(list(range(5)) * 2)
    assert orders[0] != orders[1] != orders[2]


def test_lr_is_cached_once_and_read_back(data_mirror, tmp_path, monkeypatch):
    first = SRPatches(["Set5"], scale=SCALE, lr_patch=PATCH, cache_dir=tmp_path / "c", data_mirror=data_mirror)
    entries = sorted((tmp_path / "c").iterdir())
    assert len(entries) == 5 and all(p.suffix == ".png" and not p.name.startswith(".") for p in entries)
    with Image.open(entries[0]) as im:
        assert im.mode == "RGB"  # uint8, as MATLAB's imresize writes it

    def fail(*args, **kwargs):
        raise AssertionError("imresize called although the LR is cached")

    monkeypatch.setattr(data, "imresize", fail)
    second = SRPatches(["Set5"], scale=SCALE, lr_patch=PATCH, cache_dir=tmp_path / "c", data_mirror=data_mirror)
    for a, b in zip(first.lr, second.lr, strict=True):
        np.testing.assert_array_equal(a, b)
    with pytest.raises(AssertionError, match="imresize called"):  # another scale is another key
        SRPatches(["Set5"], scale=2, lr_patch=PATCH, cache_dir=tmp_path / "c", data_mirror=data_mirror)


def test_cache_key_covers_pixels_scale_and_resize_version(monkeypatch):
    hr = np.zeros((8, 8, 3), np.uint8)
    key = data.lr_cache_key(hr, 4)
    changed = hr.copy()
    changed[0, 0, 0] = 1
    assert data.lr_cache_key(hr.copy(), 4) == key
    assert len({key, data.lr_cache_key(changed, 4), data.lr_cache_key(hr, 2), data.lr_cache_key(hr[..., 0], 4)}) == 4
    monkeypatch.setattr(data, "IMRESIZE_VERSION", "another-resize")
    assert data.lr_cache_key(hr, 4) != key


def test_a_write_killed_halfway_leaves_no_cache_entry(tmp_path, monkeypatch):
    hr = np.random.default_rng(0).integers(0, 256, (32, 32, 3), dtype=np.uint8)

    def killed(path, img):
        Path(path).write_bytes(b"\x89PNG half")
        raise KeyboardInterrupt

    monkeypatch.setattr(data, "write_png", killed)
    with pytest.raises(KeyboardInterrupt):
        data.cached_lr(hr, 4, tmp_path)
    assert list(tmp_path.iterdir()) == []
    monkeypatch.undo()
    np.testing.assert_array_equal(data.cached_lr(hr, 4, tmp_path), imresize(hr, 1 / 4))
    assert len(list(tmp_path.iterdir())) == 1


def test_small_images_are_skipped_with_a_warning_and_gray_becomes_rgb(tmp_path, monkeypatch):
    name = _synthetic_set(monkeypatch, tmp_path / "mirror", {"big": (70, 66, 3), "gray": (64, 80), "small": (63, 200, 3)})
    with pytest.warns(UserWarning, match=r"skipping 1 of 3 images smaller than the 64x64 HR patch.*small\.png \(200x63\)"):
        ds = SRPatches([name], scale=4, lr_patch=16, cache_dir=tmp_path / "c", data_mirror=tmp_path / "mirror")
    assert ds.names == ["Synth/big", "Synth/gray"] and ds.hr[0].shape == (68, 64, 3)
    gray = ds.hr[1]
    assert gray.shape == (64, 80, 3) and (gray == gray[..., :1]).all()
    np.testing.assert_array_equal(ds.lr[1][..., 0], imresize(gray[..., 0], 1 / 4))
    lq, gt = ds[0]
    assert lq.shape == (3, 16, 16) and gt.shape == (3, 64, 64)
    with pytest.raises(ValueError, match="no image of Synth is at least 256x256"):
        SRPatches([name], scale=4, lr_patch=64, cache_dir=tmp_path / "c", data_mirror=tmp_path / "mirror")


def test_t91_at_x4_skips_its_small_images_instead_of_failing(data_mirror, tmp_path):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        ds = SRPatches(["T91"], scale=4, lr_patch=48, cache_dir=tmp_path, data_mirror=data_mirror)
    assert len(ds.hr) == 40 and "skipping 51 of 91 images" in str(caught[0].message)
    assert min(min(h.shape[:2]) for h in ds.hr) >= 192


def _batches(loader, n):
    return [tuple(t.clone() for t in batch) for batch in itertools.islice(loader, n)]


def _same(a, b):
    return len(a) == len(b) and all(torch.equal(x, y) for ba, bb in zip(a, b) for x, y in zip(ba, bb, strict=True))


class _Probe(torch.utils.data.Dataset):
    """Returns the index it was asked for and the worker's torch thread count."""

    seed = 0

    def __getitem__(self, g):
        return torch.tensor(g), torch.tensor(torch.get_num_threads())


def test_loader_indices_ranks_and_worker_threads():
    loader = make_loader(_Probe(), batch_size=3, start_step=2, rank=1, world_size=2, workers=2)
    batches = _batches(loader, 2)
    assert [b[0].tolist() for b in batches] == [[15, 16, 17], [21, 22, 23]]  # (step * 2 + 1) * 3 + i
    assert all((b[1] == 1).all() for b in batches)


def test_loader_is_the_same_for_any_workers_resume_and_rank_split(set5):
    run = _batches(make_loader(set5, batch_size=4, start_step=0), 8)
    assert _same(run, _batches(make_loader(set5, batch_size=4, start_step=0, workers=2), 8))
    assert _same(run[5:], _batches(make_loader(set5, batch_size=4, start_step=5), 3))
    ranks = [_batches(make_loader(set5, batch_size=2, start_step=0, rank=r, world_size=2), 8) for r in (0, 1)]
    joined = [tuple(torch.cat([a, b]) for a, b in zip(r0, r1, strict=True)) for r0, r1 in zip(*ranks, strict=True)]
    assert _same(run, joined)
    reseeded = _batches(make_loader(set5, batch_size=4, start_step=0, seed=11), 1)
    assert not torch.equal(reseeded[0][1], run[0][1]) and set5.seed == 3


def test_build_training_data_reads_the_run_config(data_mirror, tmp_path):
    cfg = {"scale": 4, "data_mirror": str(data_mirror), "data_dir": str(tmp_path / "data"),
           "train": {"sets": ["Set5"], "patch": 8, "enlarge": 3, "seed": 5, "cache_dir": str(tmp_path / "lr")}}
    ds = data.build_training_data(cfg)
    assert (ds.scale, ds.lr_patch, ds.seed, ds.epoch_length) == (4, 8, 5, 15)
    assert len(list((tmp_path / "lr").iterdir())) == 5
