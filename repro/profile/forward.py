"""Parameter count and forward time of registered networks, measured side by side in one run.

    python -m repro.profile.forward --scale 4 --size 64                 # every SR model at its default (paper) size
    python -m repro.profile.forward --models swinir diffir --repeats 5

Each model is built at its default configuration, warmed up once, then timed ``repeats`` times on the same random
LR input under ``torch.no_grad()``; the median is reported (``torch.cuda.synchronize`` around each call on GPU).
The models are interleaved round by round so that a background load on a shared machine hits all of them alike.
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from repro import build_model, get_descriptor, list_models
from repro.runtime import tune_cpu_allocator


def count_parameters(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def _timed(model: torch.nn.Module, inputs: tuple[torch.Tensor, ...]) -> float:
    if inputs[0].is_cuda:
        torch.cuda.synchronize()
    start = time.perf_counter()
    model(*inputs)
    if inputs[0].is_cuda:
        torch.cuda.synchronize()
    return time.perf_counter() - start


def profile_forward(names: list[str], *, scale: int, size: int, repeats: int, device: str = "cpu",
                    seed: int = 0) -> list[dict]:
    """One row per model: name, parameters, median and min forward seconds on a ``size`` x ``size`` input."""
    torch.manual_seed(seed)
    models, inputs = {}, {}
    for name in names:
        desc = get_descriptor(name, scale=scale)  # inpainting descriptors ignore the scale
        model = build_model(name) if desc.task == "inpaint" else build_model(name, scale=scale)
        models[name] = model.eval().to(device)
        channels = 4 if desc.task == "inpaint" else 3
        lq = torch.rand(1, channels, size, size, device=device)
        # a stage-1 model reads the ground truth too (its CPEN encodes it); time it with one
        gt = torch.rand(1, 3, size * desc.scale, size * desc.scale, device=device)
        inputs[name] = (lq, gt) if desc.stage == 1 else (lq,)
    times: dict[str, list[float]] = {name: [] for name in names}
    with torch.no_grad():
        for name in names:
            _timed(models[name], inputs[name])  # warm-up (allocations, lazy buffers)
        for _ in range(repeats):
            for name in names:
                times[name].append(_timed(models[name], inputs[name]))
    return [{"model": name, "params": count_parameters(models[name]), "median_s": statistics.median(times[name]),
             "min_s": min(times[name])} for name in names]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", nargs="*", default=None, help="registry names (default: every SR model)")
    parser.add_argument("--scale", type=int, default=4)
    parser.add_argument("--size", type=int, default=64, help="LR input height and width")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args(argv)
    tune_cpu_allocator()
    names = args.models or [n for n in list_models(task="sr") if args.scale in get_descriptor(n).scales]
    rows = profile_forward(names, scale=args.scale, size=args.size, repeats=args.repeats, device=args.device)
    print(f"{args.device}, {torch.get_num_threads()} threads, {args.size}x{args.size} input, x{args.scale}, "
          f"median of {args.repeats}")
    print(f"{'model':24s} {'params':>12s} {'median ms':>11s} {'min ms':>9s}")
    for r in rows:
        print(f"{r['model']:24s} {r['params']:12,d} {r['median_s'] * 1e3:11.1f} {r['min_s'] * 1e3:9.1f}")


if __name__ == "__main__":
    main()
