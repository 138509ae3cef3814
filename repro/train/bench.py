"""Training-step speed of the profile's models, side by side: ``python -m repro.train.bench [--config FILE ...]``.

Each model is built with its profile settings (``models.<name>.model``) and timed on random batches of the
profile's batch and LR patch size, one step (forward, backward, Adam) at a time; the models take turns, round after
round, so that a change in machine load shows in all of them alike. The peak resident memory of a step is measured
in a child process per model (the parent's peak would mix all of them).
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

import torch

from repro import build_model
from repro.runtime import tune_cpu_allocator
from repro.train.config import load_profiles, resolve
from repro.train.objective import Objective

REPO = Path(__file__).resolve().parents[2]
DEFAULT_MODELS = ("srcnn", "vdsr", "swinir_light", "hat_s", "mambair_light", "mambairv2_light", "diffir_s1",
                  "diffrwkvir_s1")


class Step:
    """One model with its optimizer and a fixed random batch; ``__call__`` runs one training step."""

    def __init__(self, cfg: dict, *, batch: int, patch: int) -> None:
        self.model = build_model(cfg["model"], scale=cfg["scale"], **cfg["model_args"]).train()
        self.objective = Objective(self.model, cfg["train"].get("loss", "l1"))
        self.optimizer = torch.optim.Adam(self.model.parameters(), lr=1e-4, betas=(0.9, 0.99))
        s = cfg["scale"]
        self.lq, self.gt = torch.rand(batch, 3, patch, patch), torch.rand(batch, 3, s * patch, s * patch)
        stage = self.model.descriptor.stage
        self.prior = torch.randn(batch, self.model.diffusion.ipr_dim) if stage == 2 else None
        self.params = sum(p.numel() for p in self.model.parameters())

    def __call__(self) -> float:
        start = time.perf_counter()
        terms = self.objective(self.lq, self.gt, self.prior)
        loss = terms["total"] if "total" in terms else sum(terms.values())
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.optimizer.step()
        return time.perf_counter() - start


def _configs(profiles: list[str], models: list[str], scale: int) -> dict[str, dict]:
    profile = load_profiles(profiles)
    return {m: resolve(profile, model=m, scale=scale) for m in models}


def peak_memory_mb(profiles: list[str], model: str, scale: int, batch: int, patch: int) -> float:
    """Peak resident memory (MiB) of a child process that builds ``model`` and runs two training steps."""
    # VmHWM, not ru_maxrss: Linux carries a process's ru_maxrss over exec, so a child would report its parent's peak
    code = ("import json, sys; from repro.train.bench import Step, _configs; "
            "from repro.profile.memory import peak_rss_bytes; "
            "a = json.loads(sys.argv[1]); cfg = _configs(a['profiles'], [a['model']], a['scale'])[a['model']]; "
            "step = Step(cfg, batch=a['batch'], patch=a['patch']); step(); step(); print(peak_rss_bytes())")
    args = json.dumps({"profiles": profiles, "model": model, "scale": scale, "batch": batch, "patch": patch})
    done = subprocess.run([sys.executable, "-c", code, args], cwd=REPO, capture_output=True, text=True, check=True)
    return int(done.stdout.split()[-1]) / 2**20


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m repro.train.bench", description=__doc__.split("\n")[0])
    parser.add_argument("--config", action="append", default=[], help="profiles over config/config.yaml")
    parser.add_argument("--models", nargs="*", default=list(DEFAULT_MODELS))
    parser.add_argument("--scale", type=int, default=4)
    parser.add_argument("--batch", type=int, default=None, help="default: the profile's train.batch")
    parser.add_argument("--patch", type=int, default=None, help="default: the profile's train.patch (LR)")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--no-memory", action="store_true", help="skip the child processes that measure memory")
    args = parser.parse_args(argv)
    tune_cpu_allocator()
    profiles = [str(REPO / "config" / "config.yaml"), *args.config]
    configs = _configs(profiles, args.models, args.scale)
    first = next(iter(configs.values()))["train"]
    batch, patch = args.batch or first["batch"], args.patch or first["patch"]
    steps = {m: Step(cfg, batch=batch, patch=patch) for m, cfg in configs.items()}
    for step in steps.values():  # warm-up: first-call costs (kernel builds, allocator) out of the timings
        step()
    times = {m: [] for m in steps}
    for _ in range(args.rounds):
        for m, step in steps.items():
            times[m].append(step())
    print(f"one training step, batch {batch}, LR patch {patch}x{patch}, x{args.scale}, "
          f"{torch.get_num_threads()} threads, median of {args.rounds}")
    print(f"{'model':<18}{'params':>12}{'s/step':>10}{'steps/s':>10}{'peak MiB':>10}")
    for m, step in steps.items():
        med = statistics.median(times[m])
        mem = "-" if args.no_memory else f"{peak_memory_mb(profiles, m, args.scale, batch, patch):.0f}"
        print(f"{m:<18}{step.params:>12,}{med:>10.3f}{1 / med:>10.2f}{mem:>10}")


if __name__ == "__main__":
    main()
