"""`python -m repro profile --compare A B [--equal-params]`: both models measured in one run, the ratio line last."""

import json
import re

import pytest
import torch
import yaml

from repro.cli import main
from repro.profile.compare import _meta_params, equal_params_dim

pytestmark = pytest.mark.usefixtures("one_thread")
TINY_DIFFIR = {"dim": 8, "num_blocks": [1, 1, 1, 1], "num_refinement_blocks": 1, "n_encoder_res": 1}
TINY_OURS = {"width": 16, "n_groups": 1, "depth": 2, "head_size": 16, "n_feats": 16, "n_encoder_res": 1}
LINE = re.compile(r"^inference_ratio=(\S+) train_step_ratio=(\S+) flops_ratio=(\S+)$")


@pytest.fixture
def tiny_config(tmp_path):
    path = tmp_path / "tiny.yaml"
    path.write_text(yaml.safe_dump({"diffrwkvir": TINY_OURS, "diffir": TINY_DIFFIR}))
    return path


def _run(capsys, *args):
    main(["profile", "--compare", "diffrwkvir", "diffir", "--input", "8x8", "--repeats", "2", "--train-batch", "1",
          "--train-patch", "8", *args])
    return capsys.readouterr().out.strip().splitlines()


def test_compare_prints_the_ratios_last(capsys, tiny_config, tmp_path):
    out = tmp_path / "compare.json"
    lines = _run(capsys, "--model-config", str(tiny_config), "--out", str(out))
    match = LINE.match(lines[-1])
    assert match, lines[-1]
    result = json.loads(out.read_text())
    ours, theirs = result["results"]["diffrwkvir"], result["results"]["diffir"]
    ratios = [float(x) for x in match.groups()]
    assert ratios[0] == pytest.approx(ours["inference"]["median_s"] / theirs["inference"]["median_s"], rel=1e-3)
    assert ratios[1] == pytest.approx(ours["train_step"]["median_s"] / theirs["train_step"]["median_s"], rel=1e-3)
    assert ratios[2] == pytest.approx(ours["flops"] / theirs["flops"], rel=1e-3)
    assert ours["overrides"] == TINY_OURS and theirs["overrides"] == TINY_DIFFIR
    assert result["input"] == {"lr_hw": [8, 8], "scale": 4} and result["timing"]["interleaved"]
    assert ours["inference"]["n"] == theirs["inference"]["n"] == 2


def test_equal_params_scales_diffir_dim_to_our_count(capsys, tiny_config, tmp_path):
    out = tmp_path / "equal.json"
    lines = _run(capsys, "--model-config", str(tiny_config), "--equal-params", "--out", str(out))
    assert LINE.match(lines[-1])
    result = json.loads(out.read_text())
    target = result["results"]["diffrwkvir"]["params"]
    dim = result["results"]["diffir"]["overrides"]["dim"]
    assert dim % 2 == 0 and result["results"]["diffir"]["params"] == _meta_params("diffir", 4, {**TINY_DIFFIR, "dim": dim})
    # no other even width comes closer
    rest = {k: v for k, v in TINY_DIFFIR.items() if k != "dim"}
    gap = abs(result["results"]["diffir"]["params"] - target)
    for other in (dim - 2, dim + 2):
        if other >= 2:
            assert abs(_meta_params("diffir", 4, {**rest, "dim": other}) - target) >= gap


def test_equal_params_dim_at_the_default_configurations():
    with torch.device("meta"):
        from repro import build_model

        ours = sum(p.numel() for p in build_model("diffrwkvir", scale=4).parameters())
    dim, params = equal_params_dim("diffir", ours, scale=4)
    assert ours == 10_603_699 and (dim, params) == (36, 10_397_898)  # dim 34: 9.61 M, dim 38: 11.22 M
