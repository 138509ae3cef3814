"""Pixel metrics and the sr/inpaint protocols against independent computations (scikit-image, numpy) on real images."""

import math

import numpy as np
import pytest
from PIL import Image
from skimage.color import rgb2ycbcr
from skimage.metrics import mean_squared_error, peak_signal_noise_ratio, structural_similarity

from repro.metrics import crop, get_protocol, list_protocols, psnr, rgb_to_y, rmse, sam, ssim


def load(path) -> np.ndarray:
    with Image.open(path) as img:
        return np.asarray(img).copy()


def bicubic_round_trip(hr: np.ndarray, scale: int = 4) -> np.ndarray:
    """A deterministic degraded copy: PIL bicubic down by `scale` and back up, uint8."""
    h, w = hr.shape[:2]
    small = Image.fromarray(hr).resize((w // scale, h // scale), Image.BICUBIC)
    return np.array(small.resize((w, h), Image.BICUBIC))


def skimage_ssim(pred: np.ndarray, ref: np.ndarray, **kw) -> float:
    # Gaussian window sigma 1.5, truncate 3.5 -> 11 taps; skimage averages the map over the region 5 px inside
    return structural_similarity(
        ref.astype(np.float64),
        pred.astype(np.float64),
        gaussian_weights=True,
        sigma=1.5,
        use_sample_covariance=False,
        data_range=255,
        **kw,
    )


@pytest.fixture(scope="module")
def bird(data_mirror):
    hr = load(data_mirror / "Set5" / "HR" / "bird.png")
    return bicubic_round_trip(hr), hr


def test_rgb_to_y_matches_skimage_bt601(bird):
    sr, hr = bird
    for img in (sr, hr):
        np.testing.assert_allclose(rgb_to_y(img), rgb2ycbcr(img)[..., 0], rtol=0, atol=1e-9)
    y = rgb_to_y(hr)
    assert y.dtype == np.float64 and not np.allclose(y, np.round(y))  # not rounded
    assert 16.0 <= y.min() and y.max() <= 235.0


def test_sr_protocol_psnr_ssim_rmse_match_skimage(bird):
    sr, hr = bird
    p = get_protocol("sr", scale=4, metric_weights=None)
    got = p.compute(sr, hr)
    sr_y, hr_y = rgb2ycbcr(sr)[4:-4, 4:-4, 0], rgb2ycbcr(hr)[4:-4, 4:-4, 0]
    assert got["psnr"] == pytest.approx(peak_signal_noise_ratio(hr_y, sr_y, data_range=255), abs=1e-9)
    assert got["rmse"] == pytest.approx(math.sqrt(mean_squared_error(hr_y, sr_y)), abs=1e-9)
    assert got["ssim"] == pytest.approx(skimage_ssim(sr_y, hr_y), abs=1e-9)
    assert 20 < got["psnr"] < 40 and 0.5 < got["ssim"] < 1  # a x4 bicubic round trip, not a degenerate pair


def test_ssim_is_the_valid_region_mean_of_the_gaussian_map(bird):
    # naive oracle: an explicit 11x11 window at every position where it fits inside a 40x40 patch of real Y
    sr, hr = bird
    a, b = rgb_to_y(sr)[100:140, 120:160], rgb_to_y(hr)[100:140, 120:160]
    x = np.arange(11) - 5.0
    win = np.exp(-(x[:, None] ** 2 + x[None, :] ** 2) / (2 * 1.5**2))
    win /= win.sum()
    c1, c2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2
    vals = []
    for i in range(a.shape[0] - 10):
        for j in range(a.shape[1] - 10):
            pa, pb = a[i : i + 11, j : j + 11], b[i : i + 11, j : j + 11]
            ma, mb = (win * pa).sum(), (win * pb).sum()
            va, vb = (win * pa * pa).sum() - ma**2, (win * pb * pb).sum() - mb**2
            cov = (win * pa * pb).sum() - ma * mb
            vals.append((2 * ma * mb + c1) * (2 * cov + c2) / ((ma**2 + mb**2 + c1) * (va + vb + c2)))
    assert ssim(a, b) == pytest.approx(np.mean(vals), abs=1e-10)


def test_inpaint_protocol_rgb_psnr_ssim_whole_image(data_mirror):
    gt = load(min((data_mirror / "Inpainting" / "Places365_val_256" / "images").iterdir()))[..., :3]
    pred = bicubic_round_trip(gt, 2)
    q = get_protocol("inpaint", metric_weights=None)
    got = q.compute(pred, gt)
    assert tuple(got) == ("psnr", "ssim", "lpips", "fid") == q.metrics
    assert got["psnr"] == pytest.approx(peak_signal_noise_ratio(gt, pred, data_range=255), abs=1e-9)
    assert got["ssim"] == pytest.approx(skimage_ssim(pred, gt, channel_axis=2), abs=1e-9)
    assert math.isnan(got["lpips"]) and math.isnan(got["fid"])


def test_sam_matches_a_direct_pixel_loop(data_mirror):
    hr = load(data_mirror / "Set5" / "HR" / "butterfly.png")
    sr = bicubic_round_trip(hr)
    sr[10:14, 10:14] = 0  # zero vectors against non-zero ones
    sr[20:22, 20:22] = hr[20:22, 20:22] = 0  # both zero
    a, b = sr[:64, :64].astype(float), hr[:64, :64].astype(float)
    angles = []
    for u, v in zip(a[4:-4, 4:-4].reshape(-1, 3), b[4:-4, 4:-4].reshape(-1, 3)):
        nu, nv = math.sqrt(u @ u), math.sqrt(v @ v)
        if nu == 0 and nv == 0:
            angles.append(0.0)
        elif nu == 0 or nv == 0:
            angles.append(math.pi / 2)
        else:
            angles.append(math.acos(max(-1.0, min(1.0, (u @ v) / (nu * nv)))))
    assert sam(sr[:64, :64], hr[:64, :64], crop_border=4) == pytest.approx(np.mean(angles), abs=1e-12)
    assert sam(hr, hr) == pytest.approx(0.0, abs=1e-7)
    full = get_protocol("sr", scale=4, metric_weights=None).compute(sr, hr)["sam"]
    assert full == pytest.approx(sam(crop(sr, 4), crop(hr, 4)), abs=1e-15) and 0 < full < 0.5


def test_gray_image_measured_on_its_own_channel(data_mirror):
    hr = load(data_mirror / "Set14" / "HR" / "bridge.png")
    assert hr.ndim == 2
    sr = bicubic_round_trip(hr)
    got = get_protocol("sr", scale=4, metric_weights=None).compute(sr, hr)
    a, b = sr[4:-4, 4:-4].astype(float), hr[4:-4, 4:-4].astype(float)
    assert got["psnr"] == pytest.approx(peak_signal_noise_ratio(b, a, data_range=255), abs=1e-9)
    assert got["ssim"] == pytest.approx(skimage_ssim(a, b), abs=1e-9)
    assert got["rmse"] == pytest.approx(math.sqrt(mean_squared_error(b, a)), abs=1e-9)
    assert math.isnan(got["sam"])
    # the 16-235 luma of the gray image stacked to RGB compresses errors by 219/255: about 1.32 dB higher PSNR
    luma = psnr(rgb_to_y(np.stack([sr] * 3, -1)), rgb_to_y(np.stack([hr] * 3, -1)), crop_border=4)
    assert luma - got["psnr"] == pytest.approx(20 * math.log10(255 / 219), abs=0.01)


def test_rmse_and_psnr_agree(bird):
    sr, hr = bird
    a, b = rgb_to_y(sr), rgb_to_y(hr)
    assert psnr(a, b, crop_border=4) == pytest.approx(20 * math.log10(255 / rmse(a, b, crop_border=4)), abs=1e-9)
    assert psnr(a, a) == math.inf and rmse(a, a) == 0.0


def test_list_protocols_and_names():
    assert list_protocols() == {"sr": ("table3", "table5"), "inpaint": ("table2",)}
    p = get_protocol("sr", scale=3, metric_weights=None)
    assert p.name == "sr-y601-crop3-fp64" and p.crop_border == 3
    assert p.metrics == ("psnr", "ssim", "niqe", "lpips", "rmse", "sam")
    assert get_protocol("inpaint").name == "inpaint-rgb-full-fp64"


def test_bad_inputs_raise_clear_errors(bird):
    sr, hr = bird
    p = get_protocol("sr", scale=4, metric_weights=None)
    with pytest.raises(TypeError, match="uint8"):
        p.compute(sr.astype(np.float32), hr)
    with pytest.raises(ValueError, match="gray reference needs a gray prediction"):
        p.compute(sr, hr[..., 0])
    with pytest.raises(ValueError, match="HxWx3 RGB or HxW gray"):
        p.compute(sr[..., :2], hr[..., :2])
    with pytest.raises(ValueError, match="unknown protocol"):
        get_protocol("denoise")
    with pytest.raises(ValueError, match="positive integer scale"):
        get_protocol("sr", scale=None)
    with pytest.raises(ValueError, match="no scale"):
        get_protocol("inpaint", scale=4)
    with pytest.raises(ValueError, match="too small"):
        psnr(hr[:8, :8], hr[:8, :8], crop_border=4)
