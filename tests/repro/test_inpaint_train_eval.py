"""Inpainting through the trainer and the evaluation: both stages of both models, the masked input, known pixels
pasted back, FID reported as missing with its reason and image count, resume of an interrupted evaluation."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from repro.data.inpaint import load_inpaint_pairs
from repro.data.io import read_image
from repro.train.config import apply_overrides, load_profiles, resolve
from repro.train.loop import train

REPO = Path(__file__).resolve().parents[2]
PROFILES = [REPO / "config" / "config.yaml", REPO / "config" / "smoke.yaml"]

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def places(data_mirror, tmp_path_factory) -> Path:
    from repro.data.inpaint import prepare_inpaint_set

    out = tmp_path_factory.mktemp("prepared") / "Places365"
    prepare_inpaint_set("Places365", out, data_mirror=data_mirror)
    # the first 5 images keep the tests short (a manifest lists what a set holds; the files beyond it are unused)
    manifest = out / "manifest.tsv"
    lines = manifest.read_text().splitlines(keepends=True)
    header = next(i for i, line in enumerate(lines) if line.startswith("image\t"))
    manifest.write_text("".join(lines[:header + 6]))
    return out


def run_config(model: str, data_mirror: Path, tmp: Path, *sets: str, stage1: Path | None = None) -> dict:
    cfg = resolve(load_profiles(PROFILES), model=model, scale=4, stage1=None if stage1 is None else str(stage1))
    return apply_overrides(cfg, [f"data_mirror={data_mirror}", f"train.cache_dir={tmp / 'cache'}", *sets])


def test_the_inpainting_recipe_is_the_train_section_updated_by_train_inpaint(data_mirror, tmp_path):
    cfg = run_config("diffrwkvir_inpaint_s1", data_mirror, tmp_path)
    profile = load_profiles(PROFILES)
    assert cfg["scale"] == 1  # an inpainting network has no scale, whatever the caller passed
    assert cfg["train"]["patch"] == profile["train_inpaint"]["patch"] != profile["train"]["patch"]
    assert cfg["train"]["sets"] == profile["train"]["sets"]  # not overridden: the same crops as SR
    assert cfg["train"]["steps"] == profile["models"]["diffrwkvir_inpaint_s1"]["train"]["steps"]
    sr = resolve(profile, model="diffrwkvir_s1", scale=4)
    assert sr["train"]["patch"] == profile["train"]["patch"]  # SR rows do not see train_inpaint


def test_masked_input_and_paste_back():
    from repro.evaluate_inpaint import masked_input, paste_back

    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, (9, 7, 3), dtype=np.uint8)
    hole = rng.random((9, 7)) < 0.3
    lq, gt = masked_input(image, hole)
    assert lq.shape == (1, 4, 9, 7) and torch.equal(lq[0, 3].bool(), torch.from_numpy(hole))
    assert torch.all(lq[0, :3][:, torch.from_numpy(hole)] == 0)
    torch.testing.assert_close(lq[0, :3][:, ~torch.from_numpy(hole)], gt[0][:, ~torch.from_numpy(hole)])
    pred = np.zeros_like(image)
    out = paste_back(pred, image, hole)
    assert (out[~hole] == image[~hole]).all() and (out[hole] == 0).all()


@pytest.mark.parametrize("family", ["diffrwkvir", "diffir"])
def test_two_stage_inpainting_trains_and_evaluates(family, data_mirror, places, tmp_path):
    s1, s2 = tmp_path / "s1", tmp_path / "s2"
    # validation on Places365 with its masks (the smoke profile's val_every), once: it costs more than the training
    validated = family == "diffir"
    no_val = [] if validated else ["train.val_every=None"]
    train(run_config(f"{family}_inpaint_s1", data_mirror, tmp_path, *no_val), s1, progress=False)
    losses = json.loads((s1 / "env.json").read_text())["losses"]  # what LaMa-style training adds, and why it is off
    assert losses["l1"] == "on" and losses["perceptual"].startswith("off: ") and losses["adversarial"].startswith("off (")
    val_psnr = [float(r["val_psnr"]) for r in csv.DictReader((s1 / "metrics.csv").open()) if r["val_psnr"]]
    assert len(val_psnr) == validated and all(0 < v < 60 for v in val_psnr)
    train(run_config(f"{family}_inpaint", data_mirror, tmp_path, "train.val_every=None", stage1=s1), s2, progress=False)
    out = tmp_path / "eval" / "Places365_inpaint.csv"
    images = tmp_path / "eval" / "images"
    cmd = [sys.executable, "-m", "repro", "evaluate-inpaint", "--checkpoint", str(s2 / "final.pt"), "--dataset",
           "Places365", "--prepared", str(places), "--out-csv", str(out), "--save-images", str(images), "--quiet", "--threads", "1",
           "--metric-weights", str(data_mirror / "metrics")]
    done = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
    rows = list(csv.DictReader(out.open()))
    assert [r["image"] for r in rows[:-1]] == [p.name for p in load_inpaint_pairs(places)]
    assert rows[-1]["image"] == "mean" and all(np.isnan(float(r["fid"])) for r in rows)
    meta = json.loads(out.with_suffix(".json").read_text())
    assert meta["model"] == f"{family}_inpaint" and meta["dataset"] == "Places365" and meta["scale"] is None
    assert meta["protocol"] == "inpaint-rgb-full-fp64" and meta["n_images"] == len(rows) - 1
    assert "fid" in meta["missing"] and meta["fid"]["value"] is None and meta["fid"]["n_images"] == meta["n_images"]
    assert "2000" in meta["fid"]["warning"]
    lpips = [float(r["lpips"]) for r in rows]
    # LPIPS needs the AlexNet backbone beside the linear layers; the mirror may lack it, and then it says why
    assert all(np.isnan(lpips)) if "lpips" in meta["missing"] else all(0 < v < 1 for v in lpips)
    # the known pixels are the original's, exactly

    for pair in load_inpaint_pairs(places)[:3]:
        completed = read_image(images / f"{pair.name}.png")
        assert (completed[~pair.hole] == pair.image[~pair.hole]).all()
        assert not (completed[pair.hole] == pair.image[pair.hole]).all()


def test_an_interrupted_inpainting_evaluation_resumes(data_mirror, places, tmp_path, monkeypatch):
    from repro import build_model
    from repro.evaluate_inpaint import evaluate_inpaint
    from repro.train import checkpoint

    cfg = run_config("diffrwkvir_inpaint", data_mirror, tmp_path)
    model = build_model("diffrwkvir_inpaint", **cfg["model_args"])
    ckpt = tmp_path / "w.pt"
    checkpoint.save_atomic({"format": checkpoint.FORMAT, "step": 0, "model_name": "diffrwkvir_inpaint", "scale": 1,
                            "model_overrides": cfg["model_args"], "config": cfg, "config_hash": "x",
                            "model": model.state_dict(), "ema": None}, ckpt)
    out = tmp_path / "eval" / "Places365_inpaint.csv"
    whole = evaluate_inpaint(None, "Places365", places, tmp_path / "whole.csv", checkpoint=ckpt, progress=False)

    import repro.evaluate_inpaint as module

    real, calls = module.complete, []

    def stop_after_four(*args, **kwargs):
        if len(calls) == 4:  # of 5
            raise KeyboardInterrupt
        calls.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(module, "complete", stop_after_four)
    with pytest.raises(KeyboardInterrupt):
        evaluate_inpaint(None, "Places365", places, out, checkpoint=ckpt, progress=False)
    assert len(out.with_suffix(".partial.csv").read_text().splitlines()) == 1 + 4
    calls.clear()
    monkeypatch.setattr(module, "complete", lambda *a, **k: (calls.append(1), real(*a, **k))[1])
    resumed = evaluate_inpaint(None, "Places365", places, out, checkpoint=ckpt, progress=False)
    assert len(calls) == json.loads(whole.json_path.read_text())["n_images"] - 4 == 1  # only the image not done
    assert resumed.means == pytest.approx(whole.means, nan_ok=True)


def test_a_stage1_or_sr_network_is_refused(places, tmp_path):
    from repro.evaluate_inpaint import evaluate_inpaint

    with pytest.raises(ValueError, match="stage 1 of a two-stage model"):
        evaluate_inpaint("diffrwkvir_inpaint_s1", "Places365", places, tmp_path / "a.csv")
    with pytest.raises(ValueError, match="is a sr network; inpaint evaluation needs an inpaint network"):
        evaluate_inpaint("swinir", "Places365", places, tmp_path / "b.csv")
    with pytest.raises(ValueError, match="unknown set"):
        evaluate_inpaint("diffrwkvir_inpaint", "Set5", places, tmp_path / "c.csv")
