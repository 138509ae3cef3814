"""Figures: the qualitative grid shows the outputs and whole-image PSNRs evaluation measures, on one crop chosen from
the HR image; the trade-off figures plot the seed means of the evaluation results and skip older sidecars by name."""

import csv
import json
import math
import statistics

import numpy as np
import pytest
import torch
from PIL import Image
from scipy.ndimage import gaussian_filter

from repro import build_model
from repro import evaluate as ev
from repro.data.io import read_image, write_png
from repro.data.prepare import make_pair
from repro.figures import grid_draw
from repro.figures.cli import main
from repro.figures.crop import select_crop
from repro.figures.tradeoff import SkippedResult, make_tradeoff, select_records, tradeoff_title
from repro.metrics import psnr, rgb_to_y

pytestmark = pytest.mark.usefixtures("one_thread")

SCALE = 4
TINY_DIFFRWKVIR = dict(width=16, n_groups=1, depth=2, head_size=16, n_feats=16, n_encoder_res=1)  # diffrwkvir_tiny.yaml


def _rows(path):
    with open(path) as fh:
        return list(csv.DictReader(fh))


@pytest.fixture
def prepared(tmp_path):
    """A prepared x4 set as `python -m repro prepare` lays it out: a colour and a gray image, smooth noise with a
    bright bar (a place with detail), LR by the harness's MATLAB bicubic."""
    rng = np.random.default_rng(0)
    out = tmp_path / "Tiny_x4"
    for name, shape in (("colour", (48, 40, 3)), ("gray", (40, 36))):
        img = gaussian_filter(rng.uniform(0, 255, shape), (2, 2, 0)[:len(shape)])  # smooth in space, not across colours
        img[20:28, 8:24] = 250
        pair = make_pair(np.clip(img, 0, 255).astype(np.uint8), SCALE)
        write_png(out / "HR" / f"{name}.png", pair.hr)
        write_png(out / "LR" / f"{name}.png", pair.lr)
    return out


def _official_srcnn(path):
    """An SRCNN checkpoint in the official layout ({"params": ...}): close to passing the bicubic luma through (an
    untrained SRCNN outputs black), but not exactly, so that its column differs from Bicubic's."""
    torch.manual_seed(0)
    model = build_model("srcnn", scale=SCALE)
    with torch.no_grad():
        for conv in (model.conv1, model.conv2, model.conv3):
            centre = conv.kernel_size[0] // 2
            conv.weight.normal_(std=1e-3)
            conv.weight[0, 0, centre, centre] += 1.0
    torch.save({"params": model.state_dict()}, path)
    return model.eval()


def _harness_diffrwkvir(path, *, trained_scale=SCALE):
    """A stage-2 DiffRWKVIR checkpoint as the trainer writes it: it names its model, scale and overrides."""
    torch.manual_seed(1)
    state = build_model("diffrwkvir", scale=SCALE, **TINY_DIFFRWKVIR).state_dict()
    torch.save({"format": 1, "model": state, "ema": None, "step": 7, "model_name": "diffrwkvir",
                "scale": trained_scale, "model_overrides": TINY_DIFFRWKVIR}, path)


def _protocol_psnr(out, hr):
    """The frozen SR protocol by hand: Y (a gray image's own channel), a border of `scale` pixels cropped."""
    if hr.ndim == 2:
        return psnr(out.astype(np.float64), hr.astype(np.float64), crop_border=SCALE)
    return psnr(rgb_to_y(out), rgb_to_y(hr), crop_border=SCALE)


def test_grid_shows_the_crops_and_psnrs_that_evaluation_measures(prepared, tmp_path, capsys):
    srcnn_ckpt, s2_ckpt = tmp_path / "srcnn_x4.pth", tmp_path / "last.pt"
    srcnn = _official_srcnn(srcnn_ckpt)
    _harness_diffrwkvir(s2_ckpt)
    out = tmp_path / "fig" / "grid.png"
    main(["grid", "--prepared", str(prepared), "--images", "gray", "colour", "--crop", "16", "--out", str(out),
          "--bicubic", "--model", "SRCNN", f"srcnn:{srcnn_ckpt}", "--model", "Ours", str(s2_ckpt), "--seed", "0"])
    assert "grid: 2 images x 3 models" in capsys.readouterr().out

    # the PNG: 2 rows of 5 cells (HR, Bicubic, SRCNN, Ours, ground truth) under a title of whole lines
    n_rows, n_cols = 2, 5
    width, height = Image.open(out).size
    assert width == 2 * grid_draw.MARGIN + n_cols * grid_draw.CELL + (n_cols - 1) * grid_draw.GAP
    title_band = (height - 2 * grid_draw.MARGIN - grid_draw.HEADER - n_rows * (grid_draw.CELL + grid_draw.CAPTION)
                  - (n_rows - 1) * grid_draw.GAP)
    assert title_band > 0 and title_band % grid_draw.TITLE_LINE == 0

    rows = _rows(out.with_suffix(".csv"))
    assert [(r["image"], r["label"], r["model"]) for r in rows] == [
        (img, label, model) for img in ("gray", "colour")
        for label, model in (("Bicubic", "bicubic"), ("SRCNN", "srcnn"), ("Ours", "diffrwkvir"))]
    assert {r["protocol"] for r in rows} == {"sr-y601-crop4-fp64"}
    assert [r["seed"] for r in rows if r["model"] == "diffrwkvir"] == ["0", "0"]
    assert {r["seed"] for r in rows if r["model"] != "diffrwkvir"} == {""}

    by_key = {(r["image"], r["model"]): r for r in rows}
    for image in ("gray", "colour"):
        hr, lr = read_image(prepared / "HR" / f"{image}.png"), read_image(prepared / "LR" / f"{image}.png")
        box = select_crop(hr, 16)  # one window per image, from the HR alone, the same for every model
        assert {(r["crop_top"], r["crop_left"], r["crop_size"]) for r in rows if r["image"] == image} == {
            (str(box.top), str(box.left), "16")}
        with torch.no_grad():
            out_srcnn = ev.to_uint8(srcnn(ev.to_tensor(lr)), gray=hr.ndim == 2)
        assert float(by_key[image, "srcnn"]["psnr"]) == _protocol_psnr(out_srcnn, hr)
        assert by_key[image, "srcnn"]["psnr"] != by_key[image, "bicubic"]["psnr"]

    # the numbers are the per-image PSNRs `evaluate` writes, stage-2 noise seed included
    kw = dict(prepared_dir=prepared, metrics=("psnr",), progress=False)
    evaluated = {
        "srcnn": ev.evaluate("srcnn", "Set5", SCALE, tmp_path / "eval" / "srcnn.csv", checkpoint=srcnn_ckpt, **kw),
        "diffrwkvir": ev.evaluate(None, "Set5", None, tmp_path / "eval" / "s2.csv", checkpoint=s2_ckpt, seed=0, **kw),
        "bicubic": ev.evaluate("bicubic", "Set5", SCALE, tmp_path / "eval" / "bicubic.csv", **kw)}
    for model, result in evaluated.items():
        for row in _rows(result.csv_path)[:-1]:
            assert float(by_key[row["image"], model]["psnr"]) == float(row["psnr"]), (model, row["image"])


def test_grid_crop_given_by_hand_and_scale_checks(prepared, tmp_path, capsys):
    ckpt = tmp_path / "srcnn.pth"
    _official_srcnn(ckpt)
    out = tmp_path / "grid.png"
    main(["grid", "--prepared", str(prepared), "--images", "colour", "--crop", "8", "--crop-at", "4", "12",
          "--out", str(out), "--model", "SRCNN", f"srcnn:{ckpt}"])
    assert {(r["crop_top"], r["crop_left"], r["scale"]) for r in _rows(out.with_suffix(".csv"))} == {("4", "12", "4")}
    # a checkpoint trained at x2 does not go into an x4 grid, nor an x4 set into an x2 one; nor a crop outside the image
    s2 = tmp_path / "s2_x2.pt"
    _harness_diffrwkvir(s2, trained_scale=2)
    for argv, message in (
        (["--model", "Ours", str(s2)], f"{s2}: the checkpoint was trained at x2, not x4"),
        (["--scale", "2", "--model", "SRCNN", f"srcnn:{ckpt}"], "does not match LR colour.png"),
        (["--crop-at", "40", "0", "--model", "SRCNN", f"srcnn:{ckpt}"], "does not lie inside the 40x48 image"),
        (["--images", "colour", "nope", "--model", "SRCNN", f"srcnn:{ckpt}"], "no image 'nope'; it has colour, gray"),
    ):
        with pytest.raises(SystemExit):
            main(["grid", "--prepared", str(prepared), "--images", "colour", "--crop", "16", "--out", str(out), *argv])
        assert message in capsys.readouterr().err


def test_grid_checkpoint_errors_name_the_file(prepared, tmp_path, capsys):
    garbage = tmp_path / "garbage.pth"
    garbage.write_bytes(b"this is not a checkpoint")
    narrow = tmp_path / "narrow.pth"
    torch.save({"params": build_model("srcnn", scale=SCALE, n1=8).state_dict()}, narrow)
    bare = tmp_path / "bare.pth"
    torch.save(build_model("srcnn", scale=SCALE).state_dict(), bare)
    cases = [
        (f"srcnn:{garbage}", f"{garbage}: cannot be read as a checkpoint"),
        (f"srcnn:{narrow}", f"{narrow}: checkpoint (official params) does not fit the model"),
        (str(bare), f"{bare}: a state_dict checkpoint does not name its model; give it as MODEL:{bare}"),
        (f"srcnn:{tmp_path / 'absent.pth'}", f"{tmp_path / 'absent.pth'}: no such checkpoint file"),
    ]
    out = tmp_path / "grid.png"
    for source, message in cases:
        with pytest.raises(SystemExit):
            main(["grid", "--prepared", str(prepared), "--images", "colour", "--crop", "16", "--out", str(out),
                  "--model", "X", source])
        err = capsys.readouterr().err
        assert err.startswith("error: ") and message in err, (source, err)
    assert not out.exists()


def test_select_crop_takes_the_most_detailed_window_deterministically():
    img = np.full((64, 48, 3), 120, np.uint8)
    assert select_crop(img, 16) == select_crop(img, 16)
    assert (select_crop(img, 16).top, select_crop(img, 16).left) == (0, 0)  # a tie: the first window
    img[40:60, 30:46] = np.random.default_rng(0).integers(0, 256, (20, 16, 3))
    box = select_crop(img, 16)
    assert (box.top, box.left) in {(40, 30), (44, 30), (40, 32), (44, 32), (48, 32)}  # on the stride-4 grid, on the noise
    assert box.of(img).shape == (16, 16, 3)
    img2 = np.full((20, 20), 10, np.uint8)
    img2[-3:, -3:] = 250
    assert (select_crop(img2, 8, stride=5).top, select_crop(img2, 8, stride=5).left) == (12, 12)  # the last position
    with pytest.raises(ValueError, match="crop size 21 does not fit an image of 20x20"):
        select_crop(img2, 21)


# --- trade-off figures -----------------------------------------------------------------------------------------------

def _write_result(folder, *, model, psnr_mean, dataset="Set5", scale=4, n_params=None, median=None, timing=True,
                  seed=None, device="cpu", threads=2):
    """An evaluation's CSV (two images and the mean row) and its sidecar, as `python -m repro evaluate` writes them."""
    folder.mkdir(parents=True, exist_ok=True)
    csv_path = folder / f"{dataset}_x{scale}.csv"
    columns = ["image", "psnr", "ssim", "niqe", "lpips", "rmse", "sam"]
    rows = [[f"img{i}", psnr_mean + d, 0.9, "nan", "nan", 5.0, 0.1] for i, d in enumerate((-0.5, 0.5))]
    with open(csv_path, "w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerows([columns, *rows, ["mean", psnr_mean, 0.9, "nan", "nan", 5.0, 0.1]])
    meta = {"model": model, "dataset": dataset, "scale": scale, "protocol": f"sr-y601-crop{scale}-fp64", "n_images": 2,
            "missing": {}, "seed": None, "train_seed": seed, "device": device, "threads": threads}
    if n_params is not None:
        meta["n_params"] = n_params
    if timing:
        meta["forward_seconds"] = {"median": median, "total": 2 * (median or 0), "n_timed": 0 if median is None else 2}
    json_path = csv_path.with_suffix(".json")
    json_path.write_text(json.dumps(meta))
    return json_path


@pytest.fixture
def results(tmp_path):
    root = tmp_path / "results" / "eval"
    return {
        "srcnn0": _write_result(root / "srcnn" / "seed0", model="srcnn", psnr_mean=30.0, n_params=8129, median=0.01, seed=0),
        "srcnn1": _write_result(root / "srcnn" / "seed1", model="srcnn", psnr_mean=31.0, n_params=8129, median=0.03, seed=1),
        "swinir": _write_result(root / "swinir" / "seed0", model="swinir", psnr_mean=32.5, n_params=897_000, median=0.8),
        "bicubic": _write_result(root / "bicubic", model="bicubic", psnr_mean=28.4, n_params=0, median=0.002),
        # older results: no n_params and no forward_seconds; a run resumed entirely: no timed image
        "old": _write_result(root / "vdsr" / "seed0", model="vdsr", psnr_mean=31.3, timing=False),
        "resumed": _write_result(root / "hat" / "seed0", model="hat", psnr_mean=33.0, n_params=20_000_000, median=None),
        # another set (and an old sidecar at that): passed over without a word
        "set14": _write_result(root / "srcnn" / "seed0", model="srcnn", psnr_mean=27.0, dataset="Set14", timing=False),
    }


def test_tradeoff_plots_seed_means_with_error_bars_and_skips_old_sidecars(results, tmp_path, capsys):
    out_params, out_time = tmp_path / "figs" / "psnr_params.png", tmp_path / "figs" / "psnr_time.png"
    main(["tradeoff", "--eval-json", *map(str, results.values()), "--dataset", "Set5", "--out-params", str(out_params),
          "--out-time", str(out_time)])
    captured = capsys.readouterr()
    warned = [line for line in captured.err.splitlines() if line.startswith("warning: ")]
    assert len(warned) == 3  # vdsr in both figures, hat in the time figure only
    assert sum(str(results["old"]) in w and "no n_params" in w for w in warned) == 1
    assert sum(str(results["old"]) in w and "no forward_seconds median" in w for w in warned) == 1
    assert sum(str(results["resumed"]) in w and "PSNR-seconds" in w for w in warned) == 1
    assert str(results["set14"]) not in captured.err
    for png in (out_params, out_time):
        assert Image.open(png).format == "PNG"

    params = {r["model"]: r for r in _rows(out_params.with_suffix(".csv"))}
    assert sorted(params) == ["bicubic", "hat", "srcnn", "swinir"]
    srcnn = params["srcnn"]
    assert (srcnn["label"], srcnn["n_seeds"], srcnn["n_params"], srcnn["drawn_as"]) == ("SRCNN[24]", "2", "8129", "point")
    assert float(srcnn["psnr_mean"]) == 30.5 and float(srcnn["psnr_std"]) == statistics.stdev([30.0, 31.0])
    assert srcnn["files"] == f"{results['srcnn0']};{results['srcnn1']}"
    assert (params["swinir"]["label"], params["swinir"]["n_seeds"], params["swinir"]["psnr_std"]) == ("SwinIR[21]", "1", "")
    assert float(params["swinir"]["psnr_mean"]) == 32.5
    assert (params["bicubic"]["label"], params["bicubic"]["drawn_as"]) == ("Bicubic", "line")  # 0 is off a log axis
    assert params["hat"]["label"] == "HAT[22]"

    times = {r["model"]: r for r in _rows(out_time.with_suffix(".csv"))}
    assert sorted(times) == ["bicubic", "srcnn", "swinir"]
    assert math.isclose(float(times["srcnn"]["seconds_per_image"]), 0.02)  # the mean of the seeds' medians
    assert float(times["bicubic"]["seconds_per_image"]) == 0.002
    assert (times["srcnn"]["device"], times["srcnn"]["threads"]) == ("cpu", "2")
    assert float(times["srcnn"]["psnr_std"]) == statistics.stdev([30.0, 31.0])


def test_tradeoff_titles_and_refusals(results, tmp_path):
    records = select_records([results["srcnn0"], results["swinir"], results["srcnn0"]], "Set5")
    assert len(records) == 2  # a file named twice counts once
    title = tradeoff_title(records, "seconds")
    assert "Set5 x4" in title and "sr-y601-crop4-fp64" in title and "cpu, 2 threads" in title
    with pytest.warns(SkippedResult) as skipped:
        make_tradeoff([results["old"], results["swinir"]], "Set5", out_params=tmp_path / "p.png",
                      out_time=tmp_path / "t.png")
    params_why = "no n_params (results older than that field?); left out of the PSNR-params figure"
    seconds_why = ("no forward_seconds median (results older than that field, or no image was timed); left out of the "
                   "PSNR-seconds figure")
    assert [str(w.message) for w in skipped] == [f"{results['old']}: the sidecar has {params_why}",
                                                 f"{results['old']}: the sidecar has {seconds_why}"]
    x2 = _write_result(tmp_path / "x2", model="srcnn", psnr_mean=36.0, scale=2, n_params=8129, median=0.01)
    with pytest.raises(ValueError, match=r"several scales \(x2, x4\); pass --scale"):
        select_records([results["swinir"], x2], "Set5")
    assert [r.scale for r in select_records([results["swinir"], x2], "Set5", scale=2)] == [2]
    with pytest.raises(ValueError, match="none of the 1 sidecars is a Set5"):
        select_records([results["set14"]], "Set5")
    with pytest.raises(ValueError, match="must end in .png|ending in .png"):
        make_tradeoff([results["swinir"]], "Set5", out_params=tmp_path / "p.pdf", out_time=tmp_path / "t.png")
