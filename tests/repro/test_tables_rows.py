"""Table rows as the workflow makes them: named rows, several seeds, absent datasets, official weights, and the LaTeX
(bold/underline, mean±std, footnotes, Table 5's blocks), compiled by pdflatex where it is installed.

Oracles: the published values (a result equal to them must `match`), hand-computed means and sample standard
deviations, and the exact LaTeX lines the paper's layout implies.
"""

import json
import math
import re
import shutil
import subprocess
from pathlib import Path

import pandas as pd
import pytest

from repro.cli import main
from repro.tables import make_table
from repro.tables.ranking import BEST, SECOND, rank_marks

REPO = Path(__file__).resolve().parents[2]
PUBLISHED = REPO / "tables" / "published"
SR_METRICS = ["psnr", "ssim", "niqe", "lpips", "rmse", "sam"]
TOLERANCES = {"psnr": {"abs": 0.06}, "ssim": {"abs": 0.002}, "default": {"rel": 0.05}}
# published rows (Tables 3 and 5), in SR_METRICS order
UNI = [26.1232, 0.7133, 6.5121, 0.3211, 6.4345, 0.170245]
OURS_BSD100 = [26.7741, 0.7493, 6.0509, 0.3086, 6.3994, 0.165984]  # Table 3 Ours = Table 5 Omni-Shift
OURS_URBAN100 = [26.6128, 0.8469, 5.2425, 0.2167, 6.1121, 0.159541]  # Table 3 Ours = Table 5 TTT


def write_eval(folder: Path, dataset: str, means: dict | list, *, model: str = "diffrwkvir", seed=None,
               n_images: int = 1) -> Path:
    """An evaluation CSV (per-image rows and the `mean` row) and its JSON sidecar, as `repro/tables/results.py` reads."""
    folder.mkdir(parents=True, exist_ok=True)
    means = dict(zip(SR_METRICS, means)) if isinstance(means, list) else means
    values = {m: means.get(m, math.nan) for m in SR_METRICS}
    path = folder / f"{dataset}_x4.csv"
    pd.DataFrame([{"image": "img1", **values}, {"image": "mean", **values}]).to_csv(path, index=False)
    meta = {"model": model, "dataset": dataset, "scale": 4, "protocol": "sr-y601-crop4-fp64", "n_images": n_images,
            "missing": {}, "git_sha": "0123abc"}
    if seed is not None:
        meta["seed"] = seed
    path.with_suffix(".json").write_text(json.dumps(meta))
    return path


def _cells(cells: pd.DataFrame, **where) -> pd.DataFrame:
    mask = pd.Series(True, index=cells.index)
    for column, value in where.items():
        mask &= cells[column] == value
    return cells[mask]


def _one(cells: pd.DataFrame, **where) -> pd.Series:
    rows = _cells(cells, **where)
    assert len(rows) == 1, where
    return rows.iloc[0]


def _table(tmp_path: Path, table_id: str, **kwargs) -> tuple[pd.DataFrame, str]:
    cells = make_table(table_id, published_dir=PUBLISHED, tolerances=TOLERANCES, out_csv=tmp_path / f"{table_id}.csv",
                       out_tex=tmp_path / f"{table_id}.tex", **kwargs)
    return cells, (tmp_path / f"{table_id}.tex").read_text()


def _table5_by_cli(tmp_path: Path) -> tuple[pd.DataFrame, str]:
    """Table 5 through `python -m repro table` with named rows: one file per ablation run, the Ours runs reused."""
    uni = write_eval(tmp_path / "ablation" / "shift" / "uni" / "eval" / "seed0", "BSD100", UNI, seed=0)
    ours_bsd = write_eval(tmp_path / "eval" / "diffrwkvir" / "seed0", "BSD100", OURS_BSD100, seed=0)
    ours_urban = write_eval(tmp_path / "eval" / "diffrwkvir" / "seed0", "Urban100", OURS_URBAN100, seed=0)
    bicubic = write_eval(tmp_path / "eval" / "bicubic", "BSD100", {"psnr": 25.96, "sam": 0.0290}, model="bicubic")
    main(["table", "--table", "5", "--published", str(PUBLISHED), "--tolerances", json.dumps(TOLERANCES),
          "--eval-as", "shift=uni", str(uni), "--eval-as", "shift=omni", str(ours_bsd),
          "--eval-as", "mixer=ttt", str(ours_urban),
          "--absent-dataset", "Manga109", "Manga109 not in the data mirror or data_dir",
          "--footnote", "profile: smoke", "--footnote", "hardware: 2 CPU cores, 100% busy",
          "--bicubic-eval", str(bicubic), "--out-csv", str(tmp_path / "table5.csv"),
          "--out-tex", str(tmp_path / "table5.tex")])
    return pd.read_csv(tmp_path / "table5.csv", keep_default_na=False, na_values=[""]), \
        (tmp_path / "table5.tex").read_text()


def test_table5_named_rows_missing_rows_and_absent_dataset(latex_blocks, tmp_path):
    cells, tex = _table5_by_cli(tmp_path)
    assert len(cells) == 12 * 6
    for variant in ("uni", "omni", "ttt"):
        row = _cells(cells, variant=variant)
        assert len(row) == 6 and (row["status"] == "match").all() and (row["n_seeds"] == 1).all(), variant
        assert row["std"].isna().all()
    ours_file = str(tmp_path / "eval" / "diffrwkvir" / "seed0" / "BSD100_x4.csv")
    assert set(_cells(cells, variant="omni")["result_file"]) == {ours_file}
    ffn = _cells(cells, component="ffn")
    assert len(ffn) == 24 and (ffn["status"] == "missing").all() and (ffn["n_seeds"] == 0).all()
    assert set(ffn["reason"]) == {"Manga109 not in the data mirror or data_dir"}
    assert set(_cells(cells, variant="quad")["reason"]) == {"no result file"}
    assert set(_cells(cells, component="scan")["reason"]) == {"no result file"}

    blocks = latex_blocks(tex, 7)
    assert [title for title, _ in blocks] == ["Token Shift (BSD100)", "Backbone (Urban100)", "MLP Variants (Manga109)",
                                              "Scan Methods (Set14)"]
    assert [[line.split(" & ")[0].split(r"\textsuperscript")[0] for line in lines] for _, lines in blocks] == [
        ["Uni-Shift", "Quad-Shift", "Omni-Shift (Ours)"], ["ResNet", "Naive Attention", "TTT (Ours)"],
        ["MLP(ReLU)", "MLP(GELU)", "GatedMLP", "ChannelAtt (Ours)"], ["1D Scan", "2D Scan (Ours)"]]
    shift = blocks[0][1]
    # Omni-Shift beats Uni-Shift in every column: bold and underlined; a block with one measured row has no marks
    assert shift[0] == ("Uni-Shift & " + " & ".join(rf"\underline{{{v}}} ({v})" for v in
                                                    ["26.1232", "0.7133", "6.5121", "0.3211", "6.4345", "0.170245"])
                        + r" \\")
    assert shift[2].startswith(r"Omni-Shift (Ours) & \textbf{26.7741} (26.7741) & \textbf{0.7493} (0.7493)")
    assert r"\textbf" not in "".join(blocks[1][1]) and r"\underline" not in "".join(blocks[1][1])
    no_file = re.search(r"Quad-Shift & ---\\textsuperscript\{(\w+)\} \(26\.3523\)", shift[1]).group(1)
    assert rf"\textsuperscript{{{no_file}}}\,no result file\\" in tex
    assert r"\,Manga109 not in the data mirror or data\_dir\\" in tex
    assert "\nprofile: smoke\\\\\n" in tex and "hardware: 2 CPU cores, 100\\% busy\\\\" in tex
    assert "Protocol: sr-y601-crop4-fp64.\\\\" in tex


def test_table5_flags_rmse_and_sam_of_the_paper(tmp_path):
    cells, tex = _table5_by_cli(tmp_path)
    rmse = _cells(cells, metric="rmse")
    assert (rmse["published_flag"] == "rmse_below_psnr_floor").all() and len(rmse) == 12
    sam = cells[cells["published_flag"] == "sam_above_bicubic"]
    assert sorted(sam["variant"]) == ["omni", "quad", "uni"]  # Bicubic was measured on BSD100 only
    uni_sam = _one(cells, variant="uni", metric="sam")
    assert uni_sam["note"].endswith("; published SAM 0.1702 > 0.0290, the SAM of Bicubic upscaling (the weakest "
                                    "method) reproduced on BSD100: SAM protocol not stated, these values cannot be "
                                    "reproduced")
    assert uni_sam["status"] == "match"  # flagged, but still compared
    header = tex.split(r"\midrule")[0]
    rmse_mark = re.search(r"RMSE\$\\downarrow\$\\textsuperscript\{(\w+)\}", header).group(1)
    sam_mark = re.search(r"SAM\$\\downarrow\$\\textsuperscript\{(\w+)\}", header).group(1)
    assert rf"\textsuperscript{{{rmse_mark}}}\,RMSE column: 12 of 12 published values lie below" in tex
    assert rf"\textsuperscript{{{sam_mark}}}\,SAM column: 3 of 12 published values exceed the SAM of Bicubic" in tex
    assert tex.count("RMSE column:") == 1 and tex.count("SAM column:") == 1


def test_seeds_are_averaged_and_their_spread_widens_the_band(latex_blocks, tmp_path):
    runs = tmp_path / "eval"
    files = [
        *[write_eval(runs / "swinir" / f"seed{s}", "BSD100", {"psnr": p, "ssim": 0.7443, "lpips": l}, model="swinir",
                     seed=s) for s, p, l in [(0, 26.30, 0.33), (1, 26.40, 0.34), (2, 26.50, math.nan)]],
        *[write_eval(runs / "hat" / f"seed{s}", "BSD100", {"psnr": p}, model="hat", seed=s)
          for s, p in [(0, 26.39), (1, 26.40), (2, 26.41)]],
        write_eval(runs / "mambair", "BSD100", {"psnr": 26.20}, model="mambair"),  # no seed recorded: one seed
    ]
    cells, tex = _table(tmp_path, "table3", eval_files=files)
    psnr = _one(cells, model="swinir", dataset="BSD100", metric="psnr")
    assert psnr["reproduced"] == pytest.approx(26.40) and psnr["std"] == pytest.approx(0.1)
    assert psnr["n_seeds"] == 3 and psnr["band"] == pytest.approx(0.2)
    assert psnr["status"] == "within_noise"  # delta -0.1038: outside the config's 0.06, inside 2 std
    assert psnr["result_file"] == "; ".join(str(f) for f in files[:3])
    ssim = _one(cells, model="swinir", dataset="BSD100", metric="ssim")
    assert (ssim["std"], ssim["n_seeds"], ssim["band"], ssim["status"]) == (0.0, 3, 0.002, "match")
    lpips = _one(cells, model="swinir", dataset="BSD100", metric="lpips")  # the third seed did not measure it
    assert lpips["reproduced"] == pytest.approx(0.335) and lpips["std"] == pytest.approx(0.00707107, abs=1e-8)
    assert lpips["n_seeds"] == 2 and lpips["band"] == pytest.approx(0.05 * 0.3284)  # 5% > 2 std = 0.0141
    hat = _one(cells, model="hat", dataset="BSD100", metric="psnr")
    assert hat["std"] == pytest.approx(0.01) and hat["band"] == 0.06 and hat["status"] == "below"
    mambair = _one(cells, model="mambair", dataset="BSD100", metric="psnr")
    assert math.isnan(mambair["std"]) and mambair["n_seeds"] == 1 and mambair["status"] == "below"
    assert _one(cells, model="srcnn", dataset="BSD100", metric="psnr")["n_seeds"] == 0

    written = pd.read_csv(tmp_path / "table3.csv")
    row = written[(written["model"] == "swinir") & (written["dataset"] == "BSD100") & (written["metric"] == "psnr")]
    assert row["std"].iloc[0] == pytest.approx(0.1) and row["n_seeds"].iloc[0] == 3

    bsd100 = {line.split(" & ")[0]: line.split(" & ") for line in latex_blocks(tex, 7)[0][1]}
    # SwinIR and HAT tie at 26.4000 as printed: both best; MambaIR second
    assert bsd100["SwinIR[21]"][1] == r"\textbf{26.4000$\pm$0.1000} (26.5038)"
    assert bsd100["HAT[22]"][1] == r"\textbf{26.4000$\pm$0.0100} (26.5244)"
    assert bsd100["MambaIR[20]"][1] == r"\underline{26.2000} (26.3487)"
    assert bsd100["SwinIR[21]"][4] == r"0.3350$\pm$0.0071 (0.3284)"  # the only LPIPS: unranked
    assert r"Reproduced $m\pm s$: mean and sample standard deviation over training seeds.\\" in tex


def test_same_cell_and_seed_twice_is_an_error_naming_both_files(tmp_path):
    a = write_eval(tmp_path / "a", "Set5", {"psnr": 30.0}, model="swinir", seed=0)
    b = write_eval(tmp_path / "b", "Set5", {"psnr": 30.1}, model="swinir", seed=0)
    with pytest.raises(ValueError, match=r"same seed \(0\)") as err:
        _table(tmp_path, "table3", eval_files=[a, b])
    assert str(a) in str(err.value) and str(b) in str(err.value)
    c = write_eval(tmp_path / "c", "Set5", {"psnr": 30.0}, model="swinir")
    d = write_eval(tmp_path / "d", "Set5", {"psnr": 30.0}, model="swinir")
    with pytest.raises(ValueError, match=r"same seed \(none recorded\)"):
        _table(tmp_path, "table3", eval_files=[c, d])
    # one file named twice as the same row is the same seed twice, too
    with pytest.raises(ValueError, match="two results for the same cell"):
        _table(tmp_path, "table3", eval_files=[("swinir", a), ("swinir", a)])
    # a file without a seed and one with seed 0 are two seeds
    cells, _ = _table(tmp_path, "table3", eval_files=[a, c])
    assert _one(cells, model="swinir", dataset="Set5", metric="psnr")["n_seeds"] == 2
    e = write_eval(tmp_path / "e", "Set5", {"psnr": 30.0}, model="swinir", seed=1, n_images=4)
    with pytest.raises(ValueError, match="different image counts"):
        _table(tmp_path, "table3", eval_files=[a, e])


def test_official_weights_row_is_compared_with_its_models_published_values(latex_blocks, tmp_path):
    retrained = write_eval(tmp_path / "eval" / "swinir", "BSD100", {"psnr": 26.40}, model="swinir")
    official = [write_eval(tmp_path / "official" / "swinir", "BSD100", {"psnr": 26.5038, "ssim": 0.7443},
                           model="swinir"),
                write_eval(tmp_path / "official" / "swinir", "Set5", {"psnr": 30.6960}, model="swinir")]
    main(["table", "--table", "3", "--published", str(PUBLISHED), "--tolerances", json.dumps(TOLERANCES),
          "--eval", str(retrained), "--official", "swinir", str(official[0]), "--official", "swinir", str(official[1]),
          "--out-csv", str(tmp_path / "table3.csv"), "--out-tex", str(tmp_path / "table3.tex")])
    cells = pd.read_csv(tmp_path / "table3.csv", keep_default_na=False, na_values=[""])
    assert len(cells) == 240 + 5 * 6
    mine = _cells(cells, model="swinir_official").set_index(["dataset", "metric"])
    theirs = _cells(cells, model="swinir").set_index(["dataset", "metric"])
    assert len(mine) == 30 and set(mine["label"]) == {"SwinIR[21] (official weights)"}
    pd.testing.assert_series_equal(mine["published"], theirs["published"])
    assert mine.loc[("BSD100", "psnr"), "status"] == "match" and mine.loc[("Set5", "psnr"), "status"] == "match"
    assert theirs.loc[("BSD100", "psnr"), "status"] == "below"
    assert mine.loc[("Set14", "psnr"), "reason"] == "no result file"
    for dataset, block in cells.groupby("dataset", sort=False):
        order = list(dict.fromkeys(block["model"]))
        assert order[order.index("swinir") + 1] == "swinir_official", dataset
    tex = (tmp_path / "table3.tex").read_text()
    for title, lines in latex_blocks(tex, 7):
        labels = [line.split(" & ")[0] for line in lines]
        assert labels[labels.index("SwinIR[21]") + 1] == "SwinIR[21] (official weights)", title
    with pytest.raises(ValueError, match=r"official weights given for \['bicubic'\]"):
        _table(tmp_path, "table3", official_files={"bicubic": official[0]})


def test_rank_marks_best_and_second_by_direction_as_printed():
    cells = pd.DataFrame({
        "metric": ["psnr"] * 4 + ["niqe"] * 4 + ["ssim", "ssim", "flops_g", "flops_g"],
        "reproduced": [26.1, 26.3, 26.2, math.nan, 6.0, 6.2, 6.00004, 7.0, 0.7, math.nan, 1.0, 2.0],
        "decimals": [4] * 8 + [4, 4, 2, 2],
    }, index=list("abcdefghijkl"))
    # higher PSNR is better; lower NIQE is better, 6.0000 and 6.00004 print alike and share the best mark;
    # a lone SSIM and the direction-less FLOPs are not ranked
    assert rank_marks(cells) == {"b": BEST, "c": SECOND, "e": BEST, "g": BEST, "f": SECOND}


@pytest.mark.parametrize("table_id", ["table3", "table5"])
def test_latex_compiles(tmp_path, table_id):
    if shutil.which("pdflatex") is None:
        pytest.skip("pdflatex not installed (apt-get install texlive-latex-recommended)")
    if table_id == "table5":
        _table5_by_cli(tmp_path)
    else:
        files = [write_eval(tmp_path / f"s{s}", "BSD100", {"psnr": 26.4 + s / 10, "niqe": 6.0}, model="swinir",
                            seed=s) for s in range(3)]
        files.append(write_eval(tmp_path / "bic", "BSD100", {"psnr": 25.96, "sam": 0.03}, model="bicubic"))
        _table(tmp_path, "table3", eval_files=files, extra_published=PUBLISHED / "bicubic_literature.csv",
               official_files={"swinir": write_eval(tmp_path / "off", "Set5", {"psnr": 30.7}, model="swinir")},
               absent_datasets={"Manga109": "Manga109 not in the data mirror"},
               footnotes=["profile: smoke & 100% of budget_s ~ #1 {x}", "hardware: 2 CPU cores"])
    doc = tmp_path / "doc.tex"
    doc.write_text("\\documentclass{article}\n\\usepackage{booktabs}\n\\begin{document}\n"
                   f"\\input{{{table_id}.tex}}\n\\end{{document}}\n")
    done = subprocess.run(["pdflatex", "-interaction=nonstopmode", "-halt-on-error", doc.name], cwd=tmp_path,
                          capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stdout[-3000:]
    assert (tmp_path / "doc.pdf").stat().st_size > 0
