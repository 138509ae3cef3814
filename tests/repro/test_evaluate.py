"""Evaluation end to end: the Bicubic rows reproduce the SR literature; CSV/JSON layout and names; resume; tiling."""

import csv
import json
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import torch
from torch import nn

from repro import build_model
from repro import evaluate as ev

REPO = Path(__file__).resolve().parents[2]
LITERATURE = pd.read_csv(REPO / "tables" / "published" / "bicubic_literature.csv")
PAIRS = [("Set5", 2), ("Set5", 3), ("Set5", 4), ("Set14", 2), ("Set14", 3), ("Set14", 4),
         ("BSD100", 2), ("BSD100", 3), ("BSD100", 4), ("Urban100", 4)]


def _published(dataset, scale, metric):
    row = LITERATURE[(LITERATURE.dataset == dataset) & (LITERATURE.scale == scale) & (LITERATURE.metric == metric)]
    assert len(row) == 1, (dataset, scale, metric)
    return float(row.value.iloc[0])


@pytest.mark.slow
@pytest.mark.parametrize("dataset,scale", PAIRS)
def test_bicubic_reproduces_the_literature(data_mirror, tmp_path, dataset, scale):
    # EDSR/RCAN's Bicubic rows, with our frozen protocol: within 0.03 dB PSNR and 0.002 SSIM.
    result = ev.evaluate("bicubic", dataset, scale, tmp_path / f"{dataset}_x{scale}.csv", data_mirror=data_mirror,
                         metrics=("psnr", "ssim"), progress=False)
    d_psnr = result.means["psnr"] - _published(dataset, scale, "psnr")
    d_ssim = result.means["ssim"] - _published(dataset, scale, "ssim")
    print(f"BICUBIC {dataset} x{scale}: psnr {result.means['psnr']:.4f} (delta {d_psnr:+.4f})  "
          f"ssim {result.means['ssim']:.4f} (delta {d_ssim:+.4f})")
    assert abs(d_psnr) <= 0.03 and abs(d_ssim) <= 0.002


def test_cli_writes_per_image_csv_mean_row_and_sidecar(data_mirror, tmp_path):
    # By hand, --out DIR names the files <DIR>/<Set>_x<s>.{csv,json}, the workflow's layout.
    res = subprocess.run([sys.executable, "-m", "repro", "evaluate", "--model", "bicubic", "--dataset", "Set14",
                          "--scale", "4", "--data-mirror", str(data_mirror), "--metric-weights",
                          str(data_mirror / "metrics"), "--metrics", "psnr,ssim,rmse,sam,lpips", "--out", str(tmp_path),
                          "--quiet"], check=False, capture_output=True, text=True, cwd=REPO, timeout=600)
    assert res.returncode == 0, res.stderr
    assert "bicubic Set14 x4: PSNR 25.99" in res.stdout and "lpips: missing" in res.stdout
    with open(tmp_path / "Set14_x4.csv") as fh:
        rows = list(csv.DictReader(fh))
    assert [r["image"] for r in rows][-1] == "mean" and len(rows) == 15
    assert list(rows[0]) == ["image", "psnr", "ssim", "lpips", "rmse", "sam"]
    meta = json.loads((tmp_path / "Set14_x4.json").read_text())
    assert meta["protocol"] == "sr-y601-crop4-fp64" and meta["n_images"] == 14
    assert "AlexNet" in meta["missing"]["lpips"]
    assert "bridge" in meta["undefined"]["sam"]  # SAM needs colour; the mean is over the 13 colour images
    assert rows[-1]["sam"] != "nan" and rows[-1]["lpips"] == "nan"
    assert not (tmp_path / "Set14_x4.partial.csv").exists()


def test_cli_writes_the_files_it_is_given_with_the_threads_it_is_given(data_mirror, tmp_path):
    # The workflow's rule names both outputs and its threads; nothing else lands beside them.
    out_csv, out_json = tmp_path / "rows.csv", tmp_path / "meta" / "sidecar.json"
    res = subprocess.run([sys.executable, "-m", "repro", "evaluate", "--model", "bicubic", "--dataset", "Set5",
                          "--scale", "4", "--data-mirror", str(data_mirror), "--metrics", "psnr", "--out-csv",
                          str(out_csv), "--out-json", str(out_json), "--threads", "1", "--quiet"],
                         check=False, capture_output=True, text=True, cwd=REPO, timeout=600)
    assert res.returncode == 0, res.stderr
    assert f"-> {out_csv}" in res.stdout
    meta = json.loads(out_json.read_text())
    assert meta["threads"] == 1 and meta["n_images"] == 5
    assert sorted(p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("*") if p.is_file()) == [
        "meta/sidecar.json", "rows.csv"]


def test_output_paths_derive_the_sidecar_and_partials_from_the_csv(tmp_path):
    paths = ev.output_paths(tmp_path / "Set5_x4.csv")
    assert paths.json == tmp_path / "Set5_x4.json"  # where repro.tables reads it
    assert (paths.partial_csv, paths.partial_json) == (tmp_path / "Set5_x4.partial.csv", tmp_path / "Set5_x4.partial.json")
    assert ev.csv_in_folder(tmp_path, "B100", 4) == tmp_path / "BSD100_x4.csv"  # the registry's name, not the alias
    with pytest.raises(ValueError, match=r"results/eval/bicubic: the evaluation output must be a \.csv file"):
        ev.output_paths("results/eval/bicubic")
    with pytest.raises(ValueError, match="cannot be the CSV itself"):
        ev.output_paths(tmp_path / "a.csv", tmp_path / "a.csv")


@pytest.mark.parametrize("argv,message", [
    (["--threads", "0", "--out-csv", "a.csv"], "--threads: expected a positive integer, got '0'"),
    (["--out", "d", "--out-csv", "a.csv"], "not allowed with argument"),
    ([], "one of the arguments --out-csv --out is required"),
])
def test_cli_rejects_bad_output_and_thread_arguments(capsys, argv, message):
    from repro.cli import main

    with pytest.raises(SystemExit):
        main(["evaluate", "--model", "bicubic", "--dataset", "Set5", *argv])
    assert message in capsys.readouterr().err


class CountingBicubic(nn.Module):
    def __init__(self, scale):
        super().__init__()
        self.inner = build_model("bicubic", scale=scale)
        self.calls = 0

    def forward(self, x):
        self.calls += 1
        return self.inner(x)


def test_interrupted_run_resumes_without_recomputing(data_mirror, tmp_path, monkeypatch):
    models = []

    def build(name, **kw):
        models.append(CountingBicubic(kw["scale"]))
        return models[-1]

    monkeypatch.setattr(ev, "build_model", build)
    original = ev.to_uint8

    def failing(out, *, gray):  # dies on the third image
        if models[-1].calls == 3:
            raise KeyboardInterrupt
        return original(out, gray=gray)

    monkeypatch.setattr(ev, "to_uint8", failing)
    out_csv = tmp_path / "bicubic" / "Set5_x4.csv"
    with pytest.raises(KeyboardInterrupt):
        ev.evaluate("bicubic", "Set5", 4, out_csv, data_mirror=data_mirror, metrics=("psnr",), progress=False)
    assert len((tmp_path / "bicubic" / "Set5_x4.partial.csv").read_text().splitlines()) == 1 + 2
    monkeypatch.setattr(ev, "to_uint8", original)
    result = ev.evaluate("bicubic", "Set5", 4, out_csv, data_mirror=data_mirror, metrics=("psnr",), progress=False)
    assert models[-1].calls == 3  # the two finished images were not run again
    fresh = ev.evaluate("bicubic", "Set5", 4, tmp_path / "fresh.csv", data_mirror=data_mirror, metrics=("psnr",),
                        progress=False)
    assert result.means == fresh.means


def test_tiled_forward_is_exact_for_a_local_network():
    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.Conv2d(8, 12, 3, padding=1), nn.PixelShuffle(2))
    lr = torch.rand(1, 3, 37, 29)
    with torch.no_grad():
        full, tiled = net(lr), ev.tiled_forward(net, lr, 2, tile=10, context=2)
    torch.testing.assert_close(tiled, full, atol=1e-6, rtol=0)


def test_unknown_model_and_wrong_task_are_clear_errors(data_mirror, tmp_path):
    with pytest.raises(KeyError, match="unknown model 'bicubik'"):
        ev.evaluate("bicubik", "Set5", 4, tmp_path / "Set5_x4.csv", data_mirror=data_mirror)
    with pytest.raises(ValueError, match="Places365 is a inpaint set"):
        ev.evaluate("bicubic", "Places365", 4, tmp_path / "Places365_x4.csv", data_mirror=data_mirror)
