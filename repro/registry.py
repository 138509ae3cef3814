"""One registry for every network the harness trains or evaluates: DiffRWKVIR variants and the baselines.

A network is registered by a keyword-only entry-point function that returns an ``nn.Module`` (timm style), together
with a small descriptor (spandrel style) that tells the harness how to feed it. ``build_model`` attaches the
descriptor to the module it returns as ``model.descriptor``.

Conventions every registered network follows (the evaluation and training code rely on them):

- SR networks: ``forward(lq)`` takes RGB in [0, 1], shape [B, 3, h, w] of any size, and returns [B, 3, s*h, s*w]
  (not clamped). Padding to the size the network needs and cropping back happen inside ``forward``.
- Inpainting networks: ``lq`` is [B, 4, H, W] = cat(image * (1 - mask), mask) with mask 1 on holes; the output is
  the raw RGB prediction [B, 3, H, W] (the caller pastes the known pixels back).
- Two-stage diffusion networks (descriptor ``stage`` 1 or 2): ``forward(lq, gt=None)``; stage 1 needs ``gt``.
  They expose ``compute_losses(lq, gt, **extra) -> dict`` with a ``"total"`` entry; single-stage networks are
  trained on L1 by the caller.
"""

from __future__ import annotations

import dataclasses
import fnmatch
import importlib
import inspect
from collections.abc import Callable
from dataclasses import dataclass

from torch import nn

# Packages whose import registers entry points. Imported on first use so that `import repro` stays light.
_PROVIDERS = ("baselines", "models")


@dataclass(frozen=True)
class ModelDescriptor:
    """What the harness needs to know about a network, beyond its weights.

    Args:
        name: registry name, e.g. ``"swinir"``.
        family: architecture family, e.g. ``"swinir"`` for both ``swinir`` and ``swinir_light``.
        task: ``"sr"`` or ``"inpaint"``.
        scales: upscaling factors the architecture supports (``(1,)`` for inpainting).
        scale: the factor of this instance (set by ``build_model``).
        size_multiple: the input size the network pads to internally (1 if none).
        supports_bf16: whether bf16 autocast is safe for inference.
        stage: 1 or 2 for two-stage diffusion models, None otherwise.
        paper: the row label used in the paper's tables, e.g. ``"SwinIR[21]"``.
    """

    name: str
    family: str
    task: str = "sr"
    scales: tuple[int, ...] = (2, 3, 4)
    scale: int = 4
    size_multiple: int = 1
    supports_bf16: bool = True
    stage: int | None = None
    paper: str = ""


_REGISTRY: dict[str, tuple[Callable[..., nn.Module], ModelDescriptor]] = {}


def register_model(
    *,
    name: str,
    family: str,
    task: str = "sr",
    scales: tuple[int, ...] = (2, 3, 4),
    size_multiple: int = 1,
    supports_bf16: bool = True,
    stage: int | None = None,
    paper: str = "",
) -> Callable[[Callable[..., nn.Module]], Callable[..., nn.Module]]:
    """Decorator that registers a keyword-only entry point under ``name``."""
    if task not in ("sr", "inpaint"):
        raise ValueError(f"register_model({name!r}): task must be 'sr' or 'inpaint', got {task!r}")

    def decorate(fn: Callable[..., nn.Module]) -> Callable[..., nn.Module]:
        if name in _REGISTRY and _REGISTRY[name][0] is not fn:
            raise ValueError(f"model {name!r} is registered twice ({_REGISTRY[name][0].__module__} and {fn.__module__})")
        positional = [p.name for p in inspect.signature(fn).parameters.values()
                      if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
        if positional:
            raise TypeError(f"entry point {fn.__qualname__} must be keyword-only, has positional {positional}")
        desc = ModelDescriptor(name=name, family=family, task=task, scales=tuple(scales), scale=1 if task == "inpaint" else 4,
                               size_multiple=size_multiple, supports_bf16=supports_bf16, stage=stage, paper=paper)
        _REGISTRY[name] = (fn, desc)
        return fn

    return decorate


def _load_providers() -> None:
    for pkg in _PROVIDERS:
        importlib.import_module(pkg)


def list_models(pattern: str = "*", *, task: str | None = None) -> list[str]:
    """Registered names matching a shell-style ``pattern`` (and ``task``), sorted."""
    _load_providers()
    return sorted(n for n, (_, d) in _REGISTRY.items() if fnmatch.fnmatch(n, pattern) and (task is None or d.task == task))


def get_descriptor(name: str, **overrides) -> ModelDescriptor:
    """The descriptor ``build_model(name, **overrides)`` would attach, without building the network."""
    _load_providers()
    if name not in _REGISTRY:
        raise KeyError(f"unknown model {name!r}; registered: {', '.join(sorted(_REGISTRY))}")
    fn, desc = _REGISTRY[name]
    if desc.task == "inpaint":
        return desc
    params = inspect.signature(fn).parameters
    scale = overrides.get("scale", params["scale"].default if "scale" in params else desc.scale)
    if scale not in desc.scales:
        raise ValueError(f"model {name!r} supports scales {desc.scales}, not {scale}")
    return dataclasses.replace(desc, scale=int(scale))


def build_model(name: str, **overrides) -> nn.Module:
    """Build a registered network by name; keyword overrides go to its entry point.

    Example: ``build_model("swinir", scale=2)`` or ``build_model("diffrwkvir", scale=4, width=32)``.
    """
    desc = get_descriptor(name, **overrides)
    fn, _ = _REGISTRY[name]
    model = fn(**overrides)
    model.descriptor = desc
    return model
