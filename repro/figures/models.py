"""The networks of a figure: what a ``--model LABEL SOURCE`` names, built and loaded as ``python -m repro evaluate`` does.

``SOURCE`` is either

- ``PATH``: a harness checkpoint (the trainer's), which names its model, scale and constructor overrides; or
- ``MODEL:PATH``: a registry name and a checkpoint holding only weights (official BasicSR/KAIR ``params_ema`` /
  ``params``, a ``state_dict``, a bare state dict), built with the registry's default constructor arguments.

``SOURCE`` is read as ``MODEL:PATH`` only when the text before the first colon is a registered model name, so a path
that merely contains a colon stays a path. A checkpoint that cannot be read, does not name its model, was trained at
another scale or does not fit the model's parameters is an error naming the file.

The output of an image is what evaluation measures (``repro.evaluate``): the forward on the whole LR image under
``torch.no_grad()``, clamped and rounded to uint8 by ``to_uint8``; a stage-2 (diffusion) network gets a generator
seeded with ``seed`` for every image, exactly as ``evaluate(seed=...)`` seeds it, so the figure shows the outputs the
tables measured.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from repro import build_model, list_models
from repro.evaluate import (
    Checkpoint,
    check_restoration_model,
    load_checkpoint,
    read_checkpoint,
    resolve_model,
    to_tensor,
    to_uint8,
)


@dataclass(frozen=True)
class RestorationModel:
    """A built network ready for inference, with what the figure's CSV records about it."""

    label: str
    name: str
    scale: int
    network: torch.nn.Module
    stochastic: bool  # stage 2: its forward draws noise from a generator
    checkpoint: Path | None = None
    weights: str | None = None  # the label of the weights loaded ("ema", "official params", ...)

    def restore(self, lr: np.ndarray, *, gray: bool, seed: int, device: str = "cpu") -> np.ndarray:
        """The uint8 output for one uint8 LR image (HxW for a gray reference, else HxWx3)."""
        with torch.no_grad():
            x = to_tensor(lr).to(device)
            if self.stochastic:  # one generator per image, as evaluation seeds it
                generator = torch.Generator(device=device).manual_seed(seed)
                out = self.network(x, generator=generator)
            else:
                out = self.network(x)
        return to_uint8(out, gray=gray)


def split_source(source: str) -> tuple[str | None, Path]:
    """``"MODEL:PATH"`` -> (MODEL, PATH) when MODEL is a registered name; otherwise (None, the whole text as a path)."""
    name, sep, rest = source.partition(":")
    if sep and rest and name in list_models():
        return name, Path(rest)
    return None, Path(source)


def _read(path: Path) -> Checkpoint:
    """``read_checkpoint``, with every failure to read the file turned into an error that names it."""
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such checkpoint file")
    try:
        return read_checkpoint(path)
    except Exception as err:  # torch.load on a damaged file raises almost anything (IndexError, EOFError, ...)
        if str(path) in str(err):
            raise
        # torch.load's own messages (a truncated zip, a text file) do not say which file they were reading
        raise ValueError(f"{path}: cannot be read as a checkpoint ({type(err).__name__}: {err})") from err


def load_model(label: str, source: str, scale: int, *, weights: str | None = None,
               device: str = "cpu") -> RestorationModel:
    """Build and load the network of ``--model LABEL SOURCE`` (see the module docstring) for SR at ``scale``.

    Args:
        weights: ``"raw"`` or ``"ema"`` (official: ``params`` / ``params_ema``); default EMA where the file has it.
    """
    name, path = split_source(source)
    ckpt = _read(path)
    if name is None and (ckpt.kind != "harness" or not ckpt.model_name):
        raise ValueError(f"{path}: {'a' if ckpt.kind != 'official' else 'an'} {ckpt.kind} checkpoint does not name its "
                         f"model; give it as MODEL:{path} (e.g. srcnn:{path})")
    spec = resolve_model(name, scale, None, ckpt)  # a harness checkpoint trained at another scale is refused here
    desc = check_restoration_model(spec.name, spec.scale, spec.overrides, context=f"--model {label}")
    network = build_model(spec.name, scale=spec.scale, **spec.overrides)
    weights_label = load_checkpoint(network, ckpt, weights=weights)  # "does not fit the model" names the file
    network.eval().to(device)
    return RestorationModel(label=label, name=spec.name, scale=spec.scale, network=network, stochastic=desc.stage == 2,
                            checkpoint=path, weights=weights_label)


def bicubic_model(scale: int, *, device: str = "cpu") -> RestorationModel:
    """The registry's parameter-free MATLAB-bicubic baseline, labelled as in the paper's tables."""
    network = build_model("bicubic", scale=scale).eval().to(device)
    return RestorationModel(label=network.descriptor.paper or "Bicubic", name="bicubic", scale=scale, network=network,
                            stochastic=False)
