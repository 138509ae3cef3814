"""Training checkpoints: everything a resumed run needs to continue bit for bit, written so that a half-written file
never counts.

A checkpoint is one ``torch.save``d dict (format 1):

    format, step, model_name, scale, model_overrides, config, config_hash
    model       the raw weights (state dict)          ema   the EMA weights, or None
    optimizer, scheduler, scaler                      state dicts
    rng         Python, numpy, torch CPU and CUDA generator states

The data order needs no state of its own: the sample of every step is a function of the seed and the step
(``repro.train.data``). BasicSR, KAIR, neosr and traiNNer-redux save no RNG state, and neosr keeps only the EMA
weights, so a resume there restarts the raw model from the EMA; here both are kept apart.
"""

from __future__ import annotations

import os
import random
import re
from pathlib import Path

import numpy as np
import torch

FORMAT = 1
_NUMBERED = re.compile(r"step_(\d+)\.pt$")


def rng_state() -> dict:
    return {"python": random.getstate(), "numpy": np.random.get_state(), "torch": torch.get_rng_state(),
            "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else []}


def restore_rng(state: dict) -> None:
    random.setstate(state["python"])
    np.random.set_state(state["numpy"])
    torch.set_rng_state(state["torch"])
    if state["cuda"] and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def save_atomic(obj: object, path: Path) -> None:
    """``torch.save`` to a temporary name in the same folder, then rename: readers see the old file or the new one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    torch.save(obj, tmp)
    os.replace(tmp, path)


def load(path: str | Path) -> dict:
    """A harness checkpoint; a clear error for anything else."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such checkpoint")
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=False)
    except Exception as err:  # a truncated or foreign file: say which
        raise ValueError(f"{path}: cannot read the checkpoint ({err})") from err
    if not isinstance(ckpt, dict) or ckpt.get("format") != FORMAT:
        raise ValueError(f"{path}: not a training checkpoint of this harness (format {FORMAT})")
    return ckpt


def numbered(folder: Path) -> list[Path]:
    """The numbered checkpoints ``step_<n>.pt`` in ``folder``, oldest first."""
    found = [(int(m.group(1)), p) for p in folder.glob("step_*.pt") if (m := _NUMBERED.search(p.name))]
    return [p for _, p in sorted(found)]


def save_numbered(ckpt: dict, folder: Path, *, keep: int) -> Path:
    """Write ``step_<n>.pt`` and ``last.pt`` (both atomically) and drop all but the newest ``keep`` numbered ones."""
    path = folder / f"step_{ckpt['step']:08d}.pt"
    save_atomic(ckpt, path)
    tmp = folder / f".last.pt.tmp{os.getpid()}"
    try:  # a hard link: last.pt costs no second write
        tmp.unlink(missing_ok=True)
        os.link(path, tmp)
        os.replace(tmp, folder / "last.pt")
    except OSError:
        save_atomic(ckpt, folder / "last.pt")
    for old in numbered(folder)[:-keep] if keep > 0 else []:
        old.unlink()
    return path
