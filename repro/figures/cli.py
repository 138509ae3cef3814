"""``python -m repro.figures <command>``: the figures of the reproduction, one command each.

grid (the paper's Fig. 10)::

    python -m repro.figures grid --prepared DIR --images NAME [NAME ...] --crop SIZE --out FILE.png [--bicubic]
        --model LABEL SOURCE [--model LABEL SOURCE ...] [--seed 0] [--scale S] [--crop-at TOP LEFT]
        [--weights raw|ema] [--device cpu] [--threads N]

  ``SOURCE`` is a harness checkpoint (it names its model) or ``MODEL:PATH`` for an official or bare one, e.g.
  ``--model SRCNN srcnn:weights/srcnn_x4.pth --model Ours results/train/diffrwkvir/x4/seed0/final.pt``.
  The workflow evaluates a stage-2 run of training seed k with ``--seed k``; pass the same to show those outputs.

inpaint-grid (the paper's Fig. 9)::

    python -m repro.figures inpaint-grid --prepared DIR --images NAME [NAME ...] --out FILE.png
        --model LABEL EVAL_CSV [--model LABEL EVAL_CSV ...] [--hole-value 255]

  ``DIR`` is a prepared inpainting set (``results/prepared/inpaint/<Set>``); ``EVAL_CSV`` an inpainting evaluation
  of that set (``results/eval/<model>/seed<k>/<Set>_inpaint.csv``), whose sidecar's ``save_images`` holds the
  completed images shown. Nothing is run: the grid shows the evaluated images and their PSNRs.

tradeoff::

    python -m repro.figures tradeoff --eval-json FILE.json [FILE.json ...] --dataset NAME [--scale S]
        --out-params FILE.png --out-time FILE.png

Each figure gets a CSV of its numbers beside it (the PNG's path with ``.csv``). Skipped results are reported as
``warning: ...`` lines on stderr; errors as one ``error: ...`` line and exit status 1.
"""

from __future__ import annotations

import argparse
import sys
import warnings

from repro.cli import positive_int, use_threads
from repro.runtime import tune_cpu_allocator


def cmd_grid(args) -> None:
    from repro.figures.grid import make_grid

    png, table = make_grid(args.prepared, args.images, args.crop, args.out, [tuple(m) for m in args.model],
                           bicubic=args.bicubic, scale=args.scale, seed=args.seed, weights=args.weights,
                           crop_origin=tuple(args.crop_at) if args.crop_at else None, device=args.device)
    print(f"grid: {len(args.images)} images x {len(args.model) + args.bicubic} models -> {png}, {table}")


def cmd_inpaint_grid(args) -> None:
    from repro.figures.inpaint_grid import make_inpaint_grid

    png, table = make_inpaint_grid(args.prepared, args.images, args.out, [tuple(m) for m in args.model],
                                   hole_value=args.hole_value)
    print(f"inpaint-grid: {len(args.images)} images x {len(args.model)} models -> {png}, {table}")


def cmd_tradeoff(args) -> None:
    from repro.figures.tradeoff import make_tradeoff

    written = make_tradeoff(args.eval_json, args.dataset, out_params=args.out_params, out_time=args.out_time,
                            scale=args.scale)
    for quantity, (png, table) in written.items():
        print(f"tradeoff ({quantity}): {png}, {table}")


def _warn_on_stderr(message, category, filename, lineno, file=None, line=None) -> None:
    # one plain line per skipped result, not Python's "file:line: Category" form
    print(f"warning: {message}", file=sys.stderr)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m repro.figures", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("grid", help="qualitative SR grid: the same HR crop of every model, whole-image PSNRs (Fig. 10)")
    p.add_argument("--prepared", required=True, metavar="DIR", help="a folder made by `python -m repro prepare` (HR/, LR/)")
    p.add_argument("--images", required=True, nargs="+", metavar="NAME", help="image names (file stems), one row each")
    p.add_argument("--crop", required=True, type=positive_int, metavar="SIZE", help="side of the square HR crop")
    p.add_argument("--crop-at", type=int, nargs=2, default=None, metavar=("TOP", "LEFT"),
                   help="put the crop here in every image (default: each image's window with the most gradient energy)")
    p.add_argument("--out", required=True, metavar="FILE.png", help="the figure; its CSV goes beside it (FILE.csv)")
    p.add_argument("--bicubic", action="store_true", help="add a Bicubic column (the registry's `bicubic`)")
    p.add_argument("--model", action="append", nargs=2, default=[], metavar=("LABEL", "SOURCE"),
                   help="a column: its caption and a harness checkpoint, or MODEL:PATH for an official or bare one "
                        "(e.g. srcnn:srcnn_x4.pth); repeat for more columns")
    p.add_argument("--seed", type=int, default=0,
                   help="noise seed of stage-2 models, the same for every image, as `evaluate --seed` (the workflow "
                        "passes a run's training seed)")
    p.add_argument("--scale", type=positive_int, default=None, help="SR scale (default: from the prepared images' sizes)")
    p.add_argument("--weights", choices=["raw", "ema"], default=None,
                   help="which weights of every checkpoint (default: EMA where a file has it)")
    p.add_argument("--device", default="cpu")
    p.add_argument("--threads", type=positive_int, default=None, help="torch intra-op threads (default: torch's)")
    p.set_defaults(func=cmd_grid)

    p = sub.add_parser("inpaint-grid", help="qualitative inpainting grid: masked input, each model's evaluated "
                                            "completion with its PSNR, ground truth (Fig. 9)")
    p.add_argument("--prepared", required=True, metavar="DIR",
                   help="a prepared inpainting set (images/, masks/), e.g. results/prepared/inpaint/Places365")
    p.add_argument("--images", required=True, nargs="+", metavar="NAME", help="image names (file stems), one row each")
    p.add_argument("--model", action="append", nargs=2, default=[], metavar=("LABEL", "EVAL_CSV"),
                   help="a column: its caption and the model's evaluation CSV of this set (its sidecar names the "
                        "folder of completed images); repeat for more columns")
    p.add_argument("--hole-value", type=int, default=255, metavar="0-255",
                   help="gray level of the hole in the masked input (default 255: white)")
    p.add_argument("--out", required=True, metavar="FILE.png", help="the figure; its CSV goes beside it (FILE.csv)")
    p.set_defaults(func=cmd_inpaint_grid)

    p = sub.add_parser("tradeoff", help="PSNR against parameters and against time per image, from evaluation sidecars")
    p.add_argument("--eval-json", required=True, nargs="+", metavar="FILE.json",
                   help="sidecars written by `python -m repro evaluate` (each beside its CSV)")
    p.add_argument("--dataset", required=True, help="plot only this set's results, e.g. Set5")
    p.add_argument("--scale", type=positive_int, default=None, help="plot only this scale (needed if there are several)")
    p.add_argument("--out-params", required=True, metavar="FILE.png", help="PSNR against parameters")
    p.add_argument("--out-time", required=True, metavar="FILE.png", help="PSNR against inference time per image")
    p.set_defaults(func=cmd_tradeoff)
    return parser


def main(argv: list[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    tune_cpu_allocator()
    use_threads(getattr(args, "threads", None))
    try:
        with warnings.catch_warnings():
            warnings.showwarning = _warn_on_stderr
            args.func(args)
    except (OSError, ValueError, RuntimeError, KeyError) as err:
        print(f"error: {err}", file=sys.stderr)
        raise SystemExit(1) from err
