"""``python -m repro profile``: one model's profile to JSON, or two models compared side by side.

    python -m repro profile --model diffrwkvir --scale 4 --preset paper --out results/profile/diffrwkvir_x4.json
    python -m repro profile --compare diffrwkvir diffir --input 64x64 --repeats 3 [--equal-params]

``add_arguments`` fills the subparser ``repro/cli.py`` creates; ``run`` executes the parsed arguments. Heavy imports
wait until ``run``, so that building the parser for another command stays cheap.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path


def add_arguments(p: argparse.ArgumentParser) -> None:
    """The options of ``python -m repro profile`` (``--threads`` is added by repro/cli.py, as for every command)."""
    what = p.add_mutually_exclusive_group(required=True)
    what.add_argument("--model", help="registry name, e.g. diffrwkvir")
    what.add_argument("--compare", nargs=2, metavar=("A", "B"), help="measure two models side by side (ratios A/B)")
    p.add_argument("--equal-params", action="store_true", help="with --compare: scale B's dim to A's parameter count")
    p.add_argument("--scale", type=int, default=4)
    size = p.add_mutually_exclusive_group()
    size.add_argument("--input", default=None, metavar="HxW", help="LR input height x width (default: a 1280x720 output)")
    size.add_argument("--preset", default=None, choices=["default", "paper"],
                      help="paper: LR 160x90 at x4 (640x360 output), Table 4's input")
    p.add_argument("--device", default="cpu", help="cpu or cuda[:i]")
    p.add_argument("--out", default=None, help="the JSON to write (required with --model)")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="constructor override (with --compare: applies to A)")
    p.add_argument("--model-config", default=None,
                   help="YAML mapping model name -> overrides (e.g. config/models/diffrwkvir_tiny.yaml); --set wins")
    p.add_argument("--warmup", type=int, default=1)
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--train-batch", type=int, default=2)
    p.add_argument("--train-patch", type=int, default=48, help="LR patch side of the training step")
    p.add_argument("--train-steps", type=int, default=None, help="steps for the extrapolated training time")
    p.add_argument("--eval-sets", nargs="*", default=None,
                   help="datasets for the extrapolated inference time (default: Set5 Set14 BSD100 Urban100 Manga109)")
    p.add_argument("--no-memory", action="store_true", help="skip the peak-memory measurement")
    p.add_argument("--ncu-timeout", type=float, default=1800.0)


def _overrides_for(name: str, model_config: str | None, items: list[str]) -> dict:
    from repro.cli import _overrides

    overrides = {}
    if model_config:
        import yaml

        overrides.update((yaml.safe_load(Path(model_config).read_text()) or {}).get(name) or {})
    return {**overrides, **_overrides(items)}


def _options(args):
    from repro.profile.report import DEFAULT_EVAL_SETS, Options

    sets = tuple(args.eval_sets) if args.eval_sets else DEFAULT_EVAL_SETS
    return Options(warmup=args.warmup, repeats=args.repeats, train_steps=args.train_steps, eval_sets=sets,
                   memory=not args.no_memory, ncu_timeout=args.ncu_timeout)


def _write(path: str, data: dict) -> None:
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_suffix(out.suffix + ".partial")
    tmp.write_text(json.dumps(data, indent=2) + "\n")
    tmp.replace(out)  # a job killed halfway leaves no file that looks finished


def run(args) -> None:
    """Execute ``python -m repro profile`` with parsed ``args``."""
    from repro import get_descriptor
    from repro.profile.inputs import resolve_input

    name = args.model or args.compare[0]
    task = get_descriptor(name, scale=args.scale).task
    lr_hw, preset = resolve_input(args.input, args.preset, args.scale if task == "sr" else 1)
    if args.compare:
        from repro.profile.compare import compare, format_compare

        a, b = args.compare
        result = compare((a, b), scale=args.scale, lr_hw=lr_hw, device=args.device, options=_options(args),
                         overrides=(_overrides_for(a, args.model_config, args.set), _overrides_for(b, args.model_config, [])),
                         equal_params=args.equal_params, train_batch=args.train_batch, train_patch=args.train_patch)
        if args.out:
            _write(args.out, result)
        print(format_compare(result))
        return
    if args.equal_params:
        raise ValueError("--equal-params applies to --compare only")
    if not args.out:
        raise ValueError("--out FILE.json is required with --model")
    from repro.profile.report import profile_model
    from repro.profile.schema import validate
    from repro.profile.summary import format_profile
    from repro.profile.workload import WorkloadSpec

    spec = WorkloadSpec(args.model, args.scale, lr_hw, _overrides_for(args.model, args.model_config, args.set),
                        args.device, args.train_batch, args.train_patch)
    result = profile_model(spec, _options(args), preset=preset)
    validate(result)
    _write(args.out, result)
    print(format_profile(result))
    print(f"-> {args.out}")
