"""One registry for every network the harness trains or evaluates: DiffRWKVIR variants and the baselines.

A network is registered by a keyword-only entry-point function that returns an ``nn.Module`` (timm style): it holds
the variant's default configuration and passes keyword overrides on. Beside it the registry keeps a small
descriptor (spandrel style) that tells the harness how to feed the network; ``build_model`` attaches it to the
module it returns as ``model.descriptor``.

The registry sits between the networks and the harness: ``models/`` and ``baselines/`` register into it, the harness
(``repro``) reads from it, and the registry imports neither. The harness names the packages whose import registers
entry points (``declare_providers``); they are imported on the first lookup, so that importing the harness stays light.

Conventions every registered network follows (the evaluation and training code rely on them):

- SR networks: ``forward(lq)`` takes RGB in [0, 1], shape [B, 3, h, w] of any size down to the descriptor's
  ``min_input_size``, and returns [B, 3, s*h, s*w] (not clamped). Padding and cropping back happen inside ``forward``.
- Inpainting networks: ``lq`` is [B, 4, H, W] = cat(image * (1 - mask), mask) with mask 1 on holes; the output is
  the raw RGB prediction [B, 3, H, W] (the caller pastes the known pixels back).
- Two-stage diffusion networks (descriptor ``stage`` 1 or 2): stage 1 is ``forward(lq, gt)`` (CPEN_s1 encodes the
  ground truth), stage 2 is ``forward(lq)`` like any other network. Both expose ``compute_losses(lq, gt, **extra)
  -> dict`` with a ``"total"`` entry (stage 2 takes the frozen stage-1 IPR as ``prior_s1``); single-stage networks
  are trained on L1 by the caller.
"""

from __future__ import annotations

import dataclasses
import fnmatch
import importlib
import inspect
from collections.abc import Callable
from dataclasses import dataclass

from torch import nn

TASKS = ("sr", "inpaint")
# "exact": the network is local (a finite receptive field, no image-wide statistic), so overlapping tiles give the
# whole-image output. "blend": image-wide operations (pooling, scans, size-dependent padding or windows), so tiled
# outputs differ from the whole-image one and tiles must be blended.
TILINGS = ("exact", "blend")


@dataclass(frozen=True)
class ModelDescriptor:
    """What the harness needs to know about a network, beyond its weights.

    Args:
        name: registry name, e.g. ``"swinir"``.
        family: architecture family, e.g. ``"swinir"`` for both ``swinir`` and ``swinir_light``.
        task: ``"sr"`` or ``"inpaint"``.
        scales: upscaling factors the architecture supports (``(1,)`` for inpainting).
        scale: the factor of this instance (set by ``build_model``).
        in_channels: channels of ``lq`` (3 for SR, 4 = masked RGB + mask for inpainting).
        size_multiple: the input size the network pads to internally (1 if none).
        min_input_size: smallest input side ``forward`` accepts.
        tiling: ``"exact"`` or ``"blend"`` (see ``TILINGS``).
        supports_bf16: whether bf16 autocast is safe for inference.
        stage: 1 or 2 for two-stage diffusion models, None otherwise.
        paper: the row label used in the paper's tables, e.g. ``"SwinIR[21]"``.
    """

    name: str
    family: str
    task: str = "sr"
    scales: tuple[int, ...] = (2, 3, 4)
    scale: int = 4
    in_channels: int = 3
    size_multiple: int = 1
    min_input_size: int = 1
    tiling: str = "blend"
    supports_bf16: bool = True
    stage: int | None = None
    paper: str = ""


# name -> (entry point, descriptor, {scale: size multiple} where the multiple depends on the scale)
_REGISTRY: dict[str, tuple[Callable[..., nn.Module], ModelDescriptor, dict[int, int]]] = {}
_PROVIDERS: list[str] = []


def register_model(*, family: str, name: str | None = None, task: str = "sr", scales: tuple[int, ...] = (2, 3, 4),
                   size_multiple: int | dict[int, int] = 1, min_input_size: int = 1, tiling: str = "blend", supports_bf16: bool = True,
                   stage: int | None = None, paper: str = "") -> Callable[[Callable[..., nn.Module]], Callable[..., nn.Module]]:
    """Decorator that registers a keyword-only entry point under ``name`` (default: the function's name).

    ``size_multiple`` is an int, or a mapping scale -> multiple for networks whose padding depends on the scale.
    The other arguments are the ``ModelDescriptor`` fields.
    """
    if task not in TASKS:
        raise ValueError(f"register_model({name!r}): task must be one of {TASKS}, got {task!r}")
    if tiling not in TILINGS:
        raise ValueError(f"register_model({name!r}): tiling must be one of {TILINGS}, got {tiling!r}")

    def decorate(fn: Callable[..., nn.Module]) -> Callable[..., nn.Module]:
        key = name or fn.__name__
        if key in _REGISTRY and _REGISTRY[key][0] is not fn:
            raise ValueError(f"model {key!r} is registered twice ({_REGISTRY[key][0].__module__} and {fn.__module__})")
        positional = [p.name for p in inspect.signature(fn).parameters.values()
                      if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
        if positional:
            raise TypeError(f"entry point {fn.__qualname__} must be keyword-only, has positional {positional}")
        inpaint = task == "inpaint"
        multiples = dict(size_multiple) if isinstance(size_multiple, dict) else {}
        _REGISTRY[key] = (fn, ModelDescriptor(
            name=key, family=family, task=task, scales=(1,) if inpaint else tuple(scales), scale=1 if inpaint else 4,
            in_channels=4 if inpaint else 3, size_multiple=multiples.get(4, 1) if multiples else size_multiple,
            min_input_size=min_input_size, tiling=tiling, supports_bf16=supports_bf16, stage=stage, paper=paper), multiples)
        return fn

    return decorate


def declare_providers(*packages: str) -> None:
    """Name packages whose import registers entry points; they are imported on the first lookup."""
    _PROVIDERS.extend(p for p in packages if p not in _PROVIDERS)


def _load_providers() -> None:
    for pkg in _PROVIDERS:
        importlib.import_module(pkg)


def list_models(pattern: str = "*", *, task: str | None = None) -> list[str]:
    """Registered names matching a shell-style ``pattern`` (and ``task``), sorted."""
    _load_providers()
    return sorted(n for n, (_, d, _) in _REGISTRY.items() if fnmatch.fnmatch(n, pattern) and (task is None or d.task == task))


def get_descriptor(name: str, **overrides) -> ModelDescriptor:
    """The descriptor ``build_model(name, **overrides)`` would attach, without building the network.

    This is where the scale is checked, once for every network: an SR scale outside the descriptor's ``scales``
    is an error that names them. Inpainting networks have no scale (``scales == (1,)``); a ``scale`` override is
    ignored for them.
    """
    _load_providers()
    if name not in _REGISTRY:
        raise KeyError(f"unknown model {name!r}; registered: {', '.join(sorted(_REGISTRY))}")
    fn, desc, multiples = _REGISTRY[name]
    if desc.task == "inpaint":
        return desc
    params = inspect.signature(fn).parameters
    scale = overrides.get("scale", params["scale"].default if "scale" in params else desc.scale)
    if scale not in desc.scales:
        raise ValueError(f"model {name!r} supports scales {desc.scales}, not {scale}")
    return dataclasses.replace(desc, scale=int(scale), size_multiple=multiples.get(scale, desc.size_multiple))


def build_model(name: str, **overrides) -> nn.Module:
    """Build a registered network by name; keyword overrides go to its entry point.

    Example: ``build_model("swinir", scale=2)`` or ``build_model("diffrwkvir", scale=4, width=32)``.
    """
    desc = get_descriptor(name, **overrides)
    fn = _REGISTRY[name][0]
    if desc.task == "inpaint":  # an inpainting network has no scale; callers that pass one for every model may
        overrides.pop("scale", None)
    model = fn(**overrides)
    model.descriptor = desc
    return model
