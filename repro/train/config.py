"""The resolved configuration of one training run: profile files + per-model overrides + ``--set`` overrides.

A run's config is a plain nested dict, written to the run folder as ``config.yaml``:

    model: <registry name>     scale: <int, 1 for inpainting>     stage1: <stage-1 run folder or null>
    model_args: {...}          keyword overrides for ``build_model`` (a profile's ``models.<name>.model``)
    train: {...}               the profile's ``train`` section, updated by ``train_inpaint`` for an inpainting
                               network, then by ``models.<name>.train``
    data_mirror, data_dir      where the training and validation sets are read

Profiles (``config/*.yaml``) are merged in the order given, later files winning key by key, so a recipe file can be
layered over a profile (``--config config/config.yaml --config config/recipes/official.yaml``).
"""

from __future__ import annotations

import ast
import copy
import hashlib
import json
from pathlib import Path

import yaml

# Keys that say where things are or how fast they run, not what is computed: a run resumed with other values is still
# the same run (a moved data mirror, more loader workers, a different validation cadence).
RUN_NEUTRAL = ("data_mirror", "data_dir", "train.workers", "train.val_every", "train.ckpt_every",
               "train.keep_checkpoints", "train.cache_dir", "train.log_every")


class ConfigError(ValueError):
    """A configuration that cannot be used; the message says which key or file and why."""


def _merge(base: dict, update: dict) -> dict:
    out = copy.deepcopy(base)
    for key, value in update.items():
        out[key] = _merge(out[key], value) if isinstance(value, dict) and isinstance(out.get(key), dict) else value
    return out


def merge_profiles(base: dict, update: dict) -> dict:
    """``update`` over ``base``, nested dicts merged key by key (what ``load_profiles`` does between files)."""
    return _merge(base, update)


def parse_profile_json(text: str) -> dict:
    """A profile given inline as a JSON object (``--profile-json``)."""
    try:
        data = json.loads(text)
    except json.JSONDecodeError as err:
        raise ConfigError(f"--profile-json: not valid JSON ({err})") from err
    if not isinstance(data, dict):
        raise ConfigError(f"--profile-json: expected a JSON object, got {type(data).__name__}")
    return data


def load_profiles(paths: list[str | Path]) -> dict:
    """Merge the YAML files ``paths`` in order (later wins, nested dicts merged key by key)."""
    merged: dict = {}
    for path in paths:
        path = Path(path)
        if not path.is_file():
            raise ConfigError(f"{path}: no such config file")
        try:
            data = yaml.safe_load(path.read_text()) or {}
        except yaml.YAMLError as err:
            raise ConfigError(f"{path}: not valid YAML ({err})") from err
        if not isinstance(data, dict):
            raise ConfigError(f"{path}: expected a mapping at the top level, got {type(data).__name__}")
        merged = _merge(merged, data)
    return merged


def resolve(profile: dict, *, model: str, scale: int, stage1: str | None = None) -> dict:
    """The run config of ``model`` at ``scale`` under ``profile`` (see the module docstring)."""
    if "train" not in profile:
        raise ConfigError("the config has no 'train' section (see config/config.yaml)")
    from repro import get_descriptor

    per_model = (profile.get("models") or {}).get(model) or {}
    unknown = set(per_model) - {"model", "train"}
    if unknown:
        raise ConfigError(f"models.{model}: unknown keys {sorted(unknown)}; expected 'model' and/or 'train'")
    train = profile["train"]
    if get_descriptor(model).task == "inpaint":  # its own data and recipe; no scale
        train, scale = _merge(train, profile.get("train_inpaint") or {}), 1
    return {
        "model": model, "scale": int(scale), "stage1": None if stage1 is None else str(stage1),
        "model_args": dict(per_model.get("model") or {}),
        "train": _merge(train, per_model.get("train") or {}),
        "data_mirror": profile.get("data_mirror"), "data_dir": profile.get("data_dir", "data"),
    }


def flatten(cfg: dict, prefix: str = "") -> dict[str, object]:
    """Dotted keys to leaf values: ``{"train": {"lr": 1}}`` -> ``{"train.lr": 1}``."""
    out = {}
    for key, value in cfg.items():
        dotted = f"{prefix}{key}"
        if isinstance(value, dict) and value:
            out.update(flatten(value, dotted + "."))
        else:
            out[dotted] = value
    return out


def parse_value(text: str) -> object:
    """A Python literal where it is one (``2e-4``, ``[1, 2]``, ``'uni'``), else YAML (``null``, ``true``, ``uni``).

    YAML alone reads ``2e-4`` as a string (YAML 1.1 floats need a dot), which is why literals come first.
    """
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError):
        return yaml.safe_load(text)


def apply_overrides(cfg: dict, items: list[str]) -> dict:
    """``key=value`` overrides (dotted keys for nested ones; values as ``parse_value`` reads them: ``train.lr=2e-4``).

    A key must exist in the resolved config, except under ``model_args``, which takes any keyword of the model's
    entry point (the model rejects the ones it does not know when it is built).
    """
    cfg = copy.deepcopy(cfg)
    valid = flatten(cfg)
    for item in items:
        key, sep, text = item.partition("=")
        if not sep or not key:
            raise ConfigError(f"--set expects key=value, got {item!r}")
        if key not in valid and not key.startswith("model_args."):
            raise ConfigError(f"--set {key}: unknown key; valid keys: {', '.join(sorted(valid))}")
        node = cfg
        *parents, leaf = key.split(".")
        for part in parents:
            node = node.setdefault(part, {})
        node[leaf] = parse_value(text)
    return cfg


def config_hash(cfg: dict) -> str:
    """sha256 of the config without its run-neutral keys: equal hashes mean the same run."""
    significant = {k: v for k, v in flatten(cfg).items() if k not in RUN_NEUTRAL}
    return hashlib.sha256(json.dumps(significant, sort_keys=True, default=str).encode()).hexdigest()[:16]


def differing_keys(a: dict, b: dict) -> list[str]:
    """The dotted keys (run-neutral ones left out) whose values differ between two configs."""
    fa, fb = flatten(a), flatten(b)
    return sorted(k for k in set(fa) | set(fb) if k not in RUN_NEUTRAL and fa.get(k) != fb.get(k))
