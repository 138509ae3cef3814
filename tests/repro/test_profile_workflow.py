"""The table4 rule: its DAG (one profile job per model, then the table) for both profiles, and a tiny real run of the
smoke profile through Snakemake."""

import csv
import json
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
@pytest.mark.parametrize("profile", ["config.yaml", "smoke.yaml"])
def test_dry_run_plans_one_profile_job_per_model_then_the_table(snakemake, data_mirror, tmp_path, profile):
    res = snakemake(["-n", "-p", "--cores", "2", "--configfile", str(REPO / "config" / profile),
                      "--config", f"data_mirror={data_mirror}", "--", "tables/table4.tex"], cwd=tmp_path)
    assert res.returncode == 0, res.stderr[-3000:]
    out = res.stdout + res.stderr
    merged = yaml.safe_load((REPO / "config" / "config.yaml").read_text())["table4"]
    merged.update(yaml.safe_load((REPO / "config" / profile).read_text()).get("table4", {}))
    models = merged["models"]
    assert f"profile        {len(models)}" in out and "table4         1" in out, out[-2000:]
    commands = [line for line in out.splitlines() if " -m repro profile " in line]
    assert len(commands) == len(models)
    for model in models:
        line = next(c for c in commands if f"--model {model} " in c)
        assert f"--out results/profile/{model}_x4.json > logs/profile/{model}_x4.log" in line
        assert f"--threads {min(2, merged['resources']['threads'])}" in line
        assert ("--preset paper" in line) if merged.get("input") is None else (f"--input {merged['input']}" in line)
    table = next(line for line in out.splitlines() if " -m repro table --table 4 " in line)
    assert all(f"results/profile/{m}_x4.json" in table for m in models)


@pytest.mark.slow
def test_smoke_table4_runs_end_to_end(snakemake, data_mirror, tmp_path):
    res = snakemake(["--cores", "2", "--configfile", str(REPO / "config" / "smoke.yaml"),
                      "--config", f"data_mirror={data_mirror}", "--", "tables/table4.tex"], cwd=tmp_path)
    assert res.returncode == 0, res.stderr[-3000:]
    with open(tmp_path / "tables" / "table4.csv") as fh:
        cells = {(r["model"], r["metric"]): r for r in csv.DictReader(fh)}
    ours = json.loads((tmp_path / "results" / "profile" / "diffrwkvir_x4.json").read_text())
    assert ours["input"]["lr_hw"] == [16, 16] and ours["threads"] == 1 and ours["params"]["total"] < 1_000_000
    assert cells[("diffrwkvir", "flops_g")]["status"] == "other_input"  # 16x16, not the paper's 90x160
    assert cells[("diffrwkvir", "infer_time_s")]["status"] == "other_device"  # this CPU, not the paper's A100
    assert cells[("diffir", "l2_hit_pct")]["status"] == "missing" and "Nsight" in cells[("diffir", "l2_hit_pct")]["reason"]
    assert cells[("diffir", "params_m")]["status"] in ("below", "above", "within_noise", "match")
    assert (tmp_path / "logs" / "profile" / "diffir_x4.log").exists()
    assert (tmp_path / "results" / "benchmarks" / "profile" / "diffir_x4.tsv").exists()
    assert "not compared" in (tmp_path / "tables" / "table4.tex").read_text()


def test_config_schema_checks_the_table4_section():
    import jsonschema

    schema = yaml.safe_load((REPO / "repro" / "schemas" / "config.schema.yaml").read_text())
    config = yaml.safe_load((REPO / "config" / "config.yaml").read_text())
    jsonschema.validate(config, schema)
    for key, bad in (("preset", "huge"), ("input", "16 by 16"), ("repeats", 0), ("eval_sets", ["Set6"])):
        broken = {**config, "table4": {**config["table4"], key: bad}}
        with pytest.raises(jsonschema.ValidationError):
            jsonschema.validate(broken, schema)
