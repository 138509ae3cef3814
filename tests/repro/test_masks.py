"""Hole masks: both file conventions on the mirror's masks, the reading rule, pair checks, the LaMa presets and the
NVIDIA pool split."""

import numpy as np
import pytest
from PIL import Image

from repro.data.masks import (
    IRREGULAR_BINS,
    PRESETS,
    FreeFormMasks,
    MaskError,
    check_image_and_mask,
    hole_ratio,
    hole_ratio_bin,
    irregular_masks,
    irregular_split,
    read_mask,
    resize_nearest,
)

NVIDIA = "Inpainting/masks/NVIDIA_irregular_test_every20th"
MIGAN = "Inpainting/Places365_val_256/masks/Places365_val_00000262.png"


def _png(path, arr):
    Image.fromarray(np.asarray(arr, dtype=np.uint8)).save(path)
    return path


def test_both_conventions_on_real_files(data_mirror):
    # MI-GAN: 255 = known, so the holes are the 0 pixels; NVIDIA: 255 = hole. Counts made with PIL and numpy.
    for rel, convention, hole_value, count in ((MIGAN, "known255", 0, 47708), (f"{NVIDIA}/00000.png", "hole255", 255, 14888)):
        raw = np.asarray(Image.open(data_mirror / rel))
        hole = read_mask(data_mirror / rel, convention=convention)
        assert hole.dtype == bool and hole.shape == raw.shape
        assert np.count_nonzero(hole) == np.count_nonzero(raw == hole_value) == count
        assert hole_ratio(hole) == pytest.approx(count / raw.size, abs=1e-12)
        other = "hole255" if convention == "known255" else "known255"
        np.testing.assert_array_equal(read_mask(data_mirror / rel, convention=other), ~hole)


def test_every_real_mask_passes_the_rule(data_mirror):
    folders = [("Inpainting/Places365_val_256/masks", "known255"), ("Inpainting/Places365_val_512/masks", "known255"),
               ("Inpainting/FFHQ_256/masks", "known255"), (NVIDIA, "hole255")]
    for rel, convention in folders:
        files = sorted((data_mirror / rel).glob("*.png"))
        assert files
        for path in files[::7]:
            hole = read_mask(path, convention=convention)
            assert 0 < hole.mean() < 1, path


def test_threshold_is_128_and_colour_needs_equal_channels(tmp_path):
    arr = np.zeros((10, 10), np.uint8)
    arr[0, 0], arr[0, 1], arr[5:, :] = 127, 128, 255  # two grey pixels: 2% < 5%
    hole = read_mask(_png(tmp_path / "m.png", arr), convention="hole255")
    assert not hole[0, 0] and hole[0, 1] and hole[5:].all() and hole.sum() == 51
    np.testing.assert_array_equal(read_mask(tmp_path / "m.png", convention="known255"), ~hole)
    rgb = _png(tmp_path / "rgb.png", np.repeat(arr[:, :, None], 3, axis=2))
    np.testing.assert_array_equal(read_mask(rgb, convention="hole255"), hole)
    tinted = np.repeat(arr[:, :, None], 3, axis=2)
    tinted[9, 9, 2] = 0
    with pytest.raises(MaskError, match=r"tinted\.png: colour mask with unequal channels"):
        read_mask(_png(tmp_path / "tinted.png", tinted), convention="hole255")
    with pytest.raises(ValueError, match="convention must be one of"):
        read_mask(tmp_path / "m.png", convention="255hole")


def test_non_binary_masks_are_refused_by_name(tmp_path, data_mirror):
    edge = np.zeros((20, 20), np.uint8)
    edge[10:] = 255
    edge[10, :16] = 100  # 16 of 400 pixels grey (4%): antialiased edges pass
    read_mask(_png(tmp_path / "edge.png", edge), convention="hole255")
    edge[11, :8] = 100  # 24 of 400 (6%)
    with pytest.raises(MaskError, match=r"edge\.png: not a binary mask \(6\.0% of pixels"):
        read_mask(_png(tmp_path / "edge.png", edge), convention="hole255")
    photo = data_mirror / "Set14" / "HR" / "bridge.png"  # a grayscale photograph
    with pytest.raises(MaskError, match=r"bridge\.png: not a binary mask"):
        read_mask(photo, convention="hole255")
    with pytest.raises(MaskError, match=r"Places365_val_00000262\.jpg: colour mask"):
        read_mask(data_mirror / "Inpainting/Places365_val_256/images/Places365_val_00000262.jpg", convention="hole255")
    with pytest.raises(MaskError, match=r"absent\.png: no such file"):
        read_mask(tmp_path / "absent.png", convention="hole255")


def test_pair_checks_name_both_files():
    image = np.zeros((8, 6, 3), np.uint8)
    hole = np.zeros((8, 6), bool)
    hole[2, 3] = True
    check_image_and_mask(image, hole, image_path="a/img.png", mask_path="b/mask.png")
    cases = [(np.zeros((6, 8), bool), "sizes differ"), (np.zeros((8, 6), bool), "has no hole"),
             (np.ones((8, 6), bool), "all hole")]
    for bad, why in cases:
        with pytest.raises(MaskError, match=rf"image a/img\.png with mask b/mask\.png: .*{why}"):
            check_image_and_mask(image, bad, image_path="a/img.png", mask_path="b/mask.png")


def _edge_fraction(hole):
    # The share of hole pixels with a known 4-neighbour: high for thin strokes, low for wide ones.
    p = np.pad(hole, 1)
    inner = p[:-2, 1:-1] & p[2:, 1:-1] & p[1:-1, :-2] & p[1:-1, 2:]
    return (hole & ~inner).sum() / hole.sum()


def test_presets_give_plausible_masks_of_ordered_width():
    # Measured over 1000 draws: mean hole ratio 0.267 (thin), 0.241 (medium), 0.268 (thick), sd ~0.13. With LaMa's
    # numbers the presets differ in stroke width, not in area: thin's many narrow strokes cover as much as thick's
    # few wide ones. The width shows in the share of hole pixels on a hole edge.
    stats = {}
    for name in PRESETS:
        gen, rng = FreeFormMasks(name), np.random.default_rng(0)
        masks = [gen(rng, 256, 256) for _ in range(200)]
        ratios = np.array([m.mean() for m in masks])
        assert all(m.shape == (256, 256) and m.dtype == bool for m in masks)
        assert ratios.min() > 0 and ratios.max() <= 0.5  # LaMa's max_tamper_area
        assert 0.18 < ratios.mean() < 0.34, (name, ratios.mean())
        stats[name] = np.mean([_edge_fraction(m) for m in masks])
    assert stats["thin"] > 1.5 * stats["medium"] and stats["medium"] > 1.2 * stats["thick"], stats  # 0.18, 0.083, 0.048


def test_presets_keep_their_proportions_at_other_sizes():
    for name in PRESETS:
        gen = FreeFormMasks(name)
        at = {side: np.mean([gen(rng, side, side).mean() for _ in range(100)])
              for side, rng in ((256, np.random.default_rng(1)), (512, np.random.default_rng(2)))}
        assert abs(at[256] - at[512]) < 0.06, (name, at)
    wide = FreeFormMasks("thick")(np.random.default_rng(3), 128, 320)
    assert wide.shape == (128, 320) and 0 < wide.mean() <= 0.5


def test_generator_is_deterministic_in_the_rng():
    gen = FreeFormMasks("medium")
    a = [gen(np.random.default_rng(7), 256, 256) for _ in range(2)]
    np.testing.assert_array_equal(a[0], a[1])
    rng1, rng2 = np.random.default_rng(8), np.random.default_rng(8)
    for _ in range(5):
        np.testing.assert_array_equal(gen(rng1, 200, 240), gen(rng2, 200, 240))
    assert not np.array_equal(gen(np.random.default_rng(9), 256, 256), a[0])
    with pytest.raises(ValueError, match="unknown preset 'wide'"):
        FreeFormMasks("wide")
    with pytest.raises(RuntimeError, match=r"no mask of at most 50% holes in 1000 draws at 1x1"):
        gen(np.random.default_rng(0), 1, 1)  # one pixel is always all hole


def test_irregular_split_is_disjoint_and_covers_the_pool(data_mirror):
    folder = data_mirror / NVIDIA
    evals, trains = irregular_masks(folder, "eval"), irregular_masks(folder, "train")
    assert len(evals) == len(trains) == 300
    assert {i for i, _ in evals}.isdisjoint(i for i, _ in trains)
    assert sorted(i for i, _ in evals + trains) == list(range(0, 12000, 20))
    assert irregular_split(0) == "eval" and irregular_split(20) == "train" and irregular_split(40) == "eval"
    for block in range(12):  # each 1000-block (a bin half, with or without the border rule) splits 25 / 25
        assert sum(block * 1000 <= i < (block + 1) * 1000 for i, _ in evals) == 25
    with pytest.raises(ValueError, match="index must be in 0..11999"):
        irregular_split(12000)


def test_hole_ratio_bin_agrees_with_the_measured_ratio(data_mirror):
    assert [hole_ratio_bin(i) for i in (0, 1980, 2000, 5999, 8000, 11980)] == \
        ["0-10%", "0-10%", "10-20%", "20-30%", "40-50%", "50-60%"]
    for index in range(0, 12000, 460):
        ratio = hole_ratio(read_mask(data_mirror / NVIDIA / f"{index:05d}.png", convention="hole255"))
        low = 10 * IRREGULAR_BINS.index(hole_ratio_bin(index)) / 100
        assert low - 0.01 <= ratio <= low + 0.10 + 0.01, (index, ratio)


def test_nearest_resize_keeps_the_mask_binary_and_takes_every_other_pixel():
    hole = np.random.default_rng(0).random((512, 512)) < 0.3
    small = resize_nearest(hole, 256, 256)
    np.testing.assert_array_equal(small, hole[1::2, 1::2])
    assert resize_nearest(small, 512, 512).dtype == bool
    np.testing.assert_array_equal(resize_nearest(small, 512, 512)[::2, ::2], small)
