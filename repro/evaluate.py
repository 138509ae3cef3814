"""Per-image evaluation of a registered network on an SR benchmark, written as CSV (one row per image + a mean row).

Protocol (docs/protocol.md): HR cropped to a multiple of the scale, LR = MATLAB bicubic, the network output is
clamped and rounded to uint8, then measured by the frozen protocol of ``repro.metrics``. Grayscale images (Set14's
bridge) go through the network as three equal channels; the output's channel mean is their gray value, measured on
its own channel as the literature does.

What is evaluated: a registered network, with the weights of a checkpoint (``read_checkpoint``: the harness
trainer's, whose model name, scale and overrides then build the network, or an official BasicSR/KAIR one), raw or
EMA (``--weights``). Stage-2 diffusion networks start from noise, seeded per image (``--seed``); stage-1 networks
need the ground truth and are refused. How each image is fed: the plain forward or the authors' test procedure
(``--procedure``, ``repro.test_procedures``), optionally as an x8 self-ensemble; the uint8 outputs can be saved.

The caller names the output CSV (the workflow's rule does); the JSON sidecar defaults to the same path with a
``.json`` suffix, where ``repro.tables`` looks for it. Rows are appended to ``<csv stem>.partial.csv`` beside the CSV
as they are computed, so an interrupted run resumes where it stopped (for the same model, checkpoint file and
weights, seed, self-ensemble, procedure and protocol: the run key) instead of starting over.
"""

from __future__ import annotations

import csv
import json
import math
import pickle
import platform
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from repro import build_model, get_descriptor
from repro.data.io import as_rgb, read_image, write_png
from repro.data.manifest import sha256_file
from repro.data.prepare import SRPair, load_pairs, make_pair
from repro.data.registry import get_dataset, image_files, locate
from repro.test_procedures import PROCEDURES, official_procedure, self_ensemble_forward


@dataclass(frozen=True)
class OutputPaths:
    """Where one evaluation writes: the result files, and the partial ones it resumes from."""

    csv: Path
    json: Path
    partial_csv: Path
    partial_json: Path


def output_paths(out_csv: str | Path, out_json: str | Path | None = None) -> OutputPaths:
    """The files of an evaluation writing ``out_csv``; the one place their names are derived.

    Args:
        out_csv: the per-image CSV, ending in ``.csv``.
        out_json: the sidecar; default ``out_csv`` with a ``.json`` suffix (where ``repro.tables`` reads it).
    """
    out_csv = Path(out_csv)
    if out_csv.suffix != ".csv" or out_csv.is_dir():
        raise ValueError(f"{out_csv}: the evaluation output must be a .csv file path (got a folder or another suffix)")
    out_json = out_csv.with_suffix(".json") if out_json is None else Path(out_json)
    if out_json == out_csv:
        raise ValueError(f"{out_json}: the JSON sidecar cannot be the CSV itself")
    return OutputPaths(csv=out_csv, json=out_json, partial_csv=out_csv.with_suffix(".partial.csv"),
                       partial_json=out_csv.with_suffix(".partial.json"))


def csv_in_folder(out_dir: str | Path, dataset: str, scale: int) -> Path:
    """``<out_dir>/<Set>_x<scale>.csv``, the layout the workflow uses, for runs by hand (``--out DIR``)."""
    return Path(out_dir) / f"{get_dataset(dataset).name}_x{scale}.csv"


@dataclass(frozen=True)
class EvalResult:
    csv_path: Path
    json_path: Path
    means: dict[str, float]
    missing: dict[str, str]
    model: str = ""
    scale: int = 0


def to_tensor(img: np.ndarray) -> torch.Tensor:
    """uint8 HxW or HxWx3 -> float [1, 3, H, W] in [0, 1]."""
    return torch.from_numpy(as_rgb(img).astype(np.float32) / 255.0).permute(2, 0, 1).unsqueeze(0).contiguous()


def to_uint8(out: torch.Tensor, *, gray: bool) -> np.ndarray:
    """[1, 3, H, W] float -> uint8 HxWx3 (or HxW, the channel mean, for a grayscale reference)."""
    arr = out[0].detach().float().clamp(0, 1).mul(255).cpu().numpy().transpose(1, 2, 0).astype(np.float64)
    if gray:
        arr = arr.mean(axis=2)
    return np.floor(arr + 0.5).astype(np.uint8)


WEIGHTS = ("raw", "ema")


@dataclass(frozen=True)
class Checkpoint:
    """A checkpoint file, read once: its weights by kind and, for the harness's own, what it was trained as.

    Kinds: ``"harness"`` (the trainer's dict, ``{"format": 1, "model", "ema", "step", "model_name", "scale",
    "model_overrides", "config_hash"}``), ``"official"`` (BasicSR/KAIR: ``params_ema`` and/or ``params``),
    ``"state_dict"`` (a dict under ``state_dict``, or a bare state dict).

    ``weights`` maps ``"raw"``/``"ema"`` to (label for the sidecar, state dict) for those the file holds.
    """

    path: Path
    kind: str
    weights: dict[str, tuple[str, dict]]
    sha256: str
    step: int | None = None
    model_name: str | None = None
    scale: int | None = None
    model_overrides: dict | None = None
    config_hash: str | None = None
    train_seed: int | None = None

    @property
    def default_weights(self) -> str:
        """EMA where the file has it, else the raw weights."""
        return "ema" if "ema" in self.weights else "raw"

    def select(self, weights: str | None = None) -> tuple[str, dict]:
        """(label, state dict) of ``weights`` (``"raw"``, ``"ema"``, None: the default)."""
        weights = self.default_weights if weights is None else weights
        if weights not in WEIGHTS:
            raise ValueError(f"--weights must be one of {WEIGHTS}, got {weights!r}")
        if weights not in self.weights:
            have = ", ".join(label for label, _ in self.weights.values())
            raise ValueError(f"{self.path}: has no {weights} weights (it holds: {have})")
        return self.weights[weights]


def _is_state_dict(obj) -> bool:
    return isinstance(obj, dict) and bool(obj) and all(isinstance(v, torch.Tensor) for v in obj.values())


def _clean_state_dict(state: dict) -> dict:
    """Drop the wrapper a DataParallel/DDP model or an ``AveragedModel`` EMA adds (``module.`` keys, ``n_averaged``)."""
    state = {k: v for k, v in state.items() if k != "n_averaged"}
    if state and all(k.startswith("module.") for k in state):
        state = {k[len("module."):]: v for k, v in state.items()}
    return state


def _numpy_globals() -> list:
    """What unpickling a numpy array needs (the trainer's checkpoints hold numpy's RNG state): data, not code."""
    try:
        from numpy._core.multiarray import _reconstruct
    except ImportError:  # numpy < 2
        from numpy.core.multiarray import _reconstruct
    return [_reconstruct, np.ndarray, np.dtype, *{type(np.dtype(c)) for c in np.typecodes["All"]}]


def read_checkpoint(path: str | Path) -> Checkpoint:
    """Read a harness, official or bare checkpoint on the CPU.

    ``torch.load(weights_only=True)``, which rebuilds tensors, containers, numbers, strings and (for the trainer's
    RNG state) numpy arrays, but runs no code from the file.
    """
    path = Path(path)
    try:
        with torch.serialization.safe_globals(_numpy_globals()):
            obj = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as err:
        raise RuntimeError(f"{path}: holds objects that torch.load(weights_only=True) refuses to rebuild: {err}") from err
    sha = sha256_file(path)
    what = f"a {type(obj).__name__}"
    if isinstance(obj, dict):
        what = f"a dict with keys {', '.join(map(str, list(obj)[:8]))}"
    else:
        obj = {}
    if "format" in obj or isinstance(obj.get("model"), dict):
        if obj.get("format", 1) != 1:
            raise ValueError(f"{path}: harness checkpoint format {obj['format']!r}; this version reads format 1")
        if not isinstance(obj.get("model"), dict):
            raise ValueError(f"{path}: harness checkpoint without a 'model' state dict")
        weights = {"raw": ("raw", _clean_state_dict(obj["model"]))}
        if isinstance(obj.get("ema"), dict) and obj["ema"]:
            weights["ema"] = ("ema", _clean_state_dict(obj["ema"]))
        scale = obj.get("scale")
        return Checkpoint(path=path, kind="harness", weights=weights, sha256=sha, step=obj.get("step"),
                          model_name=obj.get("model_name"), scale=int(scale) if scale is not None else None,
                          model_overrides=dict(obj.get("model_overrides") or {}), config_hash=obj.get("config_hash"),
                          train_seed=((obj.get("config") or {}).get("train") or {}).get("seed"))
    official = {w: (f"official {key}", _clean_state_dict(obj[key]))
                for w, key in (("ema", "params_ema"), ("raw", "params")) if isinstance(obj.get(key), dict)}
    if official:
        return Checkpoint(path=path, kind="official", weights=official, sha256=sha)
    if isinstance(obj.get("state_dict"), dict):
        return Checkpoint(path=path, kind="state_dict", weights={"raw": ("state_dict", _clean_state_dict(obj["state_dict"]))},
                          sha256=sha)
    if _is_state_dict(obj):
        return Checkpoint(path=path, kind="state_dict", weights={"raw": ("bare state dict", _clean_state_dict(obj))},
                          sha256=sha)
    raise ValueError(f"{path}: not a checkpoint: no 'model', 'params_ema', 'params' or 'state_dict' entry, and not "
                     f"a state dict (it holds {what})")


def load_checkpoint(model: torch.nn.Module, path: str | Path | Checkpoint, *, weights: str | None = None) -> str:
    """Load a checkpoint saved by the harness ({'model', 'ema', ...}) or an official one ({'params_ema'|'params'}).

    Args:
        weights: ``"raw"`` or ``"ema"`` (official: ``params`` / ``params_ema``); default EMA where the file has it.

    Returns:
        the label of the weights loaded (``"ema"``, ``"raw"``, ``"official params_ema"``, ...).
    """
    ckpt = path if isinstance(path, Checkpoint) else read_checkpoint(path)
    label, state = ckpt.select(weights)
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as err:
        raise RuntimeError(f"{ckpt.path}: checkpoint ({label}) does not fit the model: {err}") from err
    return label


@dataclass(frozen=True)
class ModelSpec:
    """What to build: the registry name, the scale and the constructor overrides."""

    name: str
    scale: int
    overrides: dict


def resolve_model(model_name: str | None, scale: int | None, overrides: dict | None,
                  checkpoint: Checkpoint | None) -> ModelSpec:
    """The network to build; a harness checkpoint fills in what the caller leaves out (None).

    The model name and the overrides default to the checkpoint's ``model_name`` and ``model_overrides`` (its
    overrides only when the model is the checkpoint's own); the scale defaults to the checkpoint's, and a scale
    given that differs from it is an error. Without a harness checkpoint the model name is required, the scale
    defaults to 4 and the overrides to none.
    """
    harness = checkpoint is not None and checkpoint.kind == "harness"
    if model_name is None:
        if not harness or not checkpoint.model_name:
            raise ValueError("--model is required unless --checkpoint is a harness checkpoint that names its model")
        model_name = checkpoint.model_name
    if harness and checkpoint.scale is not None:
        if scale is not None and int(scale) != checkpoint.scale:
            raise ValueError(f"{checkpoint.path}: the checkpoint was trained at x{checkpoint.scale}, not x{scale}; "
                             f"pass --scale {checkpoint.scale} (or leave --scale out)")
        scale = checkpoint.scale
    if overrides is None:
        overrides = dict(checkpoint.model_overrides or {}) if harness and model_name == checkpoint.model_name else {}
    return ModelSpec(name=model_name, scale=4 if scale is None else int(scale), overrides=dict(overrides))


def tiled_forward(model: torch.nn.Module, lr: torch.Tensor, scale: int, *, tile: int, context: int = 16) -> torch.Tensor:
    """Run ``model`` on LR tiles of ``tile`` pixels, each with ``context`` extra pixels around it, keeping the centres.

    Exact for networks whose receptive field reaches at most ``context`` LR pixels (convolutional ones); for global
    networks (attention windows, 2D scans) each tile only sees its surroundings, so use the largest tile that fits.
    """
    _, _, h, w = lr.shape
    if tile <= 0 or context < 0:
        raise ValueError(f"tile must be positive and context non-negative, got tile={tile}, context={context}")
    if tile >= max(h, w):
        return model(lr)
    out = lr.new_zeros(lr.shape[0], 3, h * scale, w * scale)
    for y in range(0, h, tile):
        for x in range(0, w, tile):
            y0, x0 = max(y - context, 0), max(x - context, 0)
            y1, x1 = min(y + tile + context, h), min(x + tile + context, w)
            patch = model(lr[..., y0:y1, x0:x1])
            core_h, core_w = min(tile, h - y), min(tile, w - x)
            out[..., y * scale:(y + core_h) * scale, x * scale:(x + core_w) * scale] = patch[
                ..., (y - y0) * scale:(y - y0 + core_h) * scale, (x - x0) * scale:(x - x0 + core_w) * scale]
    return out


def _git_sha() -> str:
    try:
        return subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                              check=True, cwd=Path(__file__).parent).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def _versions() -> dict[str, str]:
    import pyiqa

    return {"python": platform.python_version(), "torch": torch.__version__, "pyiqa": pyiqa.__version__,
            "numpy": np.__version__}


def iter_pairs(dataset: str, scale: int, *, data_mirror, data_dir, prepared_dir) -> list[tuple[str, object]]:
    """(name, loader) per image; loaders read and degrade lazily so a large set never sits in memory."""
    if prepared_dir is not None:
        return [(p.name, (lambda p=p: p)) for p in load_pairs(prepared_dir, scale)]
    folder = locate(dataset, data_mirror=data_mirror, data_dir=data_dir)
    return [(f.stem, (lambda f=f: make_pair(read_image(f), scale, name=str(f)))) for f in image_files(folder)]


def _resume(paths: OutputPaths, run_key: dict, columns: list[str]) -> dict[str, dict]:
    """The rows a stopped run of the same ``run_key`` left in the partial CSV; otherwise start a fresh partial CSV."""
    if paths.partial_json.exists() and paths.partial_csv.exists() and json.loads(paths.partial_json.read_text()) == run_key:
        with open(paths.partial_csv) as fh:
            return {r["image"]: r for r in csv.DictReader(fh)}
    paths.partial_json.write_text(json.dumps(run_key))
    paths.partial_csv.write_text(",".join(columns) + "\n")
    return {}


def timing_record(forward_seconds: list[float]) -> dict:
    """The network's time per image for the sidecar (metrics excluded). Images resumed from a partial file were not
    timed: the median is over those run in this process."""
    return {"median": float(np.median(forward_seconds)) if forward_seconds else None,
            "total": float(np.sum(forward_seconds)), "n_timed": len(forward_seconds)}


def write_results(paths: OutputPaths, columns: list[str], rows: list[dict], means: dict, meta: dict) -> None:
    """The per-image CSV with its final ``mean`` row and the JSON sidecar; then the partial files of the run go."""
    with open(paths.csv, "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=columns)
        writer.writeheader()
        writer.writerows(rows)
        writer.writerow({"image": "mean", **means})
    paths.json.write_text(json.dumps(meta, indent=2, default=str) + "\n")
    paths.partial_csv.unlink()
    paths.partial_json.unlink()


def check_restoration_model(name: str, scale: int | None, overrides: dict, *, context: str = "evaluate",
                            task: str = "sr"):
    """The descriptor of a network that restores an image on its own; stage 1 and other tasks' networks are errors.

    Args:
        scale: the SR scale (None for inpainting).
        context: what the message starts with (the command or option that named the model).
        task: ``"sr"`` or ``"inpaint"``, what the caller evaluates.
    """
    desc = get_descriptor(name, **overrides, **({} if scale is None else {"scale": scale}))
    if desc.task != task:
        raise ValueError(f"{context}: {name!r} is a {desc.task} network; {task} evaluation needs an {task} network")
    if desc.stage == 1:
        raise ValueError(f"{context}: {name!r} is stage 1 of a two-stage model: its forward(lq, gt) encodes the ground "
                         "truth, so it is not a restoration model on its own; evaluate the stage-2 model instead")
    return desc


def evaluate(model_name: str | None, dataset: str, scale: int | None, out_csv: str | Path, *,
             out_json: str | Path | None = None, data_mirror: str | Path | None = None, data_dir: str | Path = "data",
             prepared_dir: str | Path | None = None, checkpoint: str | Path | Checkpoint | None = None,
             overrides: dict | None = None, weights: str | None = None, seed: int = 0, self_ensemble: bool = False,
             procedure: str = "harness", save_images: str | Path | None = None, metric_weights: str | Path | None = None,
             device: str = "cpu", tile: int | None = None, metrics: tuple[str, ...] | None = None,
             progress: bool = True) -> EvalResult:
    """Evaluate a network on ``dataset``; writes the per-image CSV and its JSON sidecar.

    Args:
        model_name, dataset, scale: what to evaluate (registry names, SR scale). With a harness checkpoint,
            ``model_name``, ``scale`` and ``overrides`` left None come from the checkpoint (``resolve_model``).
        out_csv: the per-image CSV to write (``csv_in_folder`` gives the workflow's layout).
        out_json: the sidecar; default ``out_csv`` with a ``.json`` suffix.
        prepared_dir: a folder made by ``prepare`` (HR/, LR/); without one the set is located and degraded here.
        checkpoint: a harness or official checkpoint file (or one read by ``read_checkpoint``).
        weights: ``"raw"`` or ``"ema"`` (official: ``params`` / ``params_ema``); default EMA where present.
        seed: stage-2 (diffusion) networks start from noise; each image's forward gets a generator seeded with it.
        self_ensemble: x8 self-ensemble over the dihedral transforms of the input.
        procedure: ``"harness"`` (the forward on the whole image) or ``"official"`` (the authors' test procedure,
            ``repro.test_procedures.OFFICIAL``).
        save_images: a folder for the uint8 outputs, ``<image>.png``.
        metrics: a subset of the protocol's metrics (default: all).
        tile: run large images in LR tiles of this size.
    """
    from repro.metrics import get_protocol

    spec = get_dataset(dataset)
    if spec.task != "sr":
        raise ValueError(f"evaluate: {spec.name} is a {spec.task} set; SR evaluation needs an SR set")
    if procedure not in PROCEDURES:
        raise ValueError(f"--procedure must be one of {PROCEDURES}, got {procedure!r}")
    if procedure == "official" and tile is not None:
        raise ValueError("--tile cannot be combined with --procedure official (the official procedure decides how an "
                         "image is fed to the network)")
    ckpt = checkpoint if isinstance(checkpoint, Checkpoint) or checkpoint is None else read_checkpoint(checkpoint)
    model_spec = resolve_model(model_name, scale, overrides, ckpt)
    model_name, scale, overrides = model_spec.name, model_spec.scale, model_spec.overrides
    desc = check_restoration_model(model_name, scale, overrides)
    stochastic = desc.stage == 2
    wrap, procedure_note = (lambda fwd: fwd), "the network's forward on the whole image"
    if procedure == "official":
        wrap, procedure_note = official_procedure(desc.family, scale)
    if weights is None and procedure == "official" and ckpt is not None and ckpt.kind == "official":
        # the official test scripts load `params` (BasicSR's param_key_g default, main_test_swinir.py), not the EMA
        weights = "raw"
    weights_label = ckpt.select(weights)[0] if ckpt is not None else None  # fails early on absent weights
    paths = output_paths(out_csv, out_json)
    for path in (paths.csv, paths.json):
        path.parent.mkdir(parents=True, exist_ok=True)
    stem = paths.csv.stem
    save_dir = Path(save_images) if save_images is not None else None

    model = build_model(model_name, scale=scale, **overrides)
    if ckpt is not None:
        weights_label = load_checkpoint(model, ckpt, weights=weights)
    model.eval().to(device)
    protocol = get_protocol("sr", scale=scale, metric_weights=metric_weights, device=device, metrics=metrics)
    columns = ["image", *protocol.metrics]
    checkpoint_info = None if ckpt is None else {
        "kind": ckpt.kind, "sha256": ckpt.sha256, "step": ckpt.step, "model_name": ckpt.model_name, "scale": ckpt.scale,
        "model_overrides": ckpt.model_overrides, "config_hash": ckpt.config_hash, "train_seed": ckpt.train_seed}
    run_key = {"model": model_name, "scale": scale, "overrides": overrides,
               "checkpoint": str(ckpt.path) if ckpt else None, "checkpoint_sha256": ckpt.sha256 if ckpt else None,
               "weights": weights_label, "seed": seed if stochastic else None, "self_ensemble": self_ensemble,
               "procedure": procedure, "protocol": protocol.name, "metrics": list(protocol.metrics), "tile": tile}
    run_key = json.loads(json.dumps(run_key, default=str))  # as it reads back from the partial JSON (tuples -> lists)

    done = _resume(paths, run_key, columns)

    pairs = iter_pairs(spec.name, scale, data_mirror=data_mirror, data_dir=data_dir, prepared_dir=prepared_dir)
    rows = []
    forward_seconds = []  # the network's time per image, metrics excluded (Fig. "PSNR against inference time")
    with open(paths.partial_csv, "a", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=columns)
        for name, load in tqdm(pairs, desc=f"{model_name} {stem}", disable=not progress, unit="img"):
            if name in done and (save_dir is None or (save_dir / f"{name}.png").exists()):
                rows.append({k: float(v) if k != "image" else v for k, v in done[name].items()})
                continue
            pair: SRPair = load()
            if stochastic:  # one generator per image: its output does not depend on the other images or on resuming
                generator = torch.Generator(device=device).manual_seed(seed)
                net = lambda x, g=generator: model(x, generator=g)
            else:
                net = model
            fwd = wrap(net if tile is None else (lambda x, net=net: tiled_forward(net, x, scale, tile=tile)))
            with torch.no_grad():
                lr = to_tensor(pair.lr).to(device)
                start = time.perf_counter()
                sr = self_ensemble_forward(fwd, lr) if self_ensemble else fwd(lr)
                if sr.is_cuda:
                    torch.cuda.synchronize(sr.device)
                forward_seconds.append(time.perf_counter() - start)
            out = to_uint8(sr, gray=pair.hr.ndim == 2)
            if save_dir is not None:
                write_png(save_dir / f"{name}.png", out)
            scores = protocol.compute(out, pair.hr)
            row = {"image": name, **{m: float(scores[m]) for m in protocol.metrics}}
            if name not in done:
                writer.writerow(row)
                fh.flush()
            rows.append(row)

    means, undefined = {}, {}
    for m in protocol.metrics:
        values = np.array([r[m] for r in rows], dtype=np.float64)
        # A metric can be undefined for some images (SAM of a grayscale image): the mean is over the others, and
        # the sidecar says which images were left out. A metric missing altogether stays NaN.
        means[m] = float(np.nanmean(values)) if not np.isnan(values).all() else math.nan
        if m not in protocol.missing and np.isnan(values).any():
            names = [r["image"] for r, v in zip(rows, values) if np.isnan(v)]
            undefined[m] = f"undefined for {len(names)} of {len(rows)} images ({', '.join(names)}); mean over the rest"
    meta = {"model": model_name, "dataset": spec.name, "scale": scale, "protocol": protocol.name,
            "n_images": len(rows), "missing": dict(protocol.missing), "undefined": undefined, "checkpoint": run_key["checkpoint"],
            "weights": weights_label, "step": ckpt.step if ckpt else None,
            "train_seed": ckpt.train_seed if ckpt else None, "n_params": sum(p.numel() for p in model.parameters()),
            "forward_seconds": timing_record(forward_seconds),
            "model_overrides": ckpt.model_overrides if ckpt else None, "checkpoint_info": checkpoint_info,
            "overrides": run_key["overrides"], "seed": run_key["seed"], "self_ensemble": self_ensemble,
            "procedure": procedure, "procedure_note": procedure_note,
            "save_images": str(save_dir) if save_dir is not None else None, "tile": tile, "device": device,
            "threads": torch.get_num_threads(), "git_sha": _git_sha(), "versions": _versions()}
    write_results(paths, columns, rows, means, meta)
    return EvalResult(csv_path=paths.csv, json_path=paths.json, means=means, missing=dict(protocol.missing),
                      model=model_name, scale=scale)


def format_means(result: EvalResult) -> str:
    def fmt(v: float) -> str:
        return "nan" if math.isnan(v) else f"{v:.4f}"

    return f"PSNR {fmt(result.means.get('psnr', math.nan))} dB  SSIM {fmt(result.means.get('ssim', math.nan))}"
