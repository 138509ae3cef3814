"""The qualitative inpainting grid (the paper's Fig. 9): masked input, every model's completion, the ground truth.

One row per image of a prepared inpainting set (``results/prepared/inpaint/<Set>/``: ``images/<stem>.png``,
``masks/<stem>.png`` with 255 in the hole). Columns: the masked input (the hole filled with one gray level, white by
default, as the title says), then each model's completed image as its evaluation saved it (the sidecar's
``save_images`` folder, ``<stem>.png``: the uint8 output with the known pixels pasted back, the image the metrics
were computed on), then the ground truth. Nothing is run here: the figure shows what the evaluation measured, and
the caption under each completion is that image's PSNR from the evaluation CSV (RGB, whole image, protocol
``inpaint-rgb-full-fp64``), the number behind Table 2's mean. A completion whose PSNR recomputed here differs from
the CSV's is reported as a warning (a folder that is not the one evaluated).

Each model is given as (label, evaluation CSV), e.g. ``results/eval/diffrwkvir_inpaint/seed0/Places365_inpaint.csv``;
its sidecar (the CSV with ``.json``) must be for the same set as the prepared folder (its ``dataset`` the folder's
name, or its ``prepared`` the folder). A missing
completion, one of another size than its image, or an image absent from an evaluation CSV is an error naming the
file.

The CSV beside the PNG has one row per panel, in the figure's order: image, row, column, the panel's kind
(``masked_input``, ``output``, ``ground_truth``), its label, the file shown, the PSNR (outputs only, every digit),
the hole's share of the image, and the evaluation CSV.
"""

from __future__ import annotations

import json
import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from repro.data.io import ImageError, as_rgb, read_image
from repro.figures.grid_draw import draw_cells
from repro.figures.output import check_png_path, csv_beside, save_png, write_csv

PROTOCOL = "inpaint-rgb-full-fp64"
CSV_COLUMNS = ("image", "row", "column", "panel", "label", "file", "psnr", "hole_ratio", "eval_csv", "protocol")
HOLE_FROM = 128  # a mask pixel at or above this is in the hole (the prepared masks are 0 / 255)
PSNR_SLACK = 1e-6  # dB: a recomputed PSNR further from the CSV's than this is not the evaluated image


@dataclass(frozen=True)
class Sample:
    """One image of the prepared set, its hole and their files."""

    name: str
    image: np.ndarray  # uint8 HxWx3
    hole: np.ndarray  # bool HxW
    image_file: Path

    @property
    def hole_ratio(self) -> float:
        return float(self.hole.mean())


@dataclass(frozen=True)
class ModelColumn:
    """One model's evaluation: its label, CSV, per-image PSNRs and the folder of its completed images."""

    label: str
    eval_csv: Path
    save_images: Path
    psnr: dict[str, float]


def load_samples(prepared_dir: str | Path, images: Sequence[str]) -> list[Sample]:
    """The images named ``images`` (file stems), in that order, with their masks."""
    prepared_dir = Path(prepared_dir)
    image_dir, mask_dir = prepared_dir / "images", prepared_dir / "masks"
    if not image_dir.is_dir() or not mask_dir.is_dir():
        raise ImageError(f"{prepared_dir}: not a prepared inpainting set (needs images/ and masks/)")
    if len(set(images)) != len(images):
        raise ValueError(f"--images lists an image twice: {list(images)}")
    available = sorted(p.stem for p in image_dir.glob("*.png"))
    unknown = [name for name in images if name not in available]
    if unknown:
        raise ValueError(f"{image_dir}: no image {', '.join(map(repr, unknown))}; it has {', '.join(available)}")
    samples = []
    for name in images:
        image = as_rgb(read_image(image_dir / f"{name}.png"))
        mask_file = mask_dir / f"{name}.png"
        mask = read_image(mask_file)
        mask = mask if mask.ndim == 2 else mask.max(axis=2)
        if mask.shape != image.shape[:2]:
            raise ImageError(f"{mask_file}: mask {mask.shape[1]}x{mask.shape[0]} does not match its image "
                             f"{image.shape[1]}x{image.shape[0]}")
        samples.append(Sample(name=name, image=image, hole=mask >= HOLE_FROM, image_file=image_dir / f"{name}.png"))
    return samples


def read_column(label: str, eval_csv: str | Path, prepared_dir: Path) -> ModelColumn:
    """A model's evaluation CSV and sidecar (``repro/evaluate_inpaint.py``), checked to be of the prepared set: the
    sidecar's ``dataset`` is the folder's name, or its ``prepared`` is that folder."""
    eval_csv = Path(eval_csv)
    sidecar = eval_csv.with_suffix(".json")
    for path in (eval_csv, sidecar):
        if not path.is_file():
            raise FileNotFoundError(f"{path}: evaluation of {label!r} not found")
    meta = json.loads(sidecar.read_text())
    same_folder = bool(meta.get("prepared")) and Path(meta["prepared"]).resolve() == prepared_dir.resolve()
    if meta.get("dataset") != prepared_dir.name and not same_folder:
        raise ValueError(f"{sidecar}: evaluated on {meta.get('dataset')!r}, the prepared set is {prepared_dir.name!r} "
                         f"({prepared_dir})")
    if not meta.get("save_images"):
        raise ValueError(f"{sidecar}: no 'save_images' folder recorded; re-run the evaluation to save the completions")
    table = pd.read_csv(eval_csv)
    if not {"image", "psnr"} <= set(table.columns):
        raise ValueError(f"{eval_csv}: needs the columns image and psnr")
    per_image = table[table["image"].astype(str) != "mean"]
    psnr = {str(image): float(value) for image, value in zip(per_image["image"], per_image["psnr"])}
    return ModelColumn(label=label, eval_csv=eval_csv, save_images=Path(meta["save_images"]), psnr=psnr)


def completion(column: ModelColumn, sample: Sample) -> tuple[np.ndarray, Path, float]:
    """(completed image, its file, PSNR from the evaluation CSV) of one model on one image."""
    from repro.metrics import psnr as psnr_of

    path = column.save_images / f"{sample.name}.png"
    if not path.is_file():
        raise FileNotFoundError(f"{path}: completed image of {sample.name!r} by {column.label!r} not found "
                                f"(save_images of {column.eval_csv})")
    out = read_image(path)
    if out.shape != sample.image.shape:
        h, w = sample.image.shape[:2]
        raise ImageError(f"{path}: completed image has shape {out.shape}, its image {sample.image_file} is "
                         f"{w}x{h} RGB {sample.image.shape}")
    if sample.name not in column.psnr:
        raise ValueError(f"{column.eval_csv}: no row for image {sample.name!r}")
    psnr = column.psnr[sample.name]
    again = psnr_of(out, sample.image)
    if not math.isclose(again, psnr, abs_tol=PSNR_SLACK):  # inf (a perfect completion) is close to inf
        warnings.warn(f"{path}: PSNR {again:.6f} dB, the evaluation CSV {column.eval_csv} says {psnr:.6f} dB; "
                      "this folder may not hold the evaluated images", stacklevel=2)
    return out, path, psnr


def masked_input(sample: Sample, hole_value: int = 255) -> np.ndarray:
    """The image with its hole filled with the gray level ``hole_value`` (what the network does not see)."""
    shown = sample.image.copy()
    shown[sample.hole] = hole_value
    return shown


def grid_title(set_name: str, hole_value: int) -> str:
    fill = {255: "white", 0: "black"}.get(hole_value, f"gray {hole_value}")
    return (f"{set_name} inpainting: masked input (holes shown {fill}), each model's completion as evaluated (known "
            f"pixels pasted back), ground truth. Under each completion: PSNR (dB) of the whole image on RGB (protocol "
            f"{PROTOCOL}), from the evaluation CSV; under the input: the hole's share of the image.")


def make_inpaint_grid(prepared_dir: str | Path, images: Sequence[str], out_png: str | Path,
                      models: Sequence[tuple[str, str | Path]], *, hole_value: int = 255) -> tuple[Path, Path]:
    """Draw the grid and write its CSV; returns (PNG, CSV).

    Args:
        prepared_dir: the prepared set (``images/``, ``masks/``); its name is the set's.
        images: file stems of the images to show, one row each, in this order.
        out_png: the figure; its CSV goes beside it.
        models: (label, evaluation CSV) per model column, in this order.
        hole_value: the gray level (0-255) the masked input shows in the hole.
    """
    out_png = check_png_path(out_png)
    if not models:
        raise ValueError("the grid needs at least one --model LABEL EVAL_CSV")
    if not 0 <= hole_value <= 255:
        raise ValueError(f"hole value {hole_value} is not a gray level 0-255")
    set_name = Path(prepared_dir).name
    samples = load_samples(prepared_dir, images)
    columns = [read_column(label, path, Path(prepared_dir)) for label, path in models]
    headers = ["Masked input", *(c.label for c in columns), "Ground truth"]
    cells, records = [], []
    for r, sample in enumerate(samples):
        row = [(masked_input(sample, hole_value), f"{sample.name}  (hole {sample.hole_ratio:.0%})")]
        records.append({"image": sample.name, "row": r, "column": 0, "panel": "masked_input", "label": headers[0],
                        "file": str(sample.image_file), "hole_ratio": sample.hole_ratio})
        for c, column in enumerate(columns, start=1):
            out, path, psnr = completion(column, sample)
            row.append((out, f"{psnr:.2f} dB"))
            records.append({"image": sample.name, "row": r, "column": c, "panel": "output", "label": column.label,
                            "file": str(path), "psnr": psnr, "hole_ratio": sample.hole_ratio,
                            "eval_csv": str(column.eval_csv), "protocol": PROTOCOL})
        row.append((sample.image, "reference"))
        records.append({"image": sample.name, "row": r, "column": len(headers) - 1, "panel": "ground_truth",
                        "label": headers[-1], "file": str(sample.image_file), "hole_ratio": sample.hole_ratio})
        cells.append(row)
    png = save_png(draw_cells(headers, cells, title=grid_title(set_name, hole_value)), out_png)
    return png, write_csv(csv_beside(out_png), CSV_COLUMNS, records)
