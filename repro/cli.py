"""``python -m repro <command>``: thin wrappers over the library, one per pipeline step."""

from __future__ import annotations

import argparse
import ast
import json
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
    from repro.evaluate import csv_in_folder, evaluate, format_means

    out_csv = args.out_csv if args.out_csv is not None else csv_in_folder(args.out, args.dataset, args.scale)
    result = evaluate(args.model, args.dataset, args.scale, out_csv, out_json=args.out_json, data_mirror=args.data_mirror,
                      data_dir=args.data_dir, prepared_dir=args.prepared, checkpoint=args.checkpoint,
                      overrides=_overrides(args.set), metric_weights=args.metric_weights, device=args.device,
                      tile=args.tile, metrics=tuple(args.metrics.split(",")) if args.metrics else None,
                      progress=not args.quiet)
    print(f"{args.model} {args.dataset} x{args.scale}: {format_means(result)}  -> {result.csv_path}")
    for metric, reason in result.missing.items():
        print(f"  {metric}: missing ({reason})")


def cmd_prepare(args) -> None:
    from repro.data.prepare import prepare_sr

    written = prepare_sr(args.dataset, args.scale, args.out, data_mirror=args.data_mirror, data_dir=args.data_dir)
    print(f"{args.dataset} x{args.scale}: checksums verified, {len(written)} pairs -> {args.out}")


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
    make_table(f"table{args.table}", eval_files=[Path(p) for p in args.eval], profile_files=[Path(p) for p in args.profile],
               published_dir=Path(args.published), tolerances=tolerances, out_csv=Path(args.out_csv),
               out_tex=Path(args.out_tex), extra_published=args.extra_published or None)
    print(f"table {args.table} -> {args.out_csv}, {args.out_tex}")


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
    p.add_argument("--model", required=True)
    p.add_argument("--dataset", required=True)
    p.add_argument("--scale", type=int, default=4)
    out = p.add_mutually_exclusive_group(required=True)
    out.add_argument("--out-csv", default=None, help="the per-image CSV to write (the sidecar goes beside it as .json)")
    out.add_argument("--out", default=None, metavar="DIR", help="by hand: writes DIR/<Dataset>_x<scale>.csv and .json")
    p.add_argument("--out-json", default=None, help="the JSON sidecar (default: the CSV path with a .json suffix)")
    p.add_argument("--prepared", default=None, help="a folder made by `prepare` (HR/, LR/) instead of degrading on the fly")
    p.add_argument("--checkpoint", default=None)
    p.add_argument("--metric-weights", default=None, help="folder with NIQE/LPIPS/FID weight files")
    p.add_argument("--device", default="cpu")
    p.add_argument("--tile", type=int, default=None, help="LR tile size for images that do not fit in memory")
    p.add_argument("--metrics", default=None, help="comma-separated subset of the protocol's metrics, e.g. psnr,ssim")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="model constructor override")
    p.add_argument("--quiet", action="store_true")
    data_args(p)
    threads_arg(p)
    p.set_defaults(func=cmd_evaluate)

    p = sub.add_parser("prepare", help="check an SR set's checksums, then write its HR/LR pairs")
    p.add_argument("--dataset", required=True)
    p.add_argument("--scale", type=int, default=4)
    p.add_argument("--out", required=True)
    data_args(p)
    threads_arg(p)
    p.set_defaults(func=cmd_prepare)

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
    p.add_argument("--out-csv", required=True)
    p.add_argument("--out-tex", required=True)
    p.set_defaults(func=cmd_table)

    args = parser.parse_args(argv)
    tune_cpu_allocator()
    use_threads(getattr(args, "threads", None))  # only the commands that compute (evaluate, prepare) take --threads
    try:
        args.func(args)
    except (OSError, ValueError, RuntimeError, KeyError) as err:
        print(f"error: {err}", file=sys.stderr)
        raise SystemExit(1) from err
