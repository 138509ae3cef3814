"""Inpainting data: Table 2's prepared evaluation pairs (the same holes for every model) and the training patches."""

import collections
import copy
import csv
import shutil
import warnings

import numpy as np
import pytest
import torch
from PIL import Image

from layers.imresize import imresize
from repro.data import inpaint, registry
from repro.data.inpaint import (
    COLUMNS,
    INPAINT_SETS,
    InpaintSet,
    description,
    draw_irregular_masks,
    load_inpaint_pairs,
    prepare_inpaint_set,
    set_label,
)
from repro.data.io import write_png
from repro.data.masks import IRREGULAR_BINS, MaskError, irregular_masks, irregular_split, read_mask, resize_nearest
from repro.data.registry import DatasetSpec
from repro.train.data import make_loader
from repro.train.data_inpaint import InpaintPatches, build_inpaint_training_data

COUNTS = {"Places365": 16, "CelebA-HQ": 56, "FFHQ": 18}
NVIDIA = "Inpainting/masks/NVIDIA_irregular_test_every20th"


@pytest.fixture(scope="module")
def prepared(data_mirror, tmp_path_factory):
    """Each set prepared once (seed 0) for the module: {name: folder}."""
    root, data_dir = tmp_path_factory.mktemp("prepared"), tmp_path_factory.mktemp("data")
    return {name: prepare_inpaint_set(name, root / name, data_mirror=data_mirror, data_dir=data_dir).parent
            for name in INPAINT_SETS}


def _manifest(folder):
    with open(folder / "manifest.tsv") as fh:
        header = fh.readline()
        assert header.startswith("# ")
        return list(csv.DictReader(fh, delimiter="\t"))


def test_prepared_sets_have_their_pairs_and_columns(prepared, data_mirror):
    for name, folder in prepared.items():
        rows = _manifest(folder)
        assert len(rows) == COUNTS[name] and tuple(rows[0]) == COLUMNS
        for row in rows:
            assert (data_mirror / row["image_source"]).is_file() and (data_mirror / row["mask_source"]).is_file()
            image = Image.open(folder / "images" / f"{row['image']}.png")
            mask = np.asarray(Image.open(folder / "masks" / f"{row['image']}.png"))
            assert image.mode == "RGB" and image.size == (256, 256) == (int(row["width"]), int(row["height"]))
            assert mask.dtype == np.uint8 and set(np.unique(mask)) == {0, 255}
            assert float(row["hole_ratio"]) == pytest.approx((mask == 255).mean(), abs=5e-7)
            if INPAINT_SETS[name].own_masks:
                # the source marks holes with 0; the prepared mask must mark the same pixels with 255
                source = np.asarray(Image.open(data_mirror / row["mask_source"]))
                np.testing.assert_array_equal(mask == 255, source == 0)
                assert row["mask_convention"] == "known255" and row["mask_seed"] == row["hole_bin"] == ""
                assert row["image_source"].rsplit("/", 1)[1].split(".")[0] == row["mask_source"].rsplit("/", 1)[1][:-4]


def test_celeba_is_resized_with_matlab_bicubic_and_covers_every_bin(prepared, data_mirror):
    rows = _manifest(prepared["CelebA-HQ"])
    assert {r["mask_convention"] for r in rows} == {"hole255"} and {r["mask_seed"] for r in rows} == {"0"}
    indices = [int(r["mask_source"].rsplit("/", 1)[1][:-4]) for r in rows]
    assert all(irregular_split(i) == "eval" for i in indices) and len(set(indices)) == len(indices)
    bins = collections.Counter(r["hole_bin"] for r in rows)
    assert set(bins) == set(IRREGULAR_BINS) and sorted(bins.values()) == [9, 9, 9, 9, 10, 10]
    for row in rows[:2]:
        source = np.asarray(Image.open(data_mirror / row["image_source"]))
        assert source.shape == (1024, 1024, 3)
        written = np.asarray(Image.open(prepared["CelebA-HQ"] / "images" / f"{row['image']}.png"))
        np.testing.assert_array_equal(written, imresize(source, output_shape=(256, 256)))
        hole = read_mask(data_mirror / row["mask_source"], convention="hole255")
        np.testing.assert_array_equal(read_mask(prepared["CelebA-HQ"] / "masks" / f"{row['image']}.png",
                                                convention="hole255"), resize_nearest(hole, 256, 256))


def test_every_pair_loads_and_passes(prepared):
    for folder in prepared.values():
        pairs = load_inpaint_pairs(folder)
        assert [p.name for p in pairs] == [r["image"] for r in _manifest(folder)]
        for p in pairs:
            assert p.image.shape == (256, 256, 3) and p.image.dtype == np.uint8
            assert p.hole.shape == (256, 256) and p.hole.dtype == bool and p.hole.any() and not p.hole.all()


def test_the_same_seed_gives_the_same_manifest_and_another_seed_other_masks(prepared, data_mirror, tmp_path):
    again = prepare_inpaint_set("CelebA-HQ", tmp_path / "again", data_mirror=data_mirror, data_dir=tmp_path / "d")
    assert again.read_bytes() == (prepared["CelebA-HQ"] / "manifest.tsv").read_bytes()
    # Another seed: the draw the manifest's mask_source comes from (a second 56-image resize is not needed for it).
    pool = irregular_masks(data_mirror / NVIDIA, "eval")
    seed0, seed1 = draw_irregular_masks(pool, 56, 0), draw_irregular_masks(pool, 56, 1)
    assert [f"{NVIDIA}/{p.name}" for _, p in seed0] == [r["mask_source"] for r in _manifest(prepared["CelebA-HQ"])]
    assert sum(a != b for a, b in zip(seed0, seed1)) > 50
    assert [inpaint.hole_ratio_bin(i) for i, _ in seed1] == [IRREGULAR_BINS[k % 6] for k in range(56)]


def test_load_detects_tampered_and_missing_files(prepared, tmp_path):
    folder = shutil.copytree(prepared["Places365"], tmp_path / "copy")
    name = _manifest(folder)[3]["image"]
    image = np.asarray(Image.open(folder / "images" / f"{name}.png")).copy()
    image[0, 0] ^= 1
    write_png(folder / "images" / f"{name}.png", image)
    with pytest.raises(ValueError, match=rf"images/{name}\.png: decoded pixels differ"):
        load_inpaint_pairs(folder)
    shutil.copy(prepared["Places365"] / "images" / f"{name}.png", folder / "images" / f"{name}.png")
    (folder / "masks" / f"{name}.png").unlink()
    with pytest.raises(FileNotFoundError, match=rf"masks/{name}\.png: listed in .* but missing"):
        load_inpaint_pairs(folder)


def test_an_interrupted_run_leaves_no_manifest(prepared, data_mirror, tmp_path, monkeypatch):
    folder = shutil.copytree(prepared["FFHQ"], tmp_path / "ffhq")
    calls = []

    def failing_write(path, img):
        calls.append(path)
        if len(calls) == 5:
            raise KeyboardInterrupt
        write_png(path, img)

    monkeypatch.setattr(inpaint, "write_png", failing_write)
    with pytest.raises(KeyboardInterrupt):
        prepare_inpaint_set("FFHQ", folder, data_mirror=data_mirror, data_dir=tmp_path / "d")
    assert not (folder / "manifest.tsv").exists()
    with pytest.raises(FileNotFoundError, match="no manifest"):
        load_inpaint_pairs(folder)


def _synthetic_set(monkeypatch, root, images, masks):
    """A registered set 'Synth' of RGB images with MI-GAN style masks (255 = known), laid out as a mirror."""
    for sub, arrays in (("images", images), ("masks", masks)):
        (root / "Synth" / sub).mkdir(parents=True)
        for stem, arr in arrays.items():
            write_png(root / "Synth" / sub / f"{stem}.png", arr)
    for name, sub in (("SynthImages", "images"), ("SynthMasks", "masks")):
        monkeypatch.setitem(registry.DATASETS, name, DatasetSpec(name=name, task="inpaint", folder=f"Synth/{sub}"))
    monkeypatch.setitem(INPAINT_SETS, "Synth", InpaintSet(name="Synth", dataset="SynthImages", masks="SynthMasks",
                                                          mask_convention="known255", size=None, source="test"))


def test_a_missing_or_unfit_mask_names_the_files(monkeypatch, tmp_path):
    image = np.zeros((16, 16, 3), np.uint8)
    known = np.full((16, 16), 255, np.uint8)
    known[4:8, 4:8] = 0
    _synthetic_set(monkeypatch, tmp_path, {"a": image, "b": image}, {"a": known})
    with pytest.raises(MaskError, match=r"images/b\.png: no mask named b\.\*"):
        prepare_inpaint_set("Synth", tmp_path / "out", data_mirror=tmp_path, data_dir=tmp_path / "d")
    write_png(tmp_path / "Synth" / "masks" / "b.png", np.full((16, 16), 255, np.uint8))
    with pytest.raises(MaskError, match=r"image .*images/b\.png with mask .*masks/b\.png: the mask has no hole"):
        prepare_inpaint_set("Synth", tmp_path / "out", data_mirror=tmp_path, data_dir=tmp_path / "d")
    write_png(tmp_path / "Synth" / "masks" / "b.png", known[:12])
    with pytest.raises(MaskError, match=r"images/b\.png with mask .*masks/b\.png: sizes differ"):
        prepare_inpaint_set("Synth", tmp_path / "out", data_mirror=tmp_path, data_dir=tmp_path / "d")
    assert not (tmp_path / "out").exists()  # every pair is checked before anything is written


def test_labels_and_descriptions():
    assert set_label("FFHQ") == "FFHQ (stand-in for Mural)" and set_label("CelebA-HQ") == "CelebA-HQ"
    assert INPAINT_SETS["FFHQ"].stand_in_for == "Mural"
    assert "MATLAB bicubic" in description("CelebA-HQ") and "nearest" in description("CelebA-HQ")
    assert "255 = known" in description("Places365") and "Mural" in description("FFHQ")
    assert all("\n" not in description(n) for n in INPAINT_SETS)
    with pytest.raises(KeyError, match="unknown inpainting set 'Mural'"):
        set_label("Mural")


PATCH = 64


@pytest.fixture(scope="module")
def patches(data_mirror, tmp_path_factory):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # T91's images under 64 px: the warning is tested below
        return InpaintPatches(patch=PATCH, seed=5, data_mirror=data_mirror, data_dir=tmp_path_factory.mktemp("d"))


def test_a_sample_is_a_pure_function_of_seed_and_index(patches):
    first = [patches[g] for g in (3, 400, 3)]
    for a, b in zip(first[0], first[2]):
        assert torch.equal(a, b)
    fresh = copy.copy(patches)
    lq, gt = fresh[400]
    assert torch.equal(lq, first[1][0]) and torch.equal(gt, first[1][1])
    fresh.seed = 6
    assert not torch.equal(fresh[400][0], lq)
    assert patches.epoch_length == len(patches.images) == 291 and not hasattr(patches, "__len__")
    with pytest.raises(IndexError):
        patches.draw(-1)


def test_lq_is_the_masked_image_and_the_mask(patches):
    for g in range(0, 40, 3):
        lq, gt = patches[g]
        assert lq.shape == (4, PATCH, PATCH) and gt.shape == (3, PATCH, PATCH)
        assert lq.dtype == gt.dtype == torch.float32 and 0 <= gt.min() and gt.max() <= 1
        m = lq[3]
        assert set(m.unique().tolist()) == {0.0, 1.0}
        torch.testing.assert_close(lq[:3], gt * (1 - m), rtol=0, atol=0)
        np.testing.assert_array_equal(m.numpy().astype(bool), patches.draw(g).hole)
        assert (gt[:, m.bool()] > 0).any()  # the holes hide real content


def test_every_mask_kind_appears(patches):
    kinds = collections.Counter(patches.draw(g).mask_kind for g in range(300))
    assert set(kinds) == {"thin", "medium", "thick", "irregular"}
    assert 0.15 < kinds["irregular"] / 300 < 0.35
    assert len(patches.irregular) == 300  # the training half only


def test_loader_batches_follow_the_stream(patches):
    loader = iter(make_loader(patches, batch_size=3, start_step=2))
    lq, gt = next(loader)
    assert lq.shape == (3, 4, PATCH, PATCH) and gt.shape == (3, 3, PATCH, PATCH)
    for i, g in enumerate(range(6, 9)):
        assert torch.equal(lq[i], patches[g][0]) and torch.equal(gt[i], patches[g][1])
    lq2, _ = next(iter(make_loader(patches, batch_size=3, start_step=2, workers=2)))
    assert torch.equal(lq, lq2)


def test_build_from_config_reads_the_mask_settings(data_mirror, tmp_path):
    cfg = {"data_mirror": str(data_mirror), "data_dir": str(tmp_path),
           "train": {"sets": ["T91"], "patch": 200, "seed": 1, "masks": {"presets": ["thin"], "irregular_fraction": 0}}}
    with pytest.warns(UserWarning, match=r"skipping 57 of 91 images smaller than the 200x200 patch") as caught:
        data = build_inpaint_training_data(cfg)
    assert len(caught) == 1 and len(data.images) == 34 and data.irregular == []
    assert {data.draw(g).mask_kind for g in range(20)} == {"thin"}
    assert data[0][0].shape == (4, 200, 200)
