"""The Snakemake pipeline: its config validates, its DAG builds, and the smoke profile runs end to end."""

import csv
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import yaml
from PIL import Image

REPO = Path(__file__).resolve().parents[1]
def _job_counts(out: str) -> dict[str, int]:
    """The "Job stats" table of a Snakemake dry run: rule -> job count."""
    counts, in_table = {}, False
    for line in out.splitlines():
        if line.startswith("job "):
            in_table = True
        elif in_table and line.strip() and not line.startswith("-"):
            name, _, count = line.rpartition(" ")
            if name.strip() == "total":
                break
            counts[name.strip()] = int(count)
    return counts


def _merged(profile: str) -> dict:
    """config/config.yaml with a profile over it, as the Snakefile loads them (nested mappings merged)."""
    def merge(base, update):
        for key, value in update.items():
            base[key] = merge(base.get(key) or {}, value) if isinstance(value, dict) and isinstance(base.get(key), dict) \
                else value
        return base
    cfg = yaml.safe_load((REPO / "config" / "config.yaml").read_text())
    return merge(cfg, yaml.safe_load((REPO / "config" / profile).read_text())) if profile != "config.yaml" else cfg


@pytest.mark.parametrize("profile", ["config.yaml", "smoke.yaml"])
def test_dry_run_plans_every_row_trained_then_evaluated(snakemake, data_mirror, tmp_path, profile):
    cfg = _merged(profile)
    res = snakemake(["-n", "--cores", "2", "--configfile", str(REPO / "config" / profile),
                "--config", f"data_mirror={data_mirror}", "--", "tables/table3.tex", "tables/table5.tex"], cwd=tmp_path)
    assert res.returncode == 0, res.stderr[-3000:]
    out = res.stdout + res.stderr
    present = [d for d in cfg["table3"]["datasets"] if (data_mirror / d / "HR").is_dir()]
    trained = [m for m in cfg["table3"]["models"] if m != "bicubic"]
    two_stage = [m for m in trained if m in ("diffir", "diffrwkvir")]
    groups = cfg["table5"]["groups"]
    ablated = [(c, v) for c, g in groups.items() if (data_mirror / g["dataset"] / "HR").is_dir()
               for v in g["variants"] if v != g["ours"]]
    table5_sets = {g["dataset"] for g in groups.values() if (data_mirror / g["dataset"] / "HR").is_dir()}
    counts = _job_counts(out)
    assert counts == {
        "prepare_sr": len(set(present) | table5_sets),
        "train": len(trained) + len(two_stage),         # a stage-2 row trains its stage 1 first
        "train_ablation": 2 * len(ablated),             # DiffRWKVIR's two stages per variant
        "evaluate_sr": len(set(present) | table5_sets),  # Bicubic: Table 3, and Table 5's SAM check
        "evaluate_trained": len(trained) * len(present) + len(table5_sets - set(present)),
        "evaluate_ablation": len(ablated),
        "table3": 1, "table5": 1}, out[-3000:]
    if "Manga109" in cfg["table3"]["datasets"] and "Manga109" not in present:
        assert "skipping Manga109" in out  # a set that is not there is named, not silently dropped


def test_invalid_config_is_rejected_with_the_key(snakemake, data_mirror, tmp_path):
    bad = yaml.safe_load((REPO / "config" / "smoke.yaml").read_text())
    bad["table3"]["datasets"] = ["Set6"]
    (tmp_path / "bad.yaml").write_text(yaml.safe_dump(bad))
    res = snakemake(["-n", "--cores", "1", "--configfile", str(tmp_path / "bad.yaml"), "--", "tables/table3.tex"], cwd=tmp_path)
    assert res.returncode != 0 and "'Set6' is not one of" in res.stdout + res.stderr


def test_jobs_get_their_threads_resources_log_and_named_outputs(snakemake, data_mirror, tmp_path):
    override = {"resources": {"evaluate": {"threads": 2, "mem_mb": 1234, "runtime": 7}}}
    (tmp_path / "override.yaml").write_text(yaml.safe_dump(override))
    res = snakemake(["-n", "-p", "--cores", "1", "--configfile", str(REPO / "config" / "smoke.yaml"), str(tmp_path / "override.yaml"),
                "--config", f"data_mirror={data_mirror}", "--", "tables/table3.tex"], cwd=tmp_path)
    assert res.returncode == 0, res.stderr[-3000:]
    out = res.stdout + res.stderr
    evaluate = next(line for line in out.splitlines() if " -m repro evaluate --model bicubic " in line)
    prepare = next(line for line in out.splitlines() if " -m repro prepare " in line)
    # the rule's 2 threads, capped by --cores 1, reach torch; its outputs are named by the rule, not derived by the CLI
    assert "--threads 1" in evaluate and "--threads 1" in prepare
    assert "--out-csv results/eval/bicubic/Set5_x4.csv --out-json results/eval/bicubic/Set5_x4.json" in evaluate
    prepare_job = yaml.safe_load((REPO / "config" / "config.yaml").read_text())["resources"]["prepare"]
    assert "runtime=7, gpu=0, mem_mb=1234" in out  # the override
    assert f"runtime={prepare_job['runtime']}, mem_mb={prepare_job['mem_mb']}" in out  # config.yaml's, not repeated in smoke
    assert out.count("\nrule ") == out.count("    log: logs/") > 3  # every job has its log


def _mirror_with_a_corrupted_set5(data_mirror: Path, root: Path) -> Path:
    shutil.copytree(data_mirror / "Set5" / "HR", root / "Set5" / "HR")
    bird = root / "Set5" / "HR" / "bird.png"
    img = np.asarray(Image.open(bird)).copy()
    img[0, 0, 0] ^= 1
    Image.fromarray(img).save(bird)
    return root


def test_dag_plans_a_corrupted_set_and_its_prepare_job_names_the_file(snakemake, data_mirror, tmp_path):
    # The DAG looks only for the files (no hashing at every invocation); the prepare job checks the checksums.
    mirror = _mirror_with_a_corrupted_set5(data_mirror, tmp_path / "mirror")
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    # The target is Set5's Bicubic evaluation: the mirror holds Set5 alone, so a training job (T91) must not run first.
    res = snakemake(["--cores", "1", "--configfile", str(REPO / "config" / "smoke.yaml"), "--config", f"data_mirror={mirror}",
                "--", "results/eval/bicubic/Set5_x4.csv"], cwd=run_dir)
    out = res.stdout + res.stderr
    assert res.returncode != 0 and "skipping Set5" not in out and "Error in rule prepare_sr" in out, out[-3000:]
    log = (run_dir / "logs" / "prepare" / "Set5_x4.log").read_text()
    assert f"{mirror / 'Set5' / 'HR' / 'bird.png'}: checksum mismatch" in log
    assert not (run_dir / "results" / "eval").exists()


@pytest.mark.slow
def test_smoke_profile_end_to_end(snakemake, data_mirror, tmp_path):
    """All of Tables 3, 4 and 5, the figures and the report on the smoke profile; then a changed model config
    plans only that model's jobs."""
    config = ["--configfile", str(REPO / "config" / "smoke.yaml"),
              "--config", f"data_mirror={data_mirror}", f"metric_weights={data_mirror / 'metrics'}"]
    res = snakemake(["--cores", "2", *config], cwd=tmp_path, timeout=1500)
    assert res.returncode == 0, res.stderr[-3000:]
    cfg = _merged("smoke.yaml")
    with open(tmp_path / "tables" / "table3.csv") as fh:
        cells = {(r["model"], r["dataset"], r["metric"]): r for r in csv.DictReader(fh)}
    bicubic_psnr = cells[("bicubic", "Set5", "psnr")]
    assert bicubic_psnr["status"] in ("match", "within_noise"), bicubic_psnr
    assert abs(float(bicubic_psnr["reproduced"]) - 28.42) < 0.03  # EDSR's Bicubic Set5 x4 figure
    assert cells[("bicubic", "Set5", "lpips")]["status"] == "missing"  # no AlexNet weights offline: said, not guessed
    for model in cfg["table3"]["models"]:  # every row trained (4 steps) and evaluated, beside its published value
        psnr = cells[(model, "Set5", "psnr")]
        assert psnr["reproduced"] and psnr["published"] and psnr["status"] != "missing", psnr
    assert cells[("swinir", "BSD100", "psnr")]["reason"] == "no result file"  # not configured in smoke
    tex = (tmp_path / "tables" / "table3.tex").read_text()
    assert "Profile: smoke" in tex and "Workflow host:" in tex and "\\textbf{" in tex
    with open(tmp_path / "tables" / "table5.csv") as fh:
        rows = {(r["component"], r["variant"]) for r in csv.DictReader(fh) if r["reproduced"]}
    wanted = {(c, v) for c, g in cfg["table5"]["groups"].items() for v in g["variants"]}
    assert rows == wanted
    for figure in ("fig10_grid.png", "psnr_vs_params.png", "psnr_vs_time.png", "fig9_Places365.png"):
        assert (tmp_path / "tables" / "figures" / figure).stat().st_size > 1000
    with open(tmp_path / "tables" / "table2.csv") as fh:
        table2 = {(r["model"], r["dataset"], r["metric"]): r for r in csv.DictReader(fh)}
    for model in ("diffir", "diffrwkvir"):  # trained (4 steps per stage) and evaluated on every block
        for dataset in ("Places365", "CelebA-HQ", "Mural"):
            assert table2[(model, dataset, "psnr")]["reproduced"], (model, dataset)
    assert "FFHQ" in table2[("diffrwkvir", "Mural", "psnr")]["note"]  # the stand-in says what it is
    assert table2[("lama", "Places365", "psnr")]["reason"].startswith("published only")
    assert (tmp_path / "results" / "benchmarks" / "train" / "swinir" / "x4" / "seed0.tsv").exists()
    meta = json.loads((tmp_path / "results" / "eval" / "swinir" / "seed0" / "Set5_x4.json").read_text())
    assert meta["train_seed"] == 0 and meta["n_params"] > 0 and meta["forward_seconds"]["n_timed"] == 5
    assert meta["threads"] == min(2, cfg["resources"]["evaluate"]["threads"])  # the rule's threads reached torch

    report = snakemake(["--report", "report.html", *config], cwd=tmp_path, timeout=600)
    assert report.returncode == 0, report.stderr[-3000:]
    assert (tmp_path / "report.html").stat().st_size > 10_000

    # one model's settings change: only its training, its evaluation and what reads them are planned again
    (tmp_path / "swinir.yaml").write_text(yaml.safe_dump({"models": {"swinir": {"model": {"embed_dim": 8}}}}))
    res = snakemake(["-n", "--cores", "2", *config[:2], str(tmp_path / "swinir.yaml"), *config[2:],
                     "--", "tables/table3.tex", "tables/table5.tex"], cwd=tmp_path)
    assert res.returncode == 0, res.stderr[-3000:]
    assert _job_counts(res.stdout + res.stderr) == {"train": 1, "evaluate_trained": 1, "table3": 1}


@pytest.mark.slow
def test_an_interrupted_training_job_resumes_from_its_last_checkpoint(snakemake, data_mirror, tmp_path):
    """Ctrl-C during a training job, then the same command: the job continues from its checkpoint, not from 0."""
    (tmp_path / "long.yaml").write_text(yaml.safe_dump({"train": {"steps": 1000, "ckpt_every": 5, "val_every": None},
                                                             "models": {"srcnn": {"model": {"n1": 64, "n2": 32}}}}))
    args = [sys.executable, "-m", "snakemake", "-s", str(REPO / "Snakefile"), "--cores", "1",
            "--configfile", str(REPO / "config" / "smoke.yaml"), str(tmp_path / "long.yaml"),
            "--config", f"data_mirror={data_mirror}", "--", "results/train/srcnn/x4/seed0/final.pt"]
    run = tmp_path / "results" / "train" / "srcnn" / "x4" / "seed0"
    proc = subprocess.Popen(args, cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)
    deadline = time.monotonic() + 300
    while not list((run / "checkpoints").glob("step_*.pt")) and time.monotonic() < deadline:
        time.sleep(0.5)
    os.killpg(proc.pid, signal.SIGINT)  # what Ctrl-C sends to the foreground process group
    proc.wait(timeout=120)
    assert not (run / "final.pt").exists()
    stopped_at = max(int(p.stem.split("_")[1]) for p in (run / "checkpoints").glob("step_*.pt"))
    assert 0 < stopped_at < 1000

    res = subprocess.run(args, check=False, cwd=tmp_path, capture_output=True, text=True, timeout=900)
    assert res.returncode == 0, res.stderr[-3000:]
    log = (tmp_path / "logs" / "train" / "srcnn" / "x4" / "seed0.log").read_text()
    resumed_at = int(re.search(r"resuming at step (\d+) of 1000", log).group(1))
    assert resumed_at >= stopped_at and (run / "final.pt").exists()


@pytest.mark.parametrize("profile", ["config.yaml", "smoke.yaml", "paper.yaml"])
def test_dry_run_plans_table2_with_fixed_masks_and_two_stages(snakemake, data_mirror, tmp_path, profile):
    """Table 2: each set prepared once, each inpainting row's two stages per seed, one evaluation per set and seed;
    FFHQ fills the Mural block, said on the command line."""
    cfg = _merged(profile)
    res = snakemake(["-n", "-p", "--cores", "2", "--configfile", str(REPO / "config" / profile),
                     "--config", f"data_mirror={data_mirror}", "--", "tables/table2.tex"], cwd=tmp_path)
    assert res.returncode == 0, res.stderr[-3000:]
    out = res.stdout + res.stderr
    t2, n_seeds = cfg["table2"], len(cfg["seeds"])
    assert _job_counts(out) == {"prepare_inpaint": len(t2["datasets"]), "train_inpaint": 2 * len(t2["models"]) * n_seeds,
                                "evaluate_inpaint": len(t2["models"]) * len(t2["datasets"]) * n_seeds, "table2": 1}, out[-3000:]
    assert "--dataset-as FFHQ Mural" in out and "--eval-as diffrwkvir results/eval/diffrwkvir_inpaint/seed0/FFHQ_inpaint.csv" in out
    train = [line for line in out.splitlines() if " -m repro train --model diffrwkvir_inpaint " in line]
    assert len(train) == n_seeds and all("--stage1 results/train/diffrwkvir_inpaint_s1/inpaint/seed" in line for line in train)
    assert '"train_inpaint":' in train[0]  # the inpainting recipe travels with the job (a change reruns it)


def test_paper_profile_on_slurm_plans_every_job_and_torchrun_for_several_gpus(snakemake, data_mirror, tmp_path):
    """A dry run with the SLURM executor profile and the paper's settings: every row and ablation per seed, each job
    with its partition, GPU and runtime; a training job given 4 GPUs runs torchrun with 4 processes."""
    cfg = _merged("paper.yaml")
    (tmp_path / "gpus.yaml").write_text(yaml.safe_dump({"resources": {"train": {**cfg["resources"]["train"], "gpu": 4}}}))
    res = snakemake(["-n", "--workflow-profile", str(REPO / "profiles" / "slurm"),
                     "--configfile", str(REPO / "config" / "paper.yaml"), str(tmp_path / "gpus.yaml"),
                     "--config", f"data_mirror={data_mirror}", "--", "tables/table3.tex", "tables/table5.tex"], cwd=tmp_path)
    assert res.returncode == 0, res.stderr[-3000:]
    out = res.stdout + res.stderr
    counts = _job_counts(out)
    n_seeds = len(cfg["seeds"])
    trained = [m for m in cfg["table3"]["models"] if m != "bicubic"]
    assert counts["train"] == n_seeds * (len(trained) + 2)
    assert counts["evaluate_trained"] >= n_seeds * len(trained) * 4  # Set5, Set14, BSD100, Urban100 at least
    train = [line for line in out.splitlines() if " -m repro train " in line]
    assert len(train) == counts["train"] + counts["train_ablation"] and all("-m torch.distributed.run --standalone --nproc-per-node 4 -m repro train" in line
                         for line in train)
    assert "--device cuda" in train[0] and "--set train.seed=2" in out
    assert "slurm_partition=gpu" in out and "slurm_partition=cpu" in out and "gpu=4" in out
    # the paper's sizes: no CPU-profile override reaches a training job
    assert '"swinir":{"model":null}' in out and '"embed_dim":32' not in out


def test_official_weights_add_an_evaluation_per_set_and_a_row(snakemake, data_mirror, tmp_path):
    """A config naming an official checkpoint plans its evaluation on every set with the authors' test procedure,
    and Table 3 gets it as an official-weights row; a named file that is not there is an error naming it."""
    weights = tmp_path / "001_classicalSR_DF2K_s64w8_SwinIR-M_x4.pth"
    weights.write_bytes(b"")
    (tmp_path / "official.yaml").write_text(yaml.safe_dump({"official_weights": {"swinir": str(weights)}}))
    args = ["-n", "-p", "--cores", "2", "--configfile", str(REPO / "config" / "smoke.yaml"), str(tmp_path / "official.yaml"),
            "--config", f"data_mirror={data_mirror}", "--", "tables/table3.tex"]
    res = snakemake(args, cwd=tmp_path)
    assert res.returncode == 0, res.stderr[-3000:]
    out = res.stdout + res.stderr
    assert _job_counts(out)["evaluate_official"] == 1  # smoke: Set5 only
    evaluate = next(line for line in out.splitlines() if f"--checkpoint {weights}" in line)
    assert "--model swinir" in evaluate and "--procedure official" in evaluate
    assert "--official swinir results/eval/swinir/official/Set5_x4.csv" in out
    weights.unlink()
    res = snakemake(args, cwd=tmp_path)
    assert res.returncode != 0 and f"official_weights.swinir: {weights} does not exist" in res.stdout + res.stderr
