"""The qualitative grid (the paper's Fig. 10): the same HR crop of every model's output, with whole-image PSNRs.

One row per image of a prepared SR set (``python -m repro prepare``: ``HR/`` and ``LR/``, read by
``repro.data.prepare.load_pairs``). Columns: the HR image with the crop box, Bicubic (optional), each model, the
ground-truth crop. The crop is chosen from the HR image alone (``repro.figures.crop.select_crop``) or given by hand,
and is the same for every model. Each model runs on the whole LR image (``repro.figures.models``), and the caption
under its crop is the PSNR of the whole image under the frozen SR protocol (``repro.metrics.get_protocol("sr")``:
BT.601 Y, a border of ``scale`` pixels cropped): the number the tables print for that image, not a PSNR of the crop.

The CSV beside the PNG has one row per (image, model): the crop window, the model, its checkpoint and weights, the
noise seed of stage-2 models and the PSNR with every digit.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from repro.data.io import ImageError, read_image
from repro.data.prepare import SRPair, load_pairs
from repro.data.registry import image_files
from repro.figures.crop import CropBox, crop_at, select_crop
from repro.figures.grid_draw import draw_grid
from repro.figures.models import RestorationModel, bicubic_model, load_model
from repro.figures.output import check_png_path, csv_beside, save_png, write_csv

CSV_COLUMNS = ("image", "column", "label", "model", "checkpoint", "weights", "seed", "scale", "crop_top", "crop_left",
               "crop_size", "psnr", "protocol")


@dataclass(frozen=True)
class Panel:
    """One model's crop of one image, and the whole-image PSNR under the protocol."""

    model: RestorationModel
    pixels: np.ndarray  # the uint8 crop of the model's output
    psnr: float


@dataclass(frozen=True)
class GridRow:
    """One image: the full HR image, its crop box, the models' panels and the ground-truth crop."""

    image: str
    hr: np.ndarray
    box: CropBox
    panels: list[Panel]

    @property
    def truth(self) -> np.ndarray:
        return self.box.of(self.hr)


def prepared_scale(prepared_dir: str | Path) -> int:
    """The SR scale of a prepared folder, from the sizes of its first HR/LR pair (``load_pairs`` then checks all)."""
    prepared_dir = Path(prepared_dir)
    lr_dir, hr_dir = prepared_dir / "LR", prepared_dir / "HR"
    if not lr_dir.is_dir() or not hr_dir.is_dir():
        raise ImageError(f"{prepared_dir}: not a prepared pair folder (needs HR/ and LR/)")
    files = image_files(lr_dir)
    if not files:
        raise ImageError(f"{lr_dir}: no images")
    lr, hr = read_image(files[0]), read_image(hr_dir / files[0].name)
    (lh, lw), (hh, hw) = lr.shape[:2], hr.shape[:2]
    if hh % lh or hw % lw or hh // lh != hw // lw:
        raise ImageError(f"{hr_dir / files[0].name}: HR {hw}x{hh} is no integer multiple of LR {lw}x{lh}; pass --scale")
    return hh // lh


def select_pairs(prepared_dir: str | Path, scale: int, images: Sequence[str]) -> list[SRPair]:
    """The pairs named ``images`` (file stems), in that order; an unknown name is an error listing the set's."""
    by_name = {p.name: p for p in load_pairs(prepared_dir, scale)}
    unknown = [name for name in images if name not in by_name]
    if unknown:
        raise ValueError(f"{prepared_dir}: no image {', '.join(map(repr, unknown))}; it has {', '.join(sorted(by_name))}")
    if len(set(images)) != len(images):
        raise ValueError(f"--images lists an image twice: {list(images)}")
    return [by_name[name] for name in images]


def build_rows(pairs: Sequence[SRPair], models: Sequence[RestorationModel], crop_size: int, *, scale: int,
               seed: int = 0, crop_origin: tuple[int, int] | None = None, device: str = "cpu") -> list[GridRow]:
    """Run every model on every pair and cut the same crop out of each output (see the module docstring).

    Args:
        crop_origin: (top, left) of the crop in HR pixels, the same for every image; default chosen per image.
    """
    from repro.metrics import get_protocol

    protocol = get_protocol("sr", scale=scale, metrics=("psnr",))
    rows = []
    for pair in pairs:
        try:
            box = (select_crop(pair.hr, crop_size) if crop_origin is None
                   else crop_at(pair.hr, crop_origin[0], crop_origin[1], crop_size))
        except ValueError as err:
            raise ValueError(f"image {pair.name}: {err}") from err
        panels = []
        for model in models:
            out = model.restore(pair.lr, gray=pair.hr.ndim == 2, seed=seed, device=device)
            panels.append(Panel(model=model, pixels=box.of(out), psnr=protocol.compute(out, pair.hr)["psnr"]))
        rows.append(GridRow(image=pair.name, hr=pair.hr, box=box, panels=panels))
    return rows


def csv_rows(rows: Sequence[GridRow], *, scale: int, seed: int, protocol: str) -> list[dict]:
    """The CSV's rows: one per (image, model), in the figure's order."""
    out = []
    for row in rows:
        for column, panel in enumerate(row.panels, start=1):  # column 0 is the HR image
            m = panel.model
            out.append({"image": row.image, "column": column, "label": m.label, "model": m.name,
                        "checkpoint": str(m.checkpoint) if m.checkpoint else "", "weights": m.weights or "",
                        "seed": seed if m.stochastic else "", "scale": scale, "crop_top": row.box.top,
                        "crop_left": row.box.left, "crop_size": row.box.size, "psnr": panel.psnr,
                        "protocol": protocol})
    return out


def grid_title(set_name: str, *, scale: int, crop_size: int, protocol: str, seed: int | None) -> str:
    """The figure's caption: what is shown, and which PSNR the numbers are."""
    noise = f"; stage-2 models with noise seed {seed}" if seed is not None else ""
    return (f"{set_name} x{scale}: {crop_size}x{crop_size} HR crops (red box). Under each crop: PSNR (dB) of the whole "
            f"image on the BT.601 Y channel with {scale} px cropped at each border (protocol {protocol}), as in the "
            f"tables{noise}.")


def make_grid(prepared_dir: str | Path, images: Sequence[str], crop_size: int, out_png: str | Path,
              models: Sequence[tuple[str, str]], *, bicubic: bool = False, scale: int | None = None, seed: int = 0,
              weights: str | None = None, crop_origin: tuple[int, int] | None = None,
              device: str = "cpu") -> tuple[Path, Path]:
    """Draw the grid and write its CSV; returns (PNG, CSV).

    Args:
        prepared_dir: a folder made by ``python -m repro prepare`` (HR/, LR/).
        images: file stems of the images to show, one row each, in this order.
        crop_size: side of the square HR crop.
        models: (label, source) per model column, ``source`` as ``repro.figures.models`` reads it.
        bicubic: add a Bicubic column before the models.
        scale: the SR scale; default read from the prepared folder's image sizes.
        seed: the noise seed of stage-2 models, the same for every image (``evaluate --seed``).
        weights: ``"raw"`` or ``"ema"`` for every checkpoint; default EMA where a file has it.
        crop_origin: (top, left) of a crop given by hand; default the most detailed window of each image.
    """
    from repro.metrics import get_protocol

    out_png = check_png_path(out_png)
    if not models and not bicubic:
        raise ValueError("the grid needs at least one --model (or --bicubic)")
    scale = prepared_scale(prepared_dir) if scale is None else scale
    pairs = select_pairs(prepared_dir, scale, images)
    # load every checkpoint before running any model: a bad file fails in seconds, not after the others have run
    columns = ([bicubic_model(scale, device=device)] if bicubic else []) + [
        load_model(label, source, scale, weights=weights, device=device) for label, source in models]
    rows = build_rows(pairs, columns, crop_size, scale=scale, seed=seed, crop_origin=crop_origin, device=device)
    protocol = get_protocol("sr", scale=scale, metrics=("psnr",)).name
    any_stochastic = any(m.stochastic for m in columns)
    title = grid_title(Path(prepared_dir).name, scale=scale, crop_size=crop_size, protocol=protocol,
                       seed=seed if any_stochastic else None)
    png = save_png(draw_grid(rows, title=title), out_png)
    table = write_csv(csv_beside(out_png), CSV_COLUMNS, csv_rows(rows, scale=scale, seed=seed, protocol=protocol))
    return png, table
