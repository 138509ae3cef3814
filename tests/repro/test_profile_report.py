"""`python -m repro profile --model ...`: the JSON's required keys, its measurements and the reasons for what a CPU
cannot measure; input presets; the Nsight Compute parser; the GPU path where there is a GPU."""

import copy
import json
from pathlib import Path

import pytest
import torch
import yaml

from kernels import flops as kf
from kernels import fused_cpu
from repro.cli import main
from repro.profile import ncu, nvml
from repro.profile.inputs import parse_hw, preset_hw, resolve_input
from repro.profile.schema import TABLE4_COLUMNS, validate

REPO = Path(__file__).resolve().parents[2]
TINY = REPO / "config" / "models" / "diffrwkvir_tiny.yaml"
pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def profile(tmp_path_factory):
    """A tiny DiffRWKVIR stage 2 profiled at LR 8x12 through the CLI, peak memory in fresh subprocesses."""
    out = tmp_path_factory.mktemp("profile") / "diffrwkvir_x4.json"
    threads = torch.get_num_threads()  # --threads sets torch's count for the whole process
    main(["profile", "--model", "diffrwkvir", "--scale", "4", "--input", "8x12", "--model-config", str(TINY),
          "--repeats", "2", "--train-batch", "1", "--train-patch", "8", "--train-steps", "1000", "--eval-sets", "Set5",
          "Set14", "--threads", "1", "--out", str(out)])
    torch.set_num_threads(threads)
    return json.loads(out.read_text())


def test_json_has_the_table4_columns_and_what_they_were_measured_under(profile):
    validate(profile)
    tiny = yaml.safe_load(TINY.read_text())["diffrwkvir"]
    assert profile["model"] == "diffrwkvir" and profile["overrides"] == tiny and profile["scale"] == 4
    assert profile["input"] == {"lr_hw": [8, 12], "output_hw": [32, 48], "preset": "custom", "batch": 1}
    assert profile["device"] == "cpu" and profile["precision"] == "fp32" and profile["threads"] == 1
    assert set(profile["tf32"]) == {"cuda_matmul", "cudnn", "float32_matmul_precision"}
    assert {"python", "torch", "numpy"} <= set(profile["versions"]) and profile["git_sha"]
    assert set(profile["protocol"]) == set(TABLE4_COLUMNS)


def test_parameters_flops_and_kernel_backends(profile):
    params = profile["params"]
    assert set(params["parts"]) == {"network", "cpen", "denoiser"}
    assert params["parts"]["network"]["path"] == "net" and params["parts"]["denoiser"]["path"] == "diffusion.model"
    assert sum(p["params"] for p in params["parts"].values()) + params["other"] == params["total"]
    assert profile["params_m"] == params["total"] / 1e6 and profile["flops_g"] == profile["flops"] / 1e9
    assert profile["macs"] == profile["flops"] / 2
    backend = profile["kernels"]["state_evolution"]["backends"]
    if fused_cpu.available()[0]:  # the form that runs on a CPU: the recurrence, counted by formula
        assert backend == ["fused_recurrent"] and profile["kernels"]["state_evolution"]["forms"] == ["recurrent"]
        # width 16, head 16: one head of 16, four scan directions stacked along the batch, a 8x12 map, depth 2
        one_call = kf.recurrent_state_evolution_flops(batch=4, heads=1, seq_len=96, dk=16, dv=16)
        assert profile["analytic"] == {"state_evolution": 2 * one_call}
    else:
        assert backend == ["chunk"] and profile["analytic"] == {}


def test_times_memory_and_extrapolations(profile):
    for phase in ("inference", "train_step"):
        t = profile[phase]
        assert t["n"] == 2 and 0 < t["min_s"] <= t["p10_s"] <= t["median_s"] <= t["p90_s"] <= t["max_s"]
        assert t["iqr_s"] == pytest.approx(t["q3_s"] - t["q1_s"])
    for phase in ("inference", "train_step"):
        peak = profile["memory"][phase]
        assert "fresh subprocess" in peak["method"] and peak["peak_rss_bytes"] >= peak["rss_before_run_bytes"] > 0
    assert profile["train_time_s"] == pytest.approx(profile["train_step"]["median_s"] * 1000)
    assert profile["infer_time_s"] == pytest.approx(profile["inference"]["median_s"] * (5 + 14))
    assert profile["extrapolated"]["infer_time_s"]["images"] == 19 and profile["extrapolated"]["train_time_s"]["steps"] == 1000
    assert "extrapolated" in profile["protocol"]["train_time_s"] and "extrapolated" in profile["protocol"]["infer_time_s"]


def test_what_a_cpu_cannot_measure_is_null_with_its_reason(profile):
    assert profile["l2_hit_pct"] is None and profile["dram_read_gbps"] is None and profile["ncu"] is None
    assert profile["nvml"] == {"inference": None, "train_step": None}
    for key in ("l2_hit_pct", "dram_read_gbps"):
        assert "Nsight Compute" in profile["missing"][key] and "device is cpu" in profile["missing"][key]
    assert "device is cpu" in profile["missing"]["nvml"]


def test_validation_rejects_an_unexplained_gap_or_a_missing_key(profile):
    gap = copy.deepcopy(profile)
    del gap["missing"]["l2_hit_pct"]
    with pytest.raises(ValueError, match=r"lacks the reason why \['l2_hit_pct', 'ncu'\]"):
        validate(gap)
    for key in ("kernels", "tf32", "inference"):
        broken = copy.deepcopy(profile)
        del broken[key]
        with pytest.raises(ValueError, match=key):
            validate(broken)


def test_untrainable_model_says_so(tmp_path):
    out = tmp_path / "bicubic.json"
    main(["profile", "--model", "bicubic", "--input", "8x8", "--repeats", "1", "--no-memory", "--out", str(out)])
    p = json.loads(out.read_text())
    validate(p)
    assert p["train_step"] is None and p["train_time_s"] is None and p["params_m"] == 0
    assert p["missing"]["train_step"] == "bicubic has no trainable parameters" and "memory" in p["missing"]


def test_input_sizes_and_presets():
    assert parse_hw("90x160") == (90, 160) and parse_hw(" 7X5 ") == (7, 5)
    for bad in ("90", "0x5", "axb", "3x"):
        with pytest.raises(ValueError, match="HxW"):
            parse_hw(bad)
    assert preset_hw("paper", 4) == (90, 160) and preset_hw("paper", 2) == (180, 320)
    assert preset_hw("default", 4) == (180, 320)  # a 1280x720 output
    assert resolve_input(None, None, 4) == ((180, 320), "default")
    assert resolve_input("16x24", None, 4) == ((16, 24), "custom")
    with pytest.raises(ValueError, match="not a multiple"):
        preset_hw("paper", 7)
    with pytest.raises(ValueError, match="not both"):
        resolve_input("8x8", "paper", 4)


def test_ncu_output_is_parsed_and_combined_by_its_weights():
    header = ('"ID","Kernel Name","dram__bytes_read.sum","dram__bytes_read.sum.per_second","gpu__time_duration.sum",'
              '"lts__t_sector_hit_rate.pct","lts__t_sectors.sum"')
    lines = ["==PROF== Connected to process 1234", header, '"","","byte","byte/second","nsecond","%","sector"',
             '"0","gemm","1,000,000","2e11","5000","80","300"', '"1","norm","3000000","1e11","30000","40","100"',
             "==PROF== Disconnected from process 1234"]
    stdout = "\n".join(lines)
    rows = ncu.parse(stdout)
    assert len(rows) == 2 and rows[0]["dram__bytes_read.sum"] == 1e6
    out = ncu.aggregate(rows)
    assert out["l2_hit_pct"] == pytest.approx((80 * 300 + 40 * 100) / 400)  # the hit rate of all 400 sectors
    assert out["dram_read_gbps"] == pytest.approx(4e6 / 35e-6 / 1e9)  # bytes over kernel time
    with pytest.raises(RuntimeError, match="no kernel"):
        ncu.aggregate(ncu.parse("==PROF== nothing"))


def test_gpu_fields_say_why_they_are_absent(monkeypatch):
    cpu = torch.device("cpu")
    assert "device is cpu" in ncu.unavailable_reason(cpu) and "device is cpu" in nvml.unavailable_reason(cpu)
    monkeypatch.setattr(ncu.shutil, "which", lambda name: None)
    assert ncu.unavailable_reason(torch.device("cuda")) == "ncu (Nsight Compute) is not on PATH"
    cmd = ncu.command("{}")
    assert cmd[cmd.index("--nvtx-include") + 1] == "repro_inference/" and "lts__t_sector_hit_rate.pct" in cmd[
        cmd.index("--metrics") + 1]


@pytest.mark.gpu
def test_gpu_profile_counts_the_chunked_form_and_samples_the_gpu(tmp_path):
    out = tmp_path / "gpu.json"
    main(["profile", "--model", "diffrwkvir", "--input", "16x16", "--model-config", str(TINY), "--device", "cuda",
          "--repeats", "2", "--train-batch", "1", "--train-patch", "16", "--out", str(out)])
    p = json.loads(out.read_text())
    validate(p)
    assert p["kernels"]["state_evolution"]["backends"] == ["fla"]
    assert p["kernels"]["state_evolution"]["forms"] == ["chunked (C=16)"]
    assert p["memory"]["inference"]["peak_allocated_bytes"] > 0 and p["timing"]["clock"] == "CUDA events"
    assert p["nvml"]["inference"] is not None or "nvml" in p["missing"]
    assert p["ncu"] is not None or "ncu" in p["missing"]["l2_hit_pct"] or "Nsight" in p["missing"]["l2_hit_pct"]
