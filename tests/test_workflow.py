"""The Snakemake pipeline: its config validates, its DAG builds, and the smoke profile runs end to end."""

import csv
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import yaml
from PIL import Image

REPO = Path(__file__).resolve().parents[1]
@pytest.mark.parametrize("profile", ["config.yaml", "smoke.yaml"])
def test_dry_run_plans_prepare_evaluate_and_table(snakemake, data_mirror, tmp_path, profile):
    cfg = yaml.safe_load((REPO / "config" / profile).read_text())
    res = snakemake(["-n", "--cores", "2", "--configfile", str(REPO / "config" / profile),
                "--config", f"data_mirror={data_mirror}", "--", "tables/table3.tex"], cwd=tmp_path)
    assert res.returncode == 0, res.stderr[-3000:]
    out = res.stdout + res.stderr
    present = [d for d in cfg["table3"]["datasets"] if (data_mirror / d / "HR").is_dir()]
    n_eval = len(present) * len(cfg["table3"]["models"])
    assert f"prepare_sr         {len(present)}" in out and f"evaluate_sr        {n_eval}" in out, out[-2000:]
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
    evaluate = next(line for line in out.splitlines() if " -m repro evaluate " in line)
    prepare = next(line for line in out.splitlines() if " -m repro prepare " in line)
    # the rule's 2 threads, capped by --cores 1, reach torch; its outputs are named by the rule, not derived by the CLI
    assert "--threads 1" in evaluate and "--threads 1" in prepare
    assert "--out-csv results/eval/bicubic/Set5_x4.csv --out-json results/eval/bicubic/Set5_x4.json" in evaluate
    prepare_job = yaml.safe_load((REPO / "config" / "config.yaml").read_text())["resources"]["prepare"]
    assert "runtime=7, mem_mb=1234" in out  # the override
    assert f"runtime={prepare_job['runtime']}, mem_mb={prepare_job['mem_mb']}" in out  # config.yaml's, not repeated in smoke
    assert out.count("\nrule ") == out.count("    log: logs/") == 3


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
    res = snakemake(["--cores", "1", "--configfile", str(REPO / "config" / "smoke.yaml"), "--config", f"data_mirror={mirror}",
                "--", "tables/table3.tex"], cwd=run_dir)
    out = res.stdout + res.stderr
    assert res.returncode != 0 and "skipping Set5" not in out and "Error in rule prepare_sr" in out, out[-3000:]
    log = (run_dir / "logs" / "prepare" / "Set5_x4.log").read_text()
    assert f"{mirror / 'Set5' / 'HR' / 'bird.png'}: checksum mismatch" in log
    assert not (run_dir / "results" / "eval").exists()


@pytest.mark.slow
def test_smoke_profile_end_to_end(snakemake, data_mirror, tmp_path):
    res = snakemake(["--cores", "2", "--configfile", str(REPO / "config" / "smoke.yaml"),
                "--config", f"data_mirror={data_mirror}", f"metric_weights={data_mirror / 'metrics'}",
                "--", "tables/table3.tex"], cwd=tmp_path)
    assert res.returncode == 0, res.stderr[-3000:]
    assert (tmp_path / "tables" / "table3.tex").read_text().count("\\midrule") >= 1
    with open(tmp_path / "tables" / "table3.csv") as fh:
        cells = {(r["model"], r["dataset"], r["metric"]): r for r in csv.DictReader(fh)}
    bicubic_psnr = cells[("bicubic", "Set5", "psnr")]
    assert bicubic_psnr["status"] in ("match", "within_noise"), bicubic_psnr
    assert abs(float(bicubic_psnr["reproduced"]) - 28.42) < 0.03  # EDSR's Bicubic Set5 x4 figure
    assert cells[("bicubic", "Set5", "lpips")]["status"] == "missing"  # no AlexNet weights offline: said, not guessed
    assert (tmp_path / "logs" / "evaluate" / "bicubic" / "Set5_x4.log").exists()
    assert (tmp_path / "results" / "benchmarks" / "evaluate" / "bicubic" / "Set5_x4.tsv").exists()
    evaluate_job = yaml.safe_load((REPO / "config" / "config.yaml").read_text())["resources"]["evaluate"]
    meta = json.loads((tmp_path / "results" / "eval" / "bicubic" / "Set5_x4.json").read_text())
    assert meta["threads"] == min(2, evaluate_job["threads"])  # the rule's threads, capped by --cores 2, reached torch
