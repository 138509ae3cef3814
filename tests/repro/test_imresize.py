"""MATLAB-compatible imresize against files MATLAB wrote, and against torch's antialiased bicubic in the interior."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from layers.imresize import imresize, resize_matrix
from repro.data.io import modcrop, read_image
from repro.data.registry import image_files


@pytest.mark.parametrize("dataset", ["Set5", "Set14"])
@pytest.mark.parametrize("scale", [2, 3, 4])
def test_matches_matlab_files(data_mirror, dataset, scale):
    # The MATLAB files were made from slightly different HR crops, so only the border differs: the interior must
    # agree to 1 grey level and at least 98% of all pixels exactly.
    exact, total = 0, 0
    for hr_path in image_files(data_mirror / dataset / "HR"):
        hr = modcrop(read_image(hr_path), scale)
        ours = imresize(hr, 1 / scale).astype(int)
        matlab = read_image(data_mirror / dataset / "LR_bicubic_MATLAB" / f"X{scale}" / f"{hr_path.stem}x{scale}.png")
        assert ours.shape == matlab.shape, hr_path.name
        diff = np.abs(ours - matlab.astype(int))
        assert diff[3:-3, 3:-3].max() <= 1, f"{hr_path.name}: interior differs by {diff[3:-3, 3:-3].max()}"
        exact += (diff == 0).sum()
        total += diff.size
    assert exact / total >= 0.98, f"only {exact / total:.4f} of pixels match exactly"


def test_float_interior_matches_torch_antialiased_bicubic():
    # torch's antialiased bicubic uses a = -0.5 too but clamps at borders instead of mirroring: equal inside.
    rng = np.random.default_rng(0)
    img = rng.random((64, 48, 3))
    ours = imresize(img, 1 / 4)
    ref = F.interpolate(torch.from_numpy(img).permute(2, 0, 1)[None], scale_factor=0.25, mode="bicubic",
                        align_corners=False, antialias=True)[0].permute(1, 2, 0).numpy()
    np.testing.assert_allclose(ours[2:-2, 2:-2], ref[2:-2, 2:-2], atol=1e-6)


def test_torch_path_equals_numpy_float_path():
    rng = np.random.default_rng(1)
    img = rng.random((3, 30, 41))
    for scale in (1 / 3, 2, 4):
        ref = np.stack([imresize(c, scale) for c in img])
        ours = imresize(torch.from_numpy(img), scale).numpy()
        np.testing.assert_allclose(ours, ref, atol=1e-12)


def test_uint8_rounds_after_each_pass():
    # MATLAB rounds to uint8 between the two 1-D passes; the float path does not.
    rng = np.random.default_rng(2)
    img = rng.integers(0, 256, (40, 40, 3), dtype=np.uint8)
    out = imresize(img, 1 / 2)
    first = np.floor(np.clip(np.tensordot(resize_matrix(40, 20, 0.5), img.astype(float), axes=([1], [0])), 0, 255) + 0.5)
    second = np.floor(np.clip(np.tensordot(resize_matrix(40, 20, 0.5), first, axes=([1], [1])), 0, 255) + 0.5)
    np.testing.assert_array_equal(out, np.moveaxis(second, 0, 1).astype(np.uint8))


def test_weights_are_a_partition_of_unity_and_sizes_follow_matlab():
    for n_in, n_out, s in [(10, 40, 4), (40, 10, 0.25), (17, 6, 1 / 3)]:
        m = resize_matrix(n_in, n_out, s)
        np.testing.assert_allclose(m.sum(axis=1), 1, atol=1e-12)
    assert imresize(np.zeros((7, 9), np.uint8), 1 / 2).shape == (4, 5)  # ceil(in * scale)
    assert imresize(np.zeros((7, 9), np.uint8), output_shape=(3, 3)).shape == (3, 3)


def test_bad_arguments():
    with pytest.raises(ValueError, match="exactly one"):
        imresize(np.zeros((4, 4)), 2, output_shape=(8, 8))
    with pytest.raises(TypeError, match="uint8 and float"):
        imresize(np.zeros((4, 4), np.int32), 2)
    with pytest.raises(TypeError, match="float tensor"):
        imresize(torch.zeros(4, 4, dtype=torch.int64), 2)
