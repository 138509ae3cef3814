"""Table 4 from profile JSONs: cells measured on another device or at another input than the paper's A100 at
LR 90x160 are marked and never compared; the rest are joined as usual."""

import json
from pathlib import Path

import pandas as pd

from repro.tables import make_table
from repro.tables.table4 import judge

PUBLISHED = Path(__file__).resolve().parents[2] / "tables" / "published"


def _profile(device_name: str, lr_hw=(90, 160), backends=("fla",), **columns) -> dict:
    """The fields of a `python -m repro profile` JSON that Table 4 reads."""
    values = {"params_m": 11.04, "flops_g": 230.78, "train_time_s": 24720.0, "infer_time_s": 2216.0,
              "l2_hit_pct": 83.7, "dram_read_gbps": 108.0, **columns}
    return {"model": "diffrwkvir", "scale": 4, "device": "cuda:0" if "NVIDIA" in device_name else "cpu",
            "device_name": device_name, "input": {"lr_hw": list(lr_hw), "output_hw": [4 * lr_hw[0], 4 * lr_hw[1]]},
            "kernels": {"state_evolution": {"backends": list(backends), "forms": ["x"], "calls": 24}},
            "protocol": {m: f"{device_name} at LR {lr_hw[0]}x{lr_hw[1]}" for m in values}, "missing": {}, **values}


def test_judge_compares_only_like_with_like():
    a100 = _profile("NVIDIA A100-SXM4-40GB")
    assert all(judge(a100, m) is None for m in a100["protocol"])
    cpu = _profile("AMD EPYC (2 cores)", backends=("fused_recurrent",))
    assert judge(cpu, "params_m") is None
    status, reason = judge(cpu, "flops_g")  # the recurrent form's count is not the chunked form's
    assert status == "other_device" and "fused_recurrent" in reason and "chunked" in reason
    assert judge(cpu, "infer_time_s") == ("other_device", "measured on AMD EPYC (2 cores); the paper on an A100 40G")
    small = _profile("NVIDIA A100-SXM4-80GB", lr_hw=(16, 16))
    status, reason = judge(small, "flops_g")
    assert status == "other_input" and "LR 16x16" in reason and "90x160" in reason
    assert judge(small, "l2_hit_pct")[0] == "other_input"
    # a selective-scan model's count is the same on any backend: its FLOPs at the paper's input compare on a CPU
    mamba = {**_profile("AMD EPYC (2 cores)"), "kernels": {"selective_scan": {"backends": ["chunk"], "forms": ["r"]}}}
    assert judge(mamba, "flops_g") is None and judge(mamba, "train_time_s")[0] == "other_device"
    assert judge({"device": "cpu-2core", "params_m": 1.0}, "train_time_s") is None  # hand-written: not judged


def test_table_marks_cells_of_another_device_and_keeps_them_out_of_the_comparison(tmp_path):
    cpu = tmp_path / "diffrwkvir_x4.json"
    cpu.write_text(json.dumps(_profile("AMD EPYC (2 cores)", backends=("fused_recurrent",), params_m=10.6037,
                                       l2_hit_pct=None, dram_read_gbps=None,
                                       missing={"l2_hit_pct": "device is cpu", "dram_read_gbps": "device is cpu"})))
    gpu = tmp_path / "diffir_x4.json"
    gpu.write_text(json.dumps({**_profile("NVIDIA A100-SXM4-40GB", flops_g=338.69, params_m=24.971206), "model": "diffir"}))
    cells = make_table("table4", profile_files=[cpu, gpu], published_dir=PUBLISHED,
                       tolerances={"default": {"rel": 0.05}}, out_csv=tmp_path / "t4.csv", out_tex=tmp_path / "t4.tex")
    ours = cells[cells["model"] == "diffrwkvir"].set_index("metric")
    assert ours.loc["params_m", "status"] == "within_noise"  # 10.60 M against 11.04 M: within 5%
    for metric in ("flops_g", "train_time_s", "infer_time_s"):
        assert ours.loc[metric, "status"] == "other_device" and pd.isna(ours.loc[metric, "delta"])
    assert ours.loc["l2_hit_pct", "status"] == "missing" and ours.loc["l2_hit_pct", "reason"] == "device is cpu"
    diffir = cells[cells["model"] == "diffir"].set_index("metric")
    assert diffir.loc["flops_g", "status"] == "within_noise"  # 338.69 against 338.56, compared: same device and input
    assert diffir.loc["params_m", "status"] == "above"
    tex = (tmp_path / "t4.tex").read_text()
    assert "not compared: measured on AMD EPYC (2 cores); the paper on an A100 40G" in tex
    assert "AMD EPYC (2 cores) at LR 90x160" in tex  # the device and input of the cells, in the footer
    csv = pd.read_csv(tmp_path / "t4.csv")
    assert set(csv[csv["model"] == "diffrwkvir"]["status"]) == {"within_noise", "other_device", "missing"}



def test_every_row_says_which_kernel_it_ran_on(tmp_path):
    """A CPU comparison compares the kernels as much as the architectures: each row names its ops' backends."""
    ours = tmp_path / "diffrwkvir_x4.json"
    ours.write_text(json.dumps(_profile("AMD EPYC (2 cores)", backends=("fused_recurrent",))))
    mamba = tmp_path / "mambair_x4.json"
    mamba.write_text(json.dumps({**_profile("AMD EPYC (2 cores)"), "model": "mambair",
                                 "kernels": {"selective_scan": {"backends": ["fused"], "forms": ["r"], "calls": 4}}}))
    swinir = tmp_path / "swinir_x4.json"
    swinir.write_text(json.dumps({**_profile("AMD EPYC (2 cores)"), "model": "swinir", "kernels": {}}))
    cells = make_table("table4", profile_files=[ours, mamba, swinir], published_dir=PUBLISHED,
                       tolerances={"default": {"rel": 0.05}}, out_csv=tmp_path / "t4.csv", out_tex=tmp_path / "t4.tex")
    notes = cells.groupby("model")["note"].first()
    assert "kernels: state_evolution: fused_recurrent" in notes["diffrwkvir"]
    assert "kernels: selective_scan: fused" in notes["mambair"]
    assert "kernels" not in str(notes["swinir"])
    tex = (tmp_path / "t4.tex").read_text()
    assert "Kernels as run: diffrwkvir (state\\_evolution: fused\\_recurrent)" in tex and "no custom kernel: swinir" in tex
