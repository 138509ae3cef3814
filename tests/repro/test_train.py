"""The training engine: configs, exact resume (in process, after SIGKILL, after SIGTERM), refusals, non-finite steps,
two-stage training, DDP against one process, and evaluation of the checkpoints through the CLI.

The oracle of resume is the uninterrupted run: its weights, EMA and optimizer state must equal, bit for bit, those
of a run stopped and resumed on the way.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from repro.cli import main
from repro.train import checkpoint
from repro.train.config import ConfigError, apply_overrides, config_hash, load_profiles, resolve
from repro.train.loop import TrainingError, train

REPO = Path(__file__).resolve().parents[2]
PROFILES = [REPO / "config" / "config.yaml", REPO / "config" / "smoke.yaml"]

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def lr_cache(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("lr_cache")


@pytest.fixture
def run_config(data_mirror, lr_cache):
    """``run_config(model, *overrides, stage1=None)``: the smoke profile's run config for ``model`` at x4."""

    def make(model: str, *sets: str, stage1: Path | None = None) -> dict:
        cfg = resolve(load_profiles(PROFILES), model=model, scale=4, stage1=None if stage1 is None else str(stage1))
        return apply_overrides(cfg, [f"data_mirror={data_mirror}", f"train.cache_dir={lr_cache}", *sets])

    return make


def equal_states(a: dict, b: dict) -> bool:
    """Bitwise equality of two (nested) state dicts."""
    if isinstance(a, torch.Tensor):
        return isinstance(b, torch.Tensor) and a.dtype == b.dtype and torch.equal(a, b)
    if isinstance(a, dict):
        return isinstance(b, dict) and a.keys() == b.keys() and all(equal_states(a[k], b[k]) for k in a)
    if isinstance(a, (list, tuple)):
        return len(a) == len(b) and all(equal_states(x, y) for x, y in zip(a, b))
    return a == b


def assert_same_run(a: Path, b: Path) -> None:
    ca, cb = checkpoint.load(a), checkpoint.load(b)
    assert ca["step"] == cb["step"]
    for key in ("model", "ema", "optimizer", "scheduler"):
        assert equal_states(ca[key], cb[key]), f"{key} differs between {a} and {b}"


def test_config_overrides_and_errors(run_config, tmp_path):
    cfg = run_config("srcnn", "train.lr=2e-4", "model_args.n1=8")
    assert cfg["train"]["lr"] == 2e-4 and cfg["model_args"]["n1"] == 8 and cfg["train"]["loss"] == "l1_y"
    with pytest.raises(ConfigError, match=r"unknown key; valid keys: .*train\.lr"):
        apply_overrides(cfg, ["train.lrr=1"])
    with pytest.raises(ConfigError, match="key=value"):
        apply_overrides(cfg, ["train.lr"])
    bad = tmp_path / "bad.yaml"
    bad.write_text("train: [unclosed")
    with pytest.raises(ConfigError, match="bad.yaml: not valid YAML"):
        load_profiles([bad])
    # where the data lives or how often a run validates does not make it another run
    assert config_hash(cfg) == config_hash(apply_overrides(cfg, ["train.workers=3", "data_dir=elsewhere"]))
    assert config_hash(cfg) != config_hash(apply_overrides(cfg, ["train.seed=1"]))


@pytest.mark.parametrize("model", ["srcnn", "swinir_light", "diffrwkvir_s1"])
def test_stop_and_resume_equals_one_run(model, run_config, tmp_path):
    cfg = run_config(model)
    train(cfg, tmp_path / "once", progress=False)
    train(cfg, tmp_path / "twice", stop_at=2, progress=False)
    assert not (tmp_path / "twice" / "final.pt").exists()
    train(cfg, tmp_path / "twice", resume="auto", progress=False)
    assert_same_run(tmp_path / "once" / "checkpoints" / "last.pt", tmp_path / "twice" / "checkpoints" / "last.pt")
    final = checkpoint.load(tmp_path / "twice" / "final.pt")
    assert final["step"] == cfg["train"]["steps"] and final["ema"] is not None
    assert not equal_states(final["ema"], final["model"])  # kept apart, not one copied over the other
    def logged(run: str) -> list[list[str]]:  # metrics.csv rows without the wall time
        rows = [r.split(",") for r in (tmp_path / run / "metrics.csv").read_text().splitlines()]
        return [r[:4] + r[5:] for r in rows]

    assert logged("twice") == logged("once")
    for name in ("config.yaml", "env.json", "best.pt"):
        assert (tmp_path / "twice" / name).is_file()
    if final["model_name"].endswith("_s1"):
        return  # stage 1 needs the ground truth; stage 2 is evaluated in the two-stage test below
    # the checkpoint evaluates through the CLI, the network rebuilt from what the checkpoint records
    out = tmp_path / "eval" / "Set5_x4.csv"
    main(["evaluate", "--checkpoint", str(tmp_path / "twice" / "final.pt"), "--dataset", "Set5", "--metrics", "psnr,ssim",
          "--out-csv", str(out), "--data-mirror", cfg["data_mirror"], "--quiet"])
    assert out.read_text().splitlines()[-1].startswith("mean,")
    assert json.loads(out.with_suffix(".json").read_text())["weights"] == "ema"


def test_resume_refuses_another_config_and_names_the_keys(run_config, tmp_path, capsys):
    cfg = run_config("srcnn")
    train(cfg, tmp_path / "run", stop_at=2, progress=False)
    other = apply_overrides(cfg, ["train.lr=5e-4", "train.seed=3"])
    with pytest.raises(TrainingError, match=r"differing keys: train\.lr, train\.seed"):
        train(other, tmp_path / "run", resume="auto", progress=False)
    with pytest.raises(TrainingError, match="already holds checkpoints"):
        train(cfg, tmp_path / "run", progress=False)
    train(other, tmp_path / "run", resume="auto", force=True, progress=False)
    assert "--force" in capsys.readouterr().err
    train(cfg, tmp_path / "fresh", resume="auto", stop_at=1, progress=False)
    assert "starting fresh" in capsys.readouterr().out


def test_non_finite_steps_are_skipped_then_the_run_stops(run_config, tmp_path, monkeypatch):
    from repro.train import objective

    cfg = apply_overrides(run_config("srcnn"), ["train.max_nonfinite=2", "train.steps=6", "train.ema=null"])
    calls = {"n": 0}
    original = objective.Objective.forward

    def poisoned(self, lq, gt, prior_s1=None):
        calls["n"] += 1
        terms = original(self, lq, gt, prior_s1)
        return {k: v * float("nan") for k, v in terms.items()} if calls["n"] in (2, 4, 5) else terms

    monkeypatch.setattr(objective.Objective, "forward", poisoned)
    with pytest.raises(TrainingError, match="2 steps in a row had a non-finite loss"):
        train(cfg, tmp_path / "run", progress=False)
    log = (tmp_path / "run" / "metrics.csv").read_text().splitlines()[1:]
    skipped = [int(r.split(",")[0]) for r in log if r.split(",")[5] == "1"]
    assert skipped == [2, 4, 5]
    last = checkpoint.load(tmp_path / "run" / "checkpoints" / "last.pt")
    assert last["step"] == 5 and all(torch.isfinite(v).all() for v in last["model"].values())


def _cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "repro", "train", *args]


def _wait_for(path: Path, proc: subprocess.Popen, timeout: float = 120.0) -> None:
    end = time.monotonic() + timeout
    while not path.exists():
        if proc.poll() is not None:
            raise AssertionError(f"training exited with {proc.returncode} before {path} appeared:\n"
                                 f"{proc.stderr.read().decode()}")
        if time.monotonic() > end:
            proc.kill()
            raise AssertionError(f"{path} did not appear within {timeout} s")
        time.sleep(0.02)


@pytest.mark.slow
def test_sigkill_mid_run_then_resume_auto_reaches_the_same_weights(data_mirror, tmp_path):
    sets = [f"data_mirror={data_mirror}", f"train.cache_dir={tmp_path / 'lr'}", "train.steps=300", "train.ckpt_every=2", "train.val_every=null"]
    args = ["--model", "srcnn", "--config", str(PROFILES[1]), "--quiet", *[a for s in sets for a in ("--set", s)]]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen(_cli(*args, "--out", str(tmp_path / "killed")), cwd=REPO, env=env, stderr=subprocess.PIPE,
                            stdout=subprocess.DEVNULL)
    _wait_for(tmp_path / "killed" / "checkpoints" / "step_00000004.pt", proc)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert not (tmp_path / "killed" / "final.pt").exists(), "the run finished before it could be killed"
    subprocess.run(_cli(*args, "--out", str(tmp_path / "killed"), "--resume", "auto"), cwd=REPO, env=env, check=True,
                   capture_output=True)
    subprocess.run(_cli(*args, "--out", str(tmp_path / "once")), cwd=REPO, env=env, check=True, capture_output=True)
    assert_same_run(tmp_path / "once" / "checkpoints" / "last.pt", tmp_path / "killed" / "checkpoints" / "last.pt")


@pytest.mark.slow
def test_sigterm_writes_a_checkpoint_before_exiting(data_mirror, tmp_path):
    sets = [f"data_mirror={data_mirror}", f"train.cache_dir={tmp_path / 'lr'}", "train.steps=100000", "train.ckpt_every=1000", "train.val_every=null"]
    args = ["--model", "srcnn", "--config", str(PROFILES[1]), "--quiet", *[a for s in sets for a in ("--set", s)]]
    proc = subprocess.Popen(_cli(*args, "--out", str(tmp_path / "run")), cwd=REPO, stderr=subprocess.PIPE,
                            stdout=subprocess.PIPE, env={**os.environ, "OMP_NUM_THREADS": "1"})
    _wait_for(tmp_path / "run" / "metrics.csv", proc)
    time.sleep(1.0)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 128 + signal.SIGTERM, err.decode()
    last = checkpoint.load(tmp_path / "run" / "checkpoints" / "last.pt")
    assert 0 < last["step"] < 1000 and "saved" in err.decode()


@pytest.mark.slow
def test_ddp_two_processes_equal_one_process_with_the_same_global_batch(data_mirror, tmp_path):
    sets = [f"data_mirror={data_mirror}", f"train.cache_dir={tmp_path / 'lr'}", "train.steps=3", "train.batch=4", "train.val_every=null", "train.ema=null"]
    args = ["--model", "srcnn", "--config", str(PROFILES[1]), "--quiet", *[a for s in sets for a in ("--set", s)]]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    torchrun = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2", "-m", "repro",
                "train"]
    subprocess.run(torchrun + args + ["--out", str(tmp_path / "ddp")], cwd=REPO, env=env, check=True,
                   capture_output=True)
    subprocess.run(_cli(*args, "--out", str(tmp_path / "one")), cwd=REPO, env=env, check=True, capture_output=True)
    ddp, one = checkpoint.load(tmp_path / "ddp" / "final.pt"), checkpoint.load(tmp_path / "one" / "final.pt")
    for key, value in one["model"].items():
        torch.testing.assert_close(ddp["model"][key], value, rtol=1e-5, atol=1e-6, msg=key)
    assert len(checkpoint.load(tmp_path / "ddp" / "checkpoints" / "last.pt")["rng"]) == 2


@pytest.mark.slow
def test_two_stage_diffrwkvir_trains_resumes_and_evaluates_through_the_cli(run_config, data_mirror, tmp_path):
    s1 = tmp_path / "s1"
    train(run_config("diffrwkvir_s1"), s1, progress=False)
    cfg = run_config("diffrwkvir", stage1=s1)
    train(cfg, tmp_path / "once", progress=False)
    train(cfg, tmp_path / "twice", stop_at=3, progress=False)
    train(cfg, tmp_path / "twice", resume="auto", progress=False)
    assert_same_run(tmp_path / "once" / "checkpoints" / "last.pt", tmp_path / "twice" / "checkpoints" / "last.pt")
    s1_net = {k.removeprefix("net."): v for k, v in checkpoint.load(s1 / "final.pt")["ema"].items() if k.startswith("net.")}
    assert s1_net.keys() <= {k.removeprefix("net.") for k in checkpoint.load(tmp_path / "once" / "final.pt")["model"]}
    with pytest.raises(TrainingError, match="stage-2 model: name the finished stage-1 run"):
        train(run_config("diffrwkvir"), tmp_path / "no_s1", progress=False)
    out = tmp_path / "eval" / "Set5_x4.csv"
    done = subprocess.run([sys.executable, "-m", "repro", "evaluate", "--model", "diffrwkvir", "--dataset", "Set5",
                           "--checkpoint", str(tmp_path / "once" / "final.pt"), "--out-csv", str(out), "--metrics",
                           "psnr,ssim", "--data-mirror", str(data_mirror), "--quiet"], cwd=REPO, capture_output=True,
                          text=True, check=False)
    assert done.returncode == 0, done.stderr
    assert out.read_text().splitlines()[-1].startswith("mean,")


def test_init_from_loads_the_tensors_that_match_and_keeps_the_upsampler(run_config, tmp_path, capsys):
    """x4 fine-tuned from x2, as the official recipes do: the body comes from the x2 run, the x4 tail does not."""
    from repro import build_model
    from repro.train.distributed import World
    from repro.train.loop import _init_from

    x2 = apply_overrides(run_config("swinir_light"), ["scale=2", "train.steps=2"])
    train(x2, tmp_path / "x2", progress=False)
    source = checkpoint.load(tmp_path / "x2" / "final.pt")["ema"]
    model = build_model("swinir_light", scale=4, **run_config("swinir_light")["model_args"])
    fresh = {k: v.clone() for k, v in model.state_dict().items()}
    _init_from(model, str(tmp_path / "x2" / "final.pt"), World())
    for key, value in model.state_dict().items():
        expected = source[key] if key in source and source[key].shape == value.shape else fresh[key]
        assert torch.equal(value, expected), key
    assert any(k.startswith("upsample") and source[k].shape != fresh[k].shape for k in fresh)
    assert "kept at their initialisation" in capsys.readouterr().out
