"""Evaluation end to end: the Bicubic rows reproduce the SR literature; CSV/JSON layout and names; resume; tiling;
checkpoints (harness and official, raw and EMA weights); stage-2 seeding; self-ensemble; saved images; procedures."""

import csv
import json
import random
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
import torch.nn.functional as F
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


# --- checkpoints, weights, stage 2, self-ensemble, saved images, test procedures -------------------------------------

TINY_SWINIR = dict(embed_dim=12, depths=(2,), num_heads=(2,), window_size=4, img_size=16)
TINY_DIFFRWKVIR = dict(width=16, n_groups=1, depth=2, head_size=16, n_feats=16, n_encoder_res=1)  # diffrwkvir_tiny.yaml


@pytest.fixture
def small_set5(data_mirror, tmp_path):
    """Set5's images cropped to their top-left 48x40 HR pixels, prepared at x4 (HR/, LR/): real data, fast models."""
    from repro.data.io import read_image, write_png
    from repro.data.prepare import make_pair
    from repro.data.registry import image_files, locate

    out = tmp_path / "Set5_small_x4"
    for f in image_files(locate("Set5", data_mirror=data_mirror)):
        pair = make_pair(read_image(f)[:48, :40], 4, name=str(f))
        write_png(out / "HR" / f"{f.stem}.png", pair.hr)
        write_png(out / "LR" / f"{f.stem}.png", pair.lr)
    return out


def _rows(path):
    with open(path) as fh:
        return list(csv.DictReader(fh))


def _harness_checkpoint(path, *, model_name="swinir_light", scale=4, overrides=TINY_SWINIR, ema=True, step=1234):
    torch.manual_seed(1)
    raw = build_model(model_name, scale=scale, **overrides).state_dict()
    torch.manual_seed(2)
    ema_sd = build_model(model_name, scale=scale, **overrides).state_dict() if ema else None
    # the trainer's checkpoints also hold the optimizer and the RNG states (numpy's is an array): they must load
    rng = {"python": random.getstate(), "numpy": np.random.get_state(), "torch": torch.get_rng_state(), "cuda": []}
    torch.save({"format": 1, "model": raw, "ema": ema_sd, "step": step, "model_name": model_name, "scale": scale,
                "model_overrides": overrides, "config": {"model": model_name}, "config_hash": "abc123",
                "optimizer": torch.optim.Adam([nn.Parameter(torch.zeros(1))]).state_dict(), "rng": rng}, path)
    return raw, ema_sd


def test_harness_checkpoint_builds_its_model_and_weights_pick_raw_or_ema(small_set5, tmp_path):
    ckpt = tmp_path / "ckpt.pt"
    raw, ema_sd = _harness_checkpoint(ckpt)
    torch.save(raw, tmp_path / "raw.pth")
    torch.save({"params_ema": ema_sd}, tmp_path / "ema.pth")
    kw = dict(prepared_dir=small_set5, metrics=("psnr",), progress=False)
    # No model, scale or overrides given: the checkpoint's; default weights: its EMA.
    default = ev.evaluate(None, "Set5", None, tmp_path / "default.csv", checkpoint=ckpt, **kw)
    chosen_raw = ev.evaluate(None, "Set5", None, tmp_path / "raw.csv", checkpoint=ckpt, weights="raw", **kw)
    # The same weights as bare / official files, with the model named by hand.
    by_hand_raw = ev.evaluate("swinir_light", "Set5", 4, tmp_path / "h_raw.csv", checkpoint=tmp_path / "raw.pth",
                              overrides=TINY_SWINIR, **kw)
    by_hand_ema = ev.evaluate("swinir_light", "Set5", 4, tmp_path / "h_ema.csv", checkpoint=tmp_path / "ema.pth",
                              overrides=TINY_SWINIR, **kw)
    assert _rows(default.csv_path) == _rows(by_hand_ema.csv_path)
    assert _rows(chosen_raw.csv_path) == _rows(by_hand_raw.csv_path)
    assert _rows(default.csv_path) != _rows(chosen_raw.csv_path)
    meta = json.loads(default.json_path.read_text())
    assert meta["model"] == "swinir_light" and meta["scale"] == 4 and meta["weights"] == "ema" and meta["step"] == 1234
    assert meta["model_overrides"] == {**TINY_SWINIR, "depths": [2], "num_heads": [2]}
    assert meta["checkpoint_info"]["config_hash"] == "abc123" and meta["checkpoint_info"]["kind"] == "harness"
    assert meta["seed"] is None and meta["self_ensemble"] is False and meta["procedure"] == "harness"
    assert json.loads(chosen_raw.json_path.read_text())["weights"] == "raw"
    assert json.loads(by_hand_ema.json_path.read_text())["weights"] == "official params_ema"
    assert json.loads(by_hand_raw.json_path.read_text())["weights"] == "bare state dict"


def test_checkpoint_errors_are_clear(small_set5, tmp_path):
    ckpt = tmp_path / "ckpt.pt"
    _harness_checkpoint(ckpt, ema=False)
    kw = dict(prepared_dir=small_set5, metrics=("psnr",), progress=False)
    with pytest.raises(ValueError, match=r"trained at x4, not x2; pass --scale 4"):
        ev.evaluate(None, "Set5", 2, tmp_path / "a.csv", checkpoint=ckpt, **kw)
    with pytest.raises(ValueError, match=r"has no ema weights \(it holds: raw\)"):
        ev.evaluate(None, "Set5", None, tmp_path / "a.csv", checkpoint=ckpt, weights="ema", **kw)
    torch.save(build_model("swinir_light", scale=4, **TINY_SWINIR).state_dict(), tmp_path / "bare.pth")
    with pytest.raises(ValueError, match="--model is required unless --checkpoint is a harness checkpoint"):
        ev.evaluate(None, "Set5", 4, tmp_path / "a.csv", checkpoint=tmp_path / "bare.pth", **kw)
    torch.save({"optimizer": {"lr": 1.0}}, tmp_path / "odd.pth")
    with pytest.raises(ValueError, match="not a checkpoint"):
        ev.read_checkpoint(tmp_path / "odd.pth")
    with pytest.raises(RuntimeError, match=r"checkpoint \(bare state dict\) does not fit the model"):
        ev.evaluate("swinir_light", "Set5", 4, tmp_path / "a.csv", checkpoint=tmp_path / "bare.pth", **kw)
    assert not (tmp_path / "a.csv").exists()


def test_load_checkpoint_reads_every_layout_and_says_which_weights():
    model = build_model("swinir_light", scale=4, **TINY_SWINIR)
    torch.manual_seed(3)
    other = build_model("swinir_light", scale=4, **TINY_SWINIR).state_dict()
    own = {k: v.clone() for k, v in model.state_dict().items()}
    cases = [
        ({"model": other}, None, "raw", other),  # the harness layout before it had a format key
        ({"format": 1, "model": own, "ema": other}, None, "ema", other),
        ({"format": 1, "model": other, "ema": {f"module.{k}": v for k, v in own.items()} | {"n_averaged": torch.tensor(3)}},
         "ema", "ema", own),  # an AveragedModel's EMA state dict
        ({"params_ema": other, "params": own}, None, "official params_ema", other),
        ({"params_ema": other, "params": own}, "raw", "official params", own),
        ({"params": other}, None, "official params", other),
        ({"state_dict": own}, None, "state_dict", own),
        (other, None, "bare state dict", other),
    ]
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        for i, (obj, weights, label, expected) in enumerate(cases):
            torch.save(obj, f"{tmp}/{i}.pth")
            assert ev.load_checkpoint(model, f"{tmp}/{i}.pth", weights=weights) == label, i
            assert all(torch.equal(model.state_dict()[k], expected[k]) for k in expected), i


def test_stage2_evaluation_is_deterministic_and_seeded(small_set5, tmp_path):
    ckpt = tmp_path / "s2.pt"
    _harness_checkpoint(ckpt, model_name="diffrwkvir", overrides=TINY_DIFFRWKVIR, ema=False)
    kw = dict(checkpoint=ckpt, prepared_dir=small_set5, metrics=("psnr", "ssim"), progress=False)
    runs = []
    for i, seed in enumerate((0, 0, 1)):
        torch.manual_seed(100 + i)  # the global RNG differs between runs; only --seed may matter
        runs.append(ev.evaluate(None, "Set5", None, tmp_path / f"run{i}.csv", seed=seed, **kw))
    texts = [r.csv_path.read_text() for r in runs]
    assert texts[0] == texts[1]
    assert texts[0] != texts[2]  # the noise does reach the output
    assert [json.loads(r.json_path.read_text())["seed"] for r in runs] == [0, 0, 1]


def test_stage1_models_are_refused(small_set5, tmp_path):
    with pytest.raises(ValueError, match="'diffrwkvir_s1' is stage 1 of a two-stage model.*not a restoration model"):
        ev.evaluate("diffrwkvir_s1", "Set5", 4, tmp_path / "a.csv", prepared_dir=small_set5, progress=False)
    ckpt = tmp_path / "s1.pt"
    _harness_checkpoint(ckpt, model_name="diffrwkvir_s1", overrides=TINY_DIFFRWKVIR, ema=False)
    with pytest.raises(ValueError, match="stage 1 of a two-stage model"):
        ev.evaluate(None, "Set5", None, tmp_path / "a.csv", checkpoint=ckpt, prepared_dir=small_set5, progress=False)


class Nearest(nn.Module):
    """Nearest-neighbour upsampling: exactly equivariant under flips and transposes."""

    def __init__(self, scale):
        super().__init__()
        self.scale, self.calls = scale, 0

    def forward(self, x):
        self.calls += 1
        return F.interpolate(x, scale_factor=self.scale, mode="nearest")


def test_self_ensemble_of_an_equivariant_network_is_its_output_and_is_its_own_run(small_set5, tmp_path, monkeypatch):
    models = []

    def build(name, **kw):
        models.append(Nearest(kw["scale"]))
        return models[-1]

    monkeypatch.setattr(ev, "build_model", build)
    kw = dict(prepared_dir=small_set5, metrics=("psnr", "ssim"), progress=False)
    original = ev.to_uint8

    def failing(out, *, gray):  # the plain run dies on its third image, leaving a partial CSV
        if models[-1].calls == 3:
            raise KeyboardInterrupt
        return original(out, gray=gray)

    monkeypatch.setattr(ev, "to_uint8", failing)
    with pytest.raises(KeyboardInterrupt):
        ev.evaluate("bicubic", "Set5", 4, tmp_path / "ens.csv", **kw)
    monkeypatch.setattr(ev, "to_uint8", original)
    ens = ev.evaluate("bicubic", "Set5", 4, tmp_path / "ens.csv", self_ensemble=True, **kw)
    assert models[-1].calls == 5 * 8  # nothing of the plain run was reused
    plain = ev.evaluate("bicubic", "Set5", 4, tmp_path / "plain.csv", **kw)
    assert _rows(ens.csv_path) == _rows(plain.csv_path)
    assert json.loads(ens.json_path.read_text())["self_ensemble"] is True


def test_run_key_names_weights_seed_self_ensemble_and_procedure(small_set5, tmp_path, monkeypatch):
    keys = []
    original = ev._resume
    monkeypatch.setattr(ev, "_resume", lambda paths, run_key, columns: keys.append(run_key) or original(paths, run_key, columns))
    ckpt = tmp_path / "ckpt.pt"
    _harness_checkpoint(ckpt)
    ev.evaluate(None, "Set5", None, tmp_path / "a.csv", checkpoint=ckpt, weights="raw", self_ensemble=True,
                procedure="official", prepared_dir=small_set5, metrics=("psnr",), progress=False)
    key = keys[-1]
    assert (key["weights"], key["seed"], key["self_ensemble"], key["procedure"]) == ("raw", None, True, "official")
    assert key["model"] == "swinir_light" and len(key["checkpoint_sha256"]) == 64


def test_saved_images_are_the_uint8_outputs_that_were_measured(small_set5, tmp_path, monkeypatch):
    from repro.data.io import read_image
    from repro.metrics import get_protocol

    outputs = []
    original = ev.to_uint8

    def recording(out, *, gray):
        outputs.append(original(out, gray=gray))
        return outputs[-1]

    monkeypatch.setattr(ev, "to_uint8", recording)
    ckpt = tmp_path / "ckpt.pt"
    _harness_checkpoint(ckpt)
    result = ev.evaluate(None, "Set5", None, tmp_path / "a.csv", checkpoint=ckpt, save_images=tmp_path / "png",
                         prepared_dir=small_set5, metrics=("psnr",), progress=False)
    names = [r["image"] for r in _rows(result.csv_path)][:-1]
    assert sorted(p.name for p in (tmp_path / "png").iterdir()) == sorted(f"{n}.png" for n in names)
    protocol = get_protocol("sr", scale=4, metrics=("psnr",))
    for name, out, row in zip(names, outputs, _rows(result.csv_path)):
        saved = read_image(tmp_path / "png" / f"{name}.png")
        assert saved.dtype == np.uint8 and np.array_equal(saved, out)
        hr = read_image(small_set5 / "HR" / f"{name}.png")
        assert float(row["psnr"]) == float(protocol.compute(saved, hr)["psnr"])
    assert json.loads(result.json_path.read_text())["save_images"] == str(tmp_path / "png")


def test_official_procedure_splits_mambair_inputs_and_leaves_swinir_alone(small_set5, tmp_path, monkeypatch):
    from repro import test_procedures as tp

    kw = dict(prepared_dir=small_set5, metrics=("psnr",), progress=False)
    swin = []
    for p in ("harness", "official"):
        torch.manual_seed(0)  # the same random weights in both runs
        swin.append(ev.evaluate("swinir_light", "Set5", 4, tmp_path / f"swin_{p}.csv", overrides=TINY_SWINIR, procedure=p,
                                **kw))
    assert _rows(swin[0].csv_path) == _rows(swin[1].csv_path)
    assert "== harness" in json.loads(swin[1].json_path.read_text())["procedure_note"]

    tiny = dict(embed_dim=12, depths=(1,), num_heads=(2,), d_state=4, window_size=4, inner_rank=4, num_tokens=8)
    mamba = {}
    for p in ("harness", "official"):
        torch.manual_seed(0)
        mamba[p] = ev.evaluate("mambairv2_light", "Set5", 4, tmp_path / f"m_{p}.csv", overrides=tiny, procedure=p, **kw)
    assert _rows(mamba["harness"].csv_path) == _rows(mamba["official"].csv_path)  # 12x10 LR: below 200, one piece
    monkeypatch.setattr(tp, "MAMBAIR_SPLIT_THRESHOLD", 5)  # 12x10 LR -> 3x3 pieces
    torch.manual_seed(0)
    split = ev.evaluate("mambairv2_light", "Set5", 4, tmp_path / "m_split.csv", overrides=tiny, procedure="official", **kw)
    assert _rows(split.csv_path) != _rows(mamba["harness"].csv_path)
    meta = json.loads(split.json_path.read_text())
    assert meta["procedure"] == "official" and "MambaIRv2Model.test" in meta["procedure_note"]

    with pytest.raises(ValueError, match="no official test procedure is recorded for the 'bicubic' family"):
        ev.evaluate("bicubic", "Set5", 4, tmp_path / "b.csv", procedure="official", **kw)
    with pytest.raises(ValueError, match="--tile cannot be combined with --procedure official"):
        ev.evaluate("swinir_light", "Set5", 4, tmp_path / "b.csv", overrides=TINY_SWINIR, procedure="official", tile=8, **kw)


def test_cli_takes_the_model_from_a_harness_checkpoint(small_set5, tmp_path, capsys):
    from repro.cli import main

    ckpt = tmp_path / "ckpt.pt"
    _harness_checkpoint(ckpt)
    main(["evaluate", "--checkpoint", str(ckpt), "--dataset", "Set5", "--prepared", str(small_set5), "--metrics", "psnr",
          "--out", str(tmp_path / "out"), "--weights", "raw", "--self-ensemble", "--seed", "3", "--save-images",
          str(tmp_path / "png"), "--quiet"])
    assert "swinir_light Set5 x4: PSNR" in capsys.readouterr().out
    meta = json.loads((tmp_path / "out" / "Set5_x4.json").read_text())
    assert (meta["weights"], meta["self_ensemble"], meta["step"], meta["seed"]) == ("raw", True, 1234, None)
    assert len(list((tmp_path / "png").glob("*.png"))) == 5
    with pytest.raises(SystemExit):
        main(["evaluate", "--checkpoint", str(ckpt), "--dataset", "Set5", "--scale", "3", "--prepared", str(small_set5),
              "--out", str(tmp_path / "out")])
    assert "trained at x4, not x3" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["evaluate", "--model", "bicubic", "--dataset", "Set5", "--weights", "best", "--out", str(tmp_path)])
    assert "invalid choice: 'best'" in capsys.readouterr().err
