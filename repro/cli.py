"""``python -m repro <command>``: thin wrappers over the library, one per pipeline step."""

from __future__ import annotations

import argparse
import ast
import json
import math
import sys
from pathlib import Path

from repro.runtime import tune_cpu_allocator


def _overrides(items: list[str]) -> dict:
    """``key=value`` pairs; values are Python literals where they parse (``width=32``, ``shift='uni'``)."""
    out = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise SystemExit(f"--set expects key=value, got {item!r}")
        try:
            out[key] = ast.literal_eval(value)
        except (ValueError, SyntaxError):
            out[key] = value
    return out


def positive_int(text: str) -> int:
    """argparse type for a count that must be at least one (``--threads``)."""
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")
    return value


def use_threads(threads: int | None) -> None:
    """Give torch ``threads`` intra-op threads (None: leave its default, OMP_NUM_THREADS or one per core).

    Called right after parsing, before a command loads a model or any data, so that all of its work runs with that
    count. A workflow passes its rule's ``threads`` here so that jobs running side by side share the cores instead of
    each taking all of them. numpy's BLAS (``imresize`` in ``prepare``) reads OPENBLAS_NUM_THREADS once, when numpy
    loads; Snakemake sets it from the same ``threads``.

    Args:
        threads: at least one, or None.
    """
    if threads is None:
        return
    import torch

    torch.set_num_threads(threads)


def cmd_evaluate(args) -> None:
    from repro.evaluate import csv_in_folder, evaluate, format_means, read_checkpoint, resolve_model

    ckpt = read_checkpoint(args.checkpoint) if args.checkpoint is not None else None
    overrides = _overrides(args.set) if args.set else None
    spec = resolve_model(args.model, args.scale, overrides, ckpt)  # a harness checkpoint names model, scale, overrides
    out_csv = args.out_csv if args.out_csv is not None else csv_in_folder(args.out, args.dataset, spec.scale)
    result = evaluate(spec.name, args.dataset, spec.scale, out_csv, out_json=args.out_json, data_mirror=args.data_mirror,
                      data_dir=args.data_dir, prepared_dir=args.prepared, checkpoint=ckpt, overrides=spec.overrides,
                      weights=args.weights, seed=args.seed, self_ensemble=args.self_ensemble, procedure=args.procedure,
                      save_images=args.save_images, metric_weights=args.metric_weights, device=args.device,
                      tile=args.tile, metrics=tuple(args.metrics.split(",")) if args.metrics else None,
                      progress=not args.quiet)
    print(f"{result.model} {args.dataset} x{result.scale}: {format_means(result)}  -> {result.csv_path}")
    for metric, reason in result.missing.items():
        print(f"  {metric}: missing ({reason})")


def cmd_prepare(args) -> None:
    from repro.data.prepare import prepare_sr

    written = prepare_sr(args.dataset, args.scale, args.out, data_mirror=args.data_mirror, data_dir=args.data_dir)
    print(f"{args.dataset} x{args.scale}: checksums verified, {len(written)} pairs -> {args.out}")


def cmd_prepare_inpaint(args) -> None:
    from repro.data.inpaint import prepare_inpaint_set

    manifest = prepare_inpaint_set(args.dataset, args.out, data_mirror=args.data_mirror, data_dir=args.data_dir,
                                   seed=args.seed)
    print(f"{args.dataset}: checksums verified, images and fixed masks -> {args.out} ({manifest})")


def cmd_evaluate_inpaint(args) -> None:
    from repro.evaluate import read_checkpoint
    from repro.evaluate_inpaint import evaluate_inpaint

    ckpt = read_checkpoint(args.checkpoint) if args.checkpoint is not None else None
    result = evaluate_inpaint(args.model, args.dataset, args.prepared, args.out_csv, out_json=args.out_json,
                              checkpoint=ckpt, overrides=_overrides(args.set) if args.set else None,
                              weights=args.weights, seed=args.seed, save_images=args.save_images,
                              metric_weights=args.metric_weights, device=args.device, progress=not args.quiet)
    shown = "  ".join(f"{m.upper()} {v:.4f}" for m, v in result.means.items() if not math.isnan(v))
    print(f"{result.model} {args.dataset}: {shown}  -> {result.csv_path}")
    for metric, reason in result.missing.items():
        print(f"  {metric}: missing ({reason})")


def cmd_datasets(args) -> None:
    from repro.data.registry import DATASETS, DatasetError, locate

    for name, spec in DATASETS.items():
        try:
            where = locate(name, data_mirror=args.data_mirror, data_dir=args.data_dir, download=False)
            status = f"ok      {where}"
        except DatasetError as err:
            status = "missing " + str(err).split(";")[0]
        print(f"{name:16s} {spec.task:8s} {status}")


def cmd_table(args) -> None:
    from repro.tables import make_table

    tolerances = json.loads(args.tolerances) if args.tolerances else None
    # unnamed files are named by their sidecar; --eval-as names the row (one file may serve several rows)
    evals = [Path(p) for p in args.eval] + [(name, Path(p)) for name, p in args.eval_as]
    make_table(f"table{args.table}", eval_files=evals, profile_files=[Path(p) for p in args.profile],
               published_dir=Path(args.published), tolerances=tolerances, out_csv=Path(args.out_csv),
               out_tex=Path(args.out_tex), extra_published=args.extra_published or None,
               official_files=[(model, Path(p)) for model, p in args.official],
               absent_datasets=dict(args.absent_dataset), footnotes=args.footnote,
               bicubic_eval=[Path(p) for p in args.bicubic_eval], dataset_as=dict(args.dataset_as))
    print(f"table {args.table} -> {args.out_csv}, {args.out_tex}")


def cmd_profile(args) -> None:
    from repro.profile.cli import run

    run(args)


DEFAULT_PROFILE = Path(__file__).resolve().parents[1] / "config" / "config.yaml"


def cmd_train(args) -> None:
    from repro.train.config import apply_overrides, load_profiles, merge_profiles, parse_profile_json, resolve
    from repro.train.loop import train

    # config/config.yaml first, as the Snakefile loads it: a profile such as smoke.yaml only overrides keys
    given = [Path(c) for c in args.config]
    profiles = [DEFAULT_PROFILE] + [c for c in given if c.resolve() != DEFAULT_PROFILE]
    profile = load_profiles(profiles)
    if args.profile_json is not None:
        profile = merge_profiles(profile, parse_profile_json(args.profile_json))
    cfg = resolve(profile, model=args.model, scale=args.scale, stage1=args.stage1)
    cfg = apply_overrides(cfg, args.set)
    if args.restart_on_change and args.resume != "auto":
        raise SystemExit("--restart-on-change applies to --resume auto only")
    last = train(cfg, args.out, resume=args.resume, stop_at=args.stop_at, force=args.force, device=args.device,
                 progress=not args.quiet, on_config_change="restart" if args.restart_on_change else "error")
    print(f"train {args.model} x{args.scale} -> {last}")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m repro", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    def data_args(p):
        p.add_argument("--data-mirror", default=None, help="read-only folder laid out as <Set>/HR/... (e.g. ../shared/datasets)")
        p.add_argument("--data-dir", default="data", help="where downloaded sets go")

    def threads_arg(p):
        p.add_argument("--threads", type=positive_int, default=None,
                       help="torch intra-op threads (default: torch's, one per core); the workflow passes its rule's threads")

    p = sub.add_parser("evaluate", help="per-image metrics of a model on a benchmark -> CSV")
    p.add_argument("--model", default=None,
                   help="registry name (default: the one a harness --checkpoint was trained as; required otherwise)")
    p.add_argument("--dataset", required=True)
    p.add_argument("--scale", type=int, default=None,
                   help="SR scale (default: a harness checkpoint's, else 4; must equal the checkpoint's)")
    out = p.add_mutually_exclusive_group(required=True)
    out.add_argument("--out-csv", default=None, help="the per-image CSV to write (the sidecar goes beside it as .json)")
    out.add_argument("--out", default=None, metavar="DIR", help="by hand: writes DIR/<Dataset>_x<scale>.csv and .json")
    p.add_argument("--out-json", default=None, help="the JSON sidecar (default: the CSV path with a .json suffix)")
    p.add_argument("--prepared", default=None, help="a folder made by `prepare` (HR/, LR/) instead of degrading on the fly")
    p.add_argument("--checkpoint", default=None,
                   help="the harness trainer's checkpoint, an official one ({params_ema, params}) or a state dict")
    p.add_argument("--weights", choices=["raw", "ema"], default=None,
                   help="which weights of the checkpoint (official: params / params_ema); default ema where present, "
                        "but params for an official file under --procedure official")
    p.add_argument("--seed", type=int, default=0, help="noise seed of stage-2 (diffusion) models, the same for every image")
    p.add_argument("--self-ensemble", action="store_true", help="x8 self-ensemble over flips and rotations of the input")
    p.add_argument("--procedure", choices=["harness", "official"], default="harness",
                   help="feed each image whole (harness) or as the authors' test code does (official: MambaIR splits "
                        "LR sides >= 200 px into overlapping pieces; SwinIR, HAT: same as harness)")
    p.add_argument("--save-images", default=None, metavar="DIR", help="also write the uint8 outputs as DIR/<image>.png")
    p.add_argument("--metric-weights", default=None, help="folder with NIQE/LPIPS/FID weight files")
    p.add_argument("--device", default="cpu")
    p.add_argument("--tile", type=int, default=None, help="LR tile size for images that do not fit in memory")
    p.add_argument("--metrics", default=None, help="comma-separated subset of the protocol's metrics, e.g. psnr,ssim")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="model constructor override")
    p.add_argument("--quiet", action="store_true")
    data_args(p)
    threads_arg(p)
    p.set_defaults(func=cmd_evaluate)

    p = sub.add_parser("train", help="train a registered network (stage 1 or 2 of the two-stage models) -> run folder")
    p.add_argument("--model", required=True)
    p.add_argument("--scale", type=int, default=4)
    p.add_argument("--config", action="append", default=[], metavar="FILE",
                   help="profile(s) merged over config/config.yaml in order, e.g. config/smoke.yaml")
    p.add_argument("--profile-json", default=None, metavar="JSON",
                   help="a profile as a JSON object, merged after the --config files (the workflow passes its merged "
                        "config this way, so that a job's command line says everything it trains with)")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="override a key of the resolved config (dotted: train.lr=2e-4, model_args.width=32)")
    p.add_argument("--out", required=True, metavar="DIR", help="the run folder")
    p.add_argument("--resume", default=None, metavar="auto|PATH", help="continue from the last checkpoint or PATH")
    p.add_argument("--stop-at", type=positive_int, default=None, metavar="N",
                   help="end after step N with a checkpoint (the schedule is unchanged)")
    p.add_argument("--force", action="store_true", help="resume although the config differs from the checkpoint's")
    p.add_argument("--restart-on-change", action="store_true",
                   help="with --resume auto: when the last checkpoint was made with another config, move the run's "
                        "checkpoints aside (checkpoints.<old config hash>/) and start afresh instead of failing")
    p.add_argument("--stage1", default=None, metavar="DIR", help="stage 2: the finished stage-1 run folder")
    p.add_argument("--device", default="cpu")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    threads_arg(p)
    p.set_defaults(func=cmd_train)

    p = sub.add_parser("prepare", help="check an SR set's checksums, then write its HR/LR pairs")
    p.add_argument("--dataset", required=True)
    p.add_argument("--scale", type=int, default=4)
    p.add_argument("--out", required=True)
    data_args(p)
    threads_arg(p)
    p.set_defaults(func=cmd_prepare)

    p = sub.add_parser("prepare-inpaint", help="check an inpainting set, fix its masks -> images/, masks/, manifest.tsv")
    p.add_argument("--dataset", required=True, help="a Table 2 set: Places365, CelebA-HQ or FFHQ (the Mural stand-in)")
    p.add_argument("--out", required=True)
    p.add_argument("--seed", type=int, default=0, help="the draw of the masks the set does not bring (CelebA-HQ)")
    data_args(p)
    threads_arg(p)
    p.set_defaults(func=cmd_prepare_inpaint)

    p = sub.add_parser("evaluate-inpaint", help="per-image PSNR/SSIM/LPIPS and FID of an inpainting model -> CSV")
    p.add_argument("--model", default=None, help="registry name (default: the harness checkpoint's)")
    p.add_argument("--dataset", required=True, help="the Table 2 set the prepared folder holds")
    p.add_argument("--prepared", required=True, help="a folder made by prepare-inpaint")
    p.add_argument("--out-csv", required=True)
    p.add_argument("--out-json", default=None)
    p.add_argument("--checkpoint", default=None)
    p.add_argument("--weights", choices=["raw", "ema"], default=None)
    p.add_argument("--seed", type=int, default=0, help="noise seed of stage-2 (diffusion) models, the same for every image")
    p.add_argument("--save-images", default=None, metavar="DIR",
                   help="where the completed images go (default: <csv stem>_images/ beside the CSV)")
    p.add_argument("--metric-weights", default=None, help="folder with the LPIPS and FID weight files")
    p.add_argument("--device", default="cpu")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="model constructor override")
    p.add_argument("--quiet", action="store_true")
    threads_arg(p)
    p.set_defaults(func=cmd_evaluate_inpaint)

    p = sub.add_parser("datasets", help="list the registered datasets and whether they are available")
    data_args(p)
    p.set_defaults(func=cmd_datasets)

    p = sub.add_parser("table", help="join reproduced results with the published ones -> CSV and LaTeX")
    p.add_argument("--table", required=True, type=int, choices=[2, 3, 4, 5])
    p.add_argument("--eval", nargs="*", default=[], help="evaluation CSVs (their .json sidecars are read too)")
    p.add_argument("--profile", nargs="*", default=[], help="profile JSONs (Table 4)")
    p.add_argument("--published", default="tables/published")
    p.add_argument("--tolerances", default=None, help='per-metric tolerances as JSON, e.g. \'{"psnr": {"abs": 0.06}, "default": {"rel": 0.05}}\'')
    p.add_argument("--extra-published", nargs="*", default=[],
                   help="published rows the paper lacks, e.g. tables/published/bicubic_literature.csv")
    p.add_argument("--eval-as", nargs=2, action="append", default=[], metavar=("NAME", "FILE"),
                   help="an evaluation CSV as the row NAME: a model, or [model:]component=variant for Table 5 "
                        "(repeatable; files of one row that differ in their seed are averaged)")
    p.add_argument("--official", nargs=2, action="append", default=[], metavar=("MODEL", "FILE"),
                   help="an evaluation CSV of MODEL run with its authors' checkpoint: row MODEL_official, compared "
                        "with MODEL's published numbers (repeatable)")
    p.add_argument("--absent-dataset", nargs=2, action="append", default=[], metavar=("NAME", "REASON"),
                   help="why dataset NAME has no results; the reason of its missing cells (repeatable)")
    p.add_argument("--dataset-as", nargs=2, action="append", default=[], metavar=("DATASET", "PAPER_DATASET"),
                   help="show the results on DATASET in the paper's PAPER_DATASET block, labelled as a stand-in, e.g. "
                        "--dataset-as FFHQ Mural for Table 2 (Mural is not public) (repeatable)")
    p.add_argument("--footnote", action="append", default=[], metavar="TEXT",
                   help="a line for the LaTeX footer, e.g. the profile, training budget or hardware (repeatable)")
    p.add_argument("--bicubic-eval", nargs="*", default=[],
                   help="Bicubic evaluation CSVs, read only as the SAM reference of the consistency check (Table 5)")
    p.add_argument("--out-csv", required=True)
    p.add_argument("--out-tex", required=True)
    p.set_defaults(func=cmd_table)

    from repro.profile.cli import add_arguments as profile_arguments  # argparse only; the work imports on use

    p = sub.add_parser("profile", help="parameters, FLOPs, time, memory of a model (Table 4) -> JSON; or --compare A B")
    profile_arguments(p)
    threads_arg(p)
    p.set_defaults(func=cmd_profile)

    args = parser.parse_args(argv)
    tune_cpu_allocator()
    use_threads(getattr(args, "threads", None))  # only the commands that compute (evaluate, prepare) take --threads
    try:
        args.func(args)
    except (OSError, ValueError, RuntimeError, KeyError) as err:
        print(f"error: {err}", file=sys.stderr)
        raise SystemExit(1) from err
