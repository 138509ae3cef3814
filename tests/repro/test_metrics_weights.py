"""Weight-backed metrics: LPIPS and FID wiring with stand-in networks, offline loading, missing-metric reasons."""

import math

import numpy as np
import pytest
import torch
import torchvision
from PIL import Image

from repro.metrics import get_protocol
from repro.metrics.weights import offline_hub


def load(path) -> np.ndarray:
    with Image.open(path) as img:
        return np.array(img)


def bicubic_round_trip(hr: np.ndarray, scale: int = 4) -> np.ndarray:
    h, w = hr.shape[:2]
    return np.array(Image.fromarray(hr).resize((w // scale, h // scale), Image.BICUBIC).resize((w, h), Image.BICUBIC))


@pytest.fixture(scope="module")
def metrics_dir(data_mirror):
    return data_mirror / "metrics"


def test_missing_metrics_name_files_and_folder(tmp_path, metrics_dir, data_mirror):
    none = get_protocol("sr", scale=4, metric_weights=None)
    assert set(none.missing) == {"niqe", "lpips"}
    assert all("no metric_weights folder" in why for why in none.missing.values())
    assert "niqe/niqe_pris_params.npz" in none.missing["niqe"] and "lpips/v0.1/alex.pth" in none.missing["lpips"]

    shared = get_protocol("sr", scale=4, metric_weights=metrics_dir)
    assert set(shared.missing) == {"lpips"}
    why = shared.missing["lpips"]
    assert "alexnet-owt-7be5be79.pth" in why and str(metrics_dir.resolve()) in why and "alex.pth" not in why

    absent = get_protocol("sr", scale=2, metric_weights=tmp_path / "nowhere")
    assert "does not exist" in absent.missing["niqe"]

    hr = load(data_mirror / "Set5" / "HR" / "woman.png")
    got = shared.compute(hr, hr)
    assert math.isnan(got["lpips"]) and got["psnr"] == math.inf and got["ssim"] == pytest.approx(1.0)

    q = get_protocol("inpaint", metric_weights=metrics_dir)
    assert set(q.missing) == {"lpips", "fid"} and "pt_inception-2015-12-05-6726825d.pth" in q.missing["fid"]
    images = data_mirror / "Inpainting" / "Places365_val_256" / "images"
    assert math.isnan(q.compute_fid(images, images))
    with pytest.raises(FileNotFoundError):
        q.compute_fid(tmp_path / "nowhere", images)


def test_offline_hub_refuses_downloads_and_restores_state():
    import pyiqa.utils.download_util as pyiqa_download

    before = (torch.hub._hub_dir, torch.hub.get_dir(), torch.hub.download_url_to_file, pyiqa_download.DEFAULT_CACHE_DIR)
    with offline_hub({}) as hub:
        assert torch.hub.get_dir() == str(hub)
        with pytest.raises(RuntimeError, match="refusing to download"):
            torch.hub.load_state_dict_from_url("https://example.invalid/missing-weights.pth")
        with pytest.raises(RuntimeError, match="refusing to download"):
            pyiqa_download.load_file_from_url("https://example.invalid/missing-weights.pth")
    assert (
        torch.hub._hub_dir,
        torch.hub.get_dir(),
        torch.hub.download_url_to_file,
        pyiqa_download.DEFAULT_CACHE_DIR,
    ) == before
    assert not hub.exists()


def lpips_reference(pred: np.ndarray, ref: np.ndarray, backbone: dict, linear: dict) -> float:
    """LPIPS from its definition, in float64: scaled input, AlexNet ReLU taps, unit-normalised channels, squared
    difference, 1x1 linear weights, spatial mean, sum over layers."""
    net = torchvision.models.alexnet(weights=None)
    net.load_state_dict(backbone)
    features = net.features.double().eval()
    shift = torch.tensor([-0.030, -0.088, -0.188], dtype=torch.float64).view(1, 3, 1, 1)
    scale = torch.tensor([0.458, 0.448, 0.450], dtype=torch.float64).view(1, 3, 1, 1)

    def taps(img):
        x = torch.from_numpy(img).permute(2, 0, 1)[None].double() / 255 * 2 - 1
        x, out = (x - shift) / scale, []
        for i, layer in enumerate(features):
            x = layer(x)
            if i in (1, 4, 7, 9, 11):
                out.append(x.clone())
        return out

    total = 0.0
    with torch.no_grad():
        for k, (fa, fb) in enumerate(zip(taps(pred), taps(ref))):
            na, nb = fa / (fa.norm(dim=1, keepdim=True) + 1e-10), fb / (fb.norm(dim=1, keepdim=True) + 1e-10)
            w = linear[f"lin{k}.model.1.weight"].double().view(1, -1, 1, 1)
            total += float(((na - nb) ** 2 * w).sum(1).mean())
    return total


def random_alexnet_state(seed: int = 0) -> dict[str, torch.Tensor]:
    """A torchvision AlexNet state dict with He-initialised random features; the classifier (unused by LPIPS) is a
    zero-stride view, so the saved file stays a few MB instead of 233."""
    with torch.device("meta"):
        shapes = {k: v.shape for k, v in torchvision.models.alexnet(weights=None).state_dict().items()}
    gen = torch.Generator().manual_seed(seed)
    state = {}
    for key, shape in shapes.items():
        if key.startswith("features.") and key.endswith("weight"):
            state[key] = torch.randn(shape, generator=gen) * math.sqrt(2.0 / math.prod(shape[1:]))
        elif key.startswith("features."):
            state[key] = 0.01 * torch.randn(shape, generator=gen)
        else:
            state[key] = torch.zeros(()).expand(shape)
    return state


def test_lpips_wiring_with_random_backbone(tmp_path, metrics_dir, data_mirror):
    # the real AlexNet backbone is not on this machine: a random one, dropped into a metric_weights folder under
    # torchvision's file name, goes through exactly the loading path the real file would
    weights = tmp_path / "weights"
    (weights / "lpips" / "v0.1").mkdir(parents=True)
    (weights / "lpips" / "v0.1" / "alex.pth").symlink_to(metrics_dir / "lpips" / "v0.1" / "alex.pth")
    backbone = random_alexnet_state()
    (weights / "torchvision").mkdir()
    torch.save(backbone, weights / "torchvision" / "alexnet-owt-7be5be79.pth")
    linear = torch.load(metrics_dir / "lpips" / "v0.1" / "alex.pth", map_location="cpu", weights_only=True)

    hub_dir = torch.hub._hub_dir
    p = get_protocol("sr", scale=4, metric_weights=weights)
    assert "lpips" not in p.missing and "niqe" in p.missing
    hr = load(data_mirror / "Set5" / "HR" / "woman.png")
    sr = bicubic_round_trip(hr)
    got = p.compute(sr, hr)
    assert torch.hub._hub_dir == hub_dir
    expected = lpips_reference(sr, hr, backbone, linear)
    assert expected > 1e-3 and got["lpips"] == pytest.approx(expected, rel=1e-4)

    gray = load(data_mirror / "Set14" / "HR" / "bridge.png")[:160, :160]
    gray_sr = bicubic_round_trip(gray)
    stacked = lpips_reference(np.stack([gray_sr] * 3, -1), np.stack([gray] * 3, -1), backbone, linear)
    assert p.compute(gray_sr, gray)["lpips"] == pytest.approx(stacked, rel=1e-4)

    q = get_protocol("inpaint", metric_weights=weights)
    assert q.compute(gray_sr, gray)["lpips"] == pytest.approx(stacked, rel=1e-4)  # whole image in both protocols


def random_fid_inception_state(monkeypatch, seed: int = 0) -> dict[str, torch.Tensor]:
    """Random weights in the FID Inception layout (pyiqa's module built on the meta device with loading disabled)."""
    from pyiqa.archs import inception

    monkeypatch.setattr(inception, "load_pretrained_network", lambda *args, **kwargs: None)
    with torch.device("meta"):
        shapes = {k: (v.shape, v.dtype) for k, v in inception.fid_inception_v3().state_dict().items()}
    monkeypatch.undo()
    gen = torch.Generator().manual_seed(seed)
    state = {}
    for key, (shape, dtype) in shapes.items():
        if key.endswith("conv.weight"):
            state[key] = (torch.randn(shape, generator=gen) * math.sqrt(2.0 / math.prod(shape[1:]))).to(torch.bfloat16)
        elif key.endswith(("running_var", "bn.weight")):
            state[key] = torch.ones(()).expand(shape)
        else:
            state[key] = torch.zeros((), dtype=dtype).expand(shape)
    return state


def test_fid_wiring_with_random_inception(tmp_path, monkeypatch, data_mirror):
    # a random Inception under the real file name goes through the real offline loading and feature path; the
    # Frechet distance itself (pyiqa's clean-fid code, a 2048x2048 sqrtm that takes minutes on 2 cores) is recorded
    # instead of run
    from pyiqa.archs import fid_arch

    weights = tmp_path / "weights"
    weights.mkdir()
    torch.save(random_fid_inception_state(monkeypatch), weights / "pt_inception-2015-12-05-6726825d.pth")
    images = sorted((data_mirror / "Inpainting" / "Places365_val_256" / "images").iterdir())[:2]
    for name in ("a", "b"):
        (tmp_path / name).mkdir()
        for f in images:
            (tmp_path / name / f.name).symlink_to(f)
    calls = []
    monkeypatch.setattr(fid_arch, "frechet_distance", lambda *stats: calls.append(stats) or 1.25)

    q = get_protocol("inpaint", metric_weights=weights)
    assert "fid" not in q.missing
    assert q.compute_fid(tmp_path / "a", tmp_path / "b") == 1.25
    ((mu1, sigma1, mu2, sigma2),) = calls
    assert mu1.shape == (2048,) and sigma1.shape == (2048, 2048) and np.abs(mu1).sum() > 0
    np.testing.assert_array_equal(mu1, mu2)  # same images in both folders give the same statistics
    np.testing.assert_array_equal(sigma1, sigma2)
