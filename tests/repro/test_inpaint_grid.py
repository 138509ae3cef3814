"""The inpainting grid (Fig. 9): it shows the completions an evaluation saved and the PSNRs its CSV holds.

Oracles: a synthetic prepared set and evaluation (files in the format of `repro/evaluate_inpaint.py`), PSNRs
computed here by 10 log10(255^2 / MSE) over all pixels and channels, and the grid's pixel layout (grid_draw).
"""

import csv
import json
import math

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from repro.data.io import read_image, write_png
from repro.figures import grid_draw
from repro.figures.cli import main
from repro.figures.inpaint_grid import load_samples, masked_input

SET = "Places365"


def _rows(path):
    with open(path) as fh:
        return list(csv.DictReader(fh))


def _psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)
    return float(10 * np.log10(255.0**2 / mse))


@pytest.fixture
def prepared(tmp_path):
    """`results/prepared/inpaint/Places365`: three 40x32 images, each with a rectangular hole (255 in the mask)."""
    rng = np.random.default_rng(0)
    root = tmp_path / "prepared" / "inpaint" / SET
    lines = ["image\tsource\thole_ratio"]
    for i, name in enumerate(("a", "b", "c")):
        image = rng.integers(0, 256, (32, 40, 3), dtype=np.uint8)
        mask = np.zeros((32, 40), np.uint8)
        mask[4 + i:16 + i, 8:24] = 255
        write_png(root / "images" / f"{name}.png", image)
        write_png(root / "masks" / f"{name}.png", mask)
        lines.append(f"{name}\t{name}.jpg\t{(mask == 255).mean()}")
    (root / "manifest.tsv").write_text("\n".join(lines) + "\n")
    return root


def _evaluate(tmp_path, prepared, model: str, shift: int) -> tuple:
    """An evaluation as `repro/evaluate_inpaint.py` writes it: completions (the hole filled, known pixels pasted
    back) in save_images, the CSV with per-image PSNRs and the mean row, the sidecar naming the folder."""
    folder = tmp_path / "results" / "eval" / model / "seed0"
    save = folder / f"{SET}_inpaint_images"
    rows = []
    for path in sorted((prepared / "images").glob("*.png")):
        image, hole = read_image(path), read_image(prepared / "masks" / path.name) == 255
        out = image.copy()
        out[hole] = np.clip(image[hole].astype(int) + shift, 0, 255).astype(np.uint8)
        write_png(save / path.name, out)
        rows.append({"image": path.stem, "psnr": _psnr(out, image), "ssim": 0.9, "lpips": 0.1, "fid": math.nan})
    means = {k: float(np.mean([r[k] for r in rows])) for k in ("psnr", "ssim", "lpips")}
    eval_csv = folder / f"{SET}_inpaint.csv"
    pd.DataFrame(rows + [{"image": "mean", **means, "fid": 12.0}]).to_csv(eval_csv, index=False)
    eval_csv.with_suffix(".json").write_text(json.dumps({
        "model": model, "dataset": SET, "scale": None, "protocol": "inpaint-rgb-full-fp64", "n_images": len(rows),
        "missing": {}, "fid": {"value": 12.0, "n_images": len(rows), "warning": "FID over 3 images: biased"},
        "train_seed": 0, "save_images": str(save), "git_sha": "0123abc"}))
    return eval_csv, save


def test_grid_shows_the_evaluated_completions_and_their_psnrs(prepared, tmp_path, capsys):
    ours, ours_dir = _evaluate(tmp_path, prepared, "diffrwkvir_inpaint", 20)
    diffir, _ = _evaluate(tmp_path, prepared, "diffir_inpaint", 60)
    out = tmp_path / "tables" / "figures" / f"fig9_{SET}.png"
    main(["inpaint-grid", "--prepared", str(prepared), "--images", "c", "a", "--model", "DiffIR", str(diffir),
          "--model", "Ours", str(ours), "--out", str(out)])
    assert "inpaint-grid: 2 images x 2 models" in capsys.readouterr().out

    # the PNG: 2 rows of 4 cells (masked input, DiffIR, Ours, ground truth) under a title of whole lines
    # (the layout's arithmetic itself is checked against the pixels by test_figures.py's SR grid)
    n_rows, n_cols = 2, 4
    assert Image.open(out).size in {(grid_draw.GridLayout(n_rows, n_cols, lines).width,
                                     grid_draw.GridLayout(n_rows, n_cols, lines).height) for lines in range(1, 6)}

    rows = _rows(out.with_suffix(".csv"))
    assert len(rows) == n_rows * n_cols
    assert [(r["image"], r["column"], r["panel"], r["label"]) for r in rows] == [
        (image, str(c), panel, label) for image in ("c", "a")
        for c, (panel, label) in enumerate([("masked_input", "Masked input"), ("output", "DiffIR"), ("output", "Ours"),
                                            ("ground_truth", "Ground truth")])]
    evaluated = {path: {r["image"]: float(r["psnr"]) for r in _rows(path)} for path in (ours, diffir)}
    for row in rows:
        hole = read_image(prepared / "masks" / f"{row['image']}.png") == 255
        assert float(row["hole_ratio"]) == hole.mean()
        if row["panel"] != "output":
            assert row["psnr"] == "" and row["file"] == str(prepared / "images" / f"{row['image']}.png")
            continue
        eval_csv = ours if row["label"] == "Ours" else diffir
        assert row["eval_csv"] == str(eval_csv) and row["protocol"] == "inpaint-rgb-full-fp64"
        assert float(row["psnr"]) == evaluated[eval_csv][row["image"]]  # the CSV's number, every digit
    assert rows[2]["file"] == str(ours_dir / "c.png")
    assert float(rows[1]["psnr"]) < float(rows[2]["psnr"])  # DiffIR's fill is further off


def test_masked_input_fills_only_the_hole(prepared):
    (sample,) = load_samples(prepared, ["b"])
    shown = masked_input(sample, hole_value=128)
    assert (shown[sample.hole] == 128).all() and (shown[~sample.hole] == sample.image[~sample.hole]).all()
    assert sample.hole.sum() == 12 * 16


def test_missing_or_wrong_completion_is_an_error_naming_the_file(prepared, tmp_path, capsys):
    ours, save = _evaluate(tmp_path, prepared, "diffrwkvir_inpaint", 20)
    out = tmp_path / "fig9.png"
    argv = ["inpaint-grid", "--prepared", str(prepared), "--images", "a", "b", "--model", "Ours", str(ours),
            "--out", str(out)]
    (save / "b.png").unlink()
    with pytest.raises(SystemExit):
        main(argv)
    err = capsys.readouterr().err
    assert err.startswith("error: ") and f"{save / 'b.png'}: completed image of 'b' by 'Ours' not found" in err
    assert not out.exists()

    write_png(save / "b.png", np.zeros((16, 40, 3), np.uint8))
    with pytest.raises(SystemExit):
        main(argv)
    assert f"{save / 'b.png'}: completed image has shape (16, 40, 3)" in capsys.readouterr().err

    other = tmp_path / "other" / "FFHQ_inpaint.csv"
    other.parent.mkdir()
    other.write_text(ours.read_text())
    other.with_suffix(".json").write_text(ours.with_suffix(".json").read_text().replace(SET, "FFHQ"))
    for extra, message in (
        (["--model", "X", str(other)], f"{other.with_suffix('.json')}: evaluated on 'FFHQ', the prepared set is"),
        (["--model", "X", str(tmp_path / "absent.csv")], f"{tmp_path / 'absent.csv'}: evaluation of 'X' not found"),
        (["--images", "nope"], "no image 'nope'; it has a, b, c"),
    ):
        with pytest.raises(SystemExit):
            main(argv + extra)
        assert message in capsys.readouterr().err, extra


def test_a_folder_that_is_not_the_evaluated_one_is_reported(prepared, tmp_path, capsys):
    ours, save = _evaluate(tmp_path, prepared, "diffrwkvir_inpaint", 20)
    image = read_image(save / "a.png").copy()
    image[0, 0] = 255 - image[0, 0]  # a known pixel changed: not what the CSV measured
    write_png(save / "a.png", image)
    main(["inpaint-grid", "--prepared", str(prepared), "--images", "a", "--model", "Ours", str(ours),
          "--out", str(tmp_path / "fig9.png")])
    assert f"warning: {save / 'a.png'}: PSNR" in capsys.readouterr().err
