"""One trainer for every registered network: single-stage SR models, and the two stages of DiffIR and DiffRWKVIR
for SR and for inpainting (``repro.train.data_inpaint``: crops with free-form and irregular masks).

``train(cfg, out_dir, ...)`` runs the schedule of ``cfg["train"]`` (see config/config.yaml) from step 0 or from a
checkpoint. A step is one optimizer update on a global batch; the data of step t is a function of the seed and t
(``repro.train.data``), so a run stopped after step N and resumed gives the weights of an uninterrupted run.

The run folder (``out_dir``): ``config.yaml`` (resolved), ``env.json``, ``metrics.csv`` (a row per logged step),
``tb/`` (TensorBoard), ``checkpoints/step_<n>.pt`` and ``last.pt``, ``best.pt`` (best validation PSNR) and
``final.pt`` when the schedule is done.
"""

from __future__ import annotations

import copy
import json
import math
import platform
import signal
import sys
import time
from pathlib import Path

import numpy as np
import torch
import yaml
from torch import nn

from repro import build_model
from repro.train import checkpoint, distributed
from repro.train.config import config_hash, differing_keys
from repro.train.ema import EMA
from repro.train.log import MetricsLog, tensorboard
from repro.train.objective import Objective
from repro.train.validate import validate


class TrainingError(RuntimeError):
    """A run that cannot start or continue; the message says why and what to do."""


def load_teacher(stage1_dir: str | Path, device: torch.device) -> tuple[nn.Module, dict]:
    """The frozen stage-1 model of a finished stage-1 run (its EMA weights when it kept them) and its checkpoint."""
    path = Path(stage1_dir) / "final.pt"
    if not path.is_file():
        raise TrainingError(f"{stage1_dir}: no final.pt; the stage-1 run has not finished (train it to the end first)")
    ckpt = checkpoint.load(path)
    teacher = build_model(ckpt["model_name"], scale=ckpt["scale"], **ckpt["model_overrides"])
    if teacher.descriptor.stage != 1:
        raise TrainingError(f"{path}: holds {ckpt['model_name']}, not a stage-1 model")
    teacher.load_state_dict(ckpt["ema"] if ckpt["ema"] is not None else ckpt["model"])
    teacher.eval().requires_grad_(False).to(device)
    return teacher, ckpt


# What an inpainting run does not minimise, and why: LaMa-style training adds these to L1 (LaMa's lama-fourier
# recipe: an R1 non-saturating PatchGAN loss, feature matching, and a perceptual loss on an ADE20k-pretrained
# ResNet-50, whose weights are not available offline).
INPAINT_LOSSES_OFF = {
    "perceptual": "off: LaMa's high-receptive-field perceptual loss needs an ADE20k-pretrained ResNet-50, which is "
                  "not available offline",
    "adversarial": "off (train.adversarial.weight is 0): LaMa's R1 non-saturating PatchGAN loss, "
                   "repro/train/adversarial.py",
}


def losses_record(model: nn.Module, train_cfg: dict) -> dict[str, str]:
    """The terms a run minimises and, for inpainting, the LaMa-style terms it leaves out with the reason."""
    from repro.train.adversarial import settings

    stage = model.descriptor.stage
    # two-stage models define their own L1 (compute_losses)
    record = {"l1": "on"} if stage else {train_cfg.get("loss", "l1"): "on"}
    if stage == 2:
        record["ipr_l1"] = "on (L1 between the stage-2 and the stage-1 IPR)"
    if model.descriptor.task == "inpaint":
        record.update(INPAINT_LOSSES_OFF)
        adv = settings(train_cfg)
        if adv is not None:
            record["adversarial"] = (f"on: PatchGAN (ndf {adv['ndf']}, {adv['n_layers']} layers), R1 non-saturating, "
                                     f"weight {adv['weight']}, R1 coefficient {adv['gp_coef']}, D lr {adv['lr']}")
    return record


def environment(cfg: dict, world: distributed.World, device: torch.device, precision: str, model: nn.Module) -> dict:
    from repro.evaluate import _git_sha

    versions = {"python": platform.python_version(), "torch": torch.__version__, "numpy": np.__version__}
    return {"git_sha": _git_sha(), "versions": versions, "device": str(device), "host": platform.node(),
            "threads": torch.get_num_threads(), "precision": precision, "world_size": world.size,
            "global_batch": cfg["train"]["batch"], "tf32_matmul": torch.backends.cuda.matmul.allow_tf32,
            "tf32_cudnn": torch.backends.cudnn.allow_tf32, "losses": losses_record(model, cfg["train"]), "argv": sys.argv}


def _milestones(train_cfg: dict, steps_per_epoch: int) -> list[int]:
    unit = train_cfg.get("lr_milestone_unit", "step")
    if unit not in ("step", "epoch"):
        raise TrainingError(f"train.lr_milestone_unit must be 'step' or 'epoch', got {unit!r}")
    scale = steps_per_epoch if unit == "epoch" else 1
    return [int(m) * scale for m in train_cfg.get("lr_milestones", [])]


def _precision(train_cfg: dict, model: nn.Module, device: torch.device) -> str:
    wanted = train_cfg.get("precision", "auto")
    if wanted == "auto":
        return "bf16" if device.type == "cuda" and model.descriptor.supports_bf16 else "fp32"
    if wanted not in ("fp32", "bf16"):
        raise TrainingError(f"train.precision must be auto, fp32 or bf16, got {wanted!r}")
    return wanted


class _Stop:
    """Set by SIGTERM / SIGINT (SLURM preemption, Ctrl-C): the loop saves a checkpoint and exits."""

    signum: int | None = None

    @classmethod
    def install(cls) -> dict:
        """Catch the signals; returns the previous handlers, for ``restore``."""
        cls.signum = None

        def handler(signum, _frame):
            cls.signum = signum

        previous = {}
        for sig in (signal.SIGTERM, signal.SIGINT):
            previous[sig] = signal.signal(sig, handler)
        return previous

    @staticmethod
    def restore(previous: dict) -> None:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def train(cfg: dict, out_dir: str | Path, *, resume: str | None = None, stop_at: int | None = None, force: bool = False,
          device: str = "cpu", progress: bool = True, on_config_change: str = "error") -> Path:
    """Run (or continue) the training run ``cfg`` in ``out_dir``; returns the last checkpoint written.

    Args:
        cfg: a resolved run config (``repro.train.config.resolve``).
        out_dir: the run folder.
        resume: ``"auto"`` (continue from ``checkpoints/last.pt`` when there is one), a checkpoint path, or None
            (a fresh run; refused if the folder already holds checkpoints).
        stop_at: end after this step with a checkpoint, without changing the schedule.
        force: resume although the config differs from the checkpoint's.
        on_config_change: with ``resume="auto"``, what a last checkpoint made with another config leads to:
            ``"error"`` (stop and name the differing keys) or ``"restart"`` (move the run folder's contents into
            ``superseded-<old config hash>/`` and start afresh: the workflow reruns a job whose config changed).
        device: ``cpu`` or ``cuda[:i]`` (under torchrun each rank takes its local GPU).
        progress: show a progress bar (only on a terminal, only on rank 0).
    """
    from repro.train.data import build_training_data, make_loader
    from repro.train.data_inpaint import build_inpaint_training_data

    out = Path(out_dir)
    ckpt_dir = out / "checkpoints"
    world = distributed.init(device)
    dev = torch.device(f"cuda:{world.local_rank}" if device.startswith("cuda") and world.size > 1 else device)
    tc = cfg["train"]
    if tc["batch"] % world.size:
        raise TrainingError(f"train.batch {tc['batch']} is not divisible by the {world.size} processes")
    if on_config_change not in ("error", "restart"):
        raise ValueError(f"on_config_change must be 'error' or 'restart', got {on_config_change!r}")
    if on_config_change == "restart" and resume == "auto":
        _set_aside_if_changed(cfg, out, world)
    start_ckpt = _resume_checkpoint(cfg, ckpt_dir, resume, force)

    torch.manual_seed(tc["seed"])  # the same initial weights on every rank
    model = build_model(cfg["model"], scale=cfg["scale"], **cfg["model_args"]).to(dev)
    teacher = None
    if model.descriptor.stage == 2:
        if not cfg.get("stage1"):
            raise TrainingError(f"{cfg['model']} is a stage-2 model: name the finished stage-1 run (--stage1 DIR)")
        teacher, _ = load_teacher(cfg["stage1"], dev)
        if start_ckpt is None:
            model.load_stage1(teacher.state_dict())
    elif cfg.get("stage1"):
        raise TrainingError(f"{cfg['model']} is not a stage-2 model; --stage1 applies to stage 2 only")
    if start_ckpt is None and tc.get("init_from"):
        _init_from(model, tc["init_from"], world)
    model.train()
    disc, d_optimizer, adv = _discriminator(tc, model, dev)
    objective = Objective(model, tc.get("loss", "l1"), adversarial=None if disc is None else (disc, adv["weight"]))
    wrapped = nn.parallel.DistributedDataParallel(objective) if world.size > 1 else objective
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.Adam(params, lr=tc["lr"], betas=tuple(tc["betas"]), weight_decay=tc.get("weight_decay", 0.0))

    data = build_inpaint_training_data(cfg) if model.descriptor.task == "inpaint" else build_training_data(cfg)
    steps_per_epoch = max(1, math.ceil(data.epoch_length / tc["batch"]))
    scheduler = torch.optim.lr_scheduler.MultiStepLR(optimizer, _milestones(tc, steps_per_epoch), gamma=tc["lr_gamma"])
    scaler = torch.amp.GradScaler(enabled=False)  # bf16 needs no loss scaling; kept for fp16 recipes and the format
    ema = EMA(model, tc["ema"], warmup=tc.get("ema_warmup", True)) if tc.get("ema") else None
    precision = _precision(tc, model, dev)
    step = 0
    if start_ckpt is not None:
        model.load_state_dict(start_ckpt["model"])
        optimizer.load_state_dict(start_ckpt["optimizer"])
        scheduler.load_state_dict(start_ckpt["scheduler"])
        scaler.load_state_dict(start_ckpt["scaler"])
        if ema is not None:
            ema.state = {k: v.to(dev) for k, v in start_ckpt["ema"].items()}  # checkpoints load to the CPU
        step = start_ckpt["step"]
        if disc is not None:
            disc.load_state_dict(start_ckpt["discriminator"])
            d_optimizer.load_state_dict(start_ckpt["d_optimizer"])
    torch.manual_seed(tc["seed"] + 1000 * (world.rank + 1) + step)  # training-time randomness (drop path, noise)
    if start_ckpt is not None:
        rngs = start_ckpt["rng"]
        if len(rngs) != world.size and world.main:
            print(f"[train] the checkpoint has RNG states of {len(rngs)} processes, this run has {world.size}: "
                  "the data order resumes exactly, drop-path and noise draws do not", file=sys.stderr)
        checkpoint.restore_rng(rngs[world.rank % len(rngs)])

    total = int(tc["steps"])
    last_step = min(total, stop_at) if stop_at is not None else total
    if world.main:
        out.mkdir(parents=True, exist_ok=True)
        (out / "config.yaml").write_text(yaml.safe_dump(cfg, sort_keys=False))
        (out / "env.json").write_text(json.dumps(environment(cfg, world, dev, precision, model), indent=2) + "\n")
        if start_ckpt is None:
            print(f"[train] {cfg['model']} x{cfg['scale']}: fresh run to step {total} in {out}", flush=True)
        else:
            print(f"[train] {cfg['model']} x{cfg['scale']}: resuming at step {step} of {total} in {out}", flush=True)
    log = MetricsLog(out / "metrics.csv", step) if world.main else None
    writer = tensorboard(out) if world.main else None
    eval_model = copy.deepcopy(model).eval() if world.main else None
    best = _best_psnr(out / "best.pt") if world.main else None

    def weights() -> dict:
        """What evaluation and stage 2 need: the raw and EMA weights and how to build the network."""
        return {"format": checkpoint.FORMAT, "step": step, "model_name": cfg["model"], "scale": cfg["scale"],
                "model_overrides": cfg["model_args"], "config": cfg, "config_hash": config_hash(cfg),
                "model": model.state_dict(), "ema": None if ema is None else ema.state}

    def snapshot() -> dict:
        """Everything a resume needs; collective under DDP (every rank's RNG states are gathered)."""
        rngs = [None] * world.size
        if world.size > 1:
            torch.distributed.all_gather_object(rngs, checkpoint.rng_state())
        else:
            rngs = [checkpoint.rng_state()]
        return {**weights(), "optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict(),
                "scaler": scaler.state_dict(), "rng": rngs,
                **({} if disc is None else {"discriminator": disc.state_dict(), "d_optimizer": d_optimizer.state_dict()})}

    previous_handlers = _Stop.install()
    try:
        loader = make_loader(data, batch_size=tc["batch"] // world.size, start_step=step, rank=world.rank,
                             world_size=world.size, workers=tc.get("workers", 0))
        bar = _progress(progress and world.main, step, total)
        skipped_in_a_row, last_written = 0, None
        tick = time.perf_counter()
        batches = iter(loader)
        while step < last_step:
            lq, gt = (t.to(dev, non_blocking=True) for t in next(batches))
            with torch.no_grad():
                prior = teacher.encode_prior(lq, gt) if teacher is not None else None
            with torch.autocast(dev.type, dtype=torch.bfloat16, enabled=precision == "bf16"):
                if disc is not None:
                    disc.requires_grad_(False)  # the generator's step passes through D without training it
                terms = wrapped(lq, gt, prior)
            total_loss = sum(terms.values()) if "total" not in terms else terms["total"]
            optimizer.zero_grad(set_to_none=True)
            total_loss.backward()
            grad_norm = torch.nn.utils.clip_grad_norm_(params, tc.get("grad_clip") or math.inf)
            bad = distributed.any_rank(not (torch.isfinite(total_loss) and torch.isfinite(grad_norm)), world, dev)
            if bad:
                skipped_in_a_row += 1
            else:
                skipped_in_a_row = 0
                optimizer.step()
                if ema is not None:
                    ema.update(model, step + 1)
            if disc is not None:  # LaMa's order: the generator's update, then the discriminator's on the same batch
                d_terms = _discriminator_step(disc, d_optimizer, adv, gt, objective.restored, lq[:, 3:4], world,
                                              update=not bad)
                terms = {**terms, **d_terms}
            scheduler.step()
            step += 1
            if bar is not None:
                bar.update(1)
                bar.set_postfix(loss=f"{total_loss.item():.4g}", lr=f"{optimizer.param_groups[0]['lr']:.2g}")
            if world.main and (step % tc.get("log_every", 1) == 0 or bad):
                lr = optimizer.param_groups[0]["lr"]
                seconds = time.perf_counter() - tick
                parts = ";".join(f"{k}={v.item():.6g}" for k, v in terms.items() if k != "total")
                log.write(step=step, lr=lr, loss=total_loss.item(), terms=parts, seconds=f"{seconds:.3f}", skipped=int(bad))
                writer.add_scalar("train/loss", total_loss.item(), step)
                writer.add_scalar("train/lr", lr, step)
                if bad:
                    print(f"[train] step {step}: loss or gradient not finite, update skipped "
                          f"({skipped_in_a_row} in a row)", file=sys.stderr, flush=True)
            if skipped_in_a_row >= tc.get("max_nonfinite", 5):
                last_written = _save(snapshot(), ckpt_dir, tc, world)
                raise TrainingError(f"{skipped_in_a_row} steps in a row had a non-finite loss or gradient (last at step "
                                    f"{step}); saved {last_written}. Lower train.lr or check the data, then --resume.")
            if world.main and tc.get("val_every") and step % tc["val_every"] == 0:
                eval_model.load_state_dict(ema.state if ema is not None else model.state_dict())
                psnr, ssim = validate(eval_model, cfg, dev)
                log.write(step=step, val_psnr=f"{psnr:.4f}", val_ssim=f"{ssim:.5f}")
                writer.add_scalar("val/psnr", psnr, step)
                writer.add_scalar("val/ssim", ssim, step)
                if best is None or psnr > best:
                    best = psnr
                    checkpoint.save_atomic({**weights(), "val_psnr": psnr}, out / "best.pt")
            stopping = distributed.any_rank(_Stop.signum is not None, world, dev)
            if step % tc["ckpt_every"] == 0 or step == last_step or stopping:
                last_written = _save(snapshot(), ckpt_dir, tc, world)
            if stopping:
                if world.main:
                    print(f"[train] signal {_Stop.signum}: saved {last_written}, stopping", file=sys.stderr, flush=True)
                distributed.close(world)
                raise SystemExit(128 + (_Stop.signum or signal.SIGTERM))
            tick = time.perf_counter()
        if step == total and world.main:
            checkpoint.save_atomic(weights(), out / "final.pt")
            last_written = out / "final.pt"
        if bar is not None:
            bar.close()
        if writer is not None:
            writer.close()
        distributed.barrier(world)
        distributed.close(world)
        return last_written
    finally:
        _Stop.restore(previous_handlers)


def _discriminator(tc: dict, model: nn.Module, dev: torch.device):
    """(PatchGAN, its Adam, the settings) when ``train.adversarial`` is on, else (None, None, None)."""
    from repro.train import adversarial

    try:
        adv = adversarial.settings(tc)
    except ValueError as err:
        raise TrainingError(str(err)) from err
    if adv is None:
        return None, None, None
    if model.descriptor.task != "inpaint":
        raise TrainingError("train.adversarial applies to the inpainting networks (LaMa-style training) only")
    disc = adversarial.PatchDiscriminator(ndf=adv["ndf"], n_layers=adv["n_layers"]).to(dev)
    return disc, torch.optim.Adam(disc.parameters(), lr=adv["lr"], betas=tuple(tc["betas"])), adv


def _discriminator_step(disc: nn.Module, optimizer: torch.optim.Optimizer, adv: dict, real: torch.Tensor,
                        fake: torch.Tensor, hole: torch.Tensor, world: distributed.World, *, update: bool) -> dict:
    """One discriminator update; its gradients are averaged over the ranks by hand (DDP does not support the
    double backward of the R1 penalty)."""
    from repro.train.adversarial import discriminator_loss

    disc.requires_grad_(True)
    terms = discriminator_loss(disc, real, fake, hole, adv["gp_coef"])
    optimizer.zero_grad(set_to_none=True)
    terms["d_total"].backward()
    if world.size > 1:
        for p in disc.parameters():
            torch.distributed.all_reduce(p.grad)
            p.grad.div_(world.size)
    if update and torch.isfinite(terms["d_total"]):
        optimizer.step()
    return {k: v.detach() for k, v in terms.items()}


def _init_from(model: nn.Module, path: str, world: distributed.World) -> None:
    """Start from another run's weights (x4 fine-tuned from x2, as the official recipes do): every tensor whose name
    and shape match is loaded, the others (the upsampler) keep their initialisation."""
    from repro.evaluate import read_checkpoint

    _, state = read_checkpoint(path).select()  # harness (EMA where kept), official (params_ema) or bare weights
    own = model.state_dict()
    matching = {k: v for k, v in state.items() if k in own and own[k].shape == v.shape}
    if not matching:
        raise TrainingError(f"{path}: no tensor matches {type(model).__name__} in name and shape")
    model.load_state_dict(matching, strict=False)
    loaded, kept = sorted(matching), sorted(set(own) - set(matching))
    if world.main:
        print(f"[train] init_from {path}: {len(loaded)} tensors loaded, {len(kept)} kept at their initialisation "
              f"({', '.join(kept[:4])}{', ...' if len(kept) > 4 else ''})", flush=True)


def _save(ckpt: dict, folder: Path, tc: dict, world: distributed.World) -> Path | None:
    path = None
    if world.main:
        path = checkpoint.save_numbered(ckpt, folder, keep=tc.get("keep_checkpoints", 3))
    distributed.barrier(world)
    return path


def _set_aside_if_changed(cfg: dict, out: Path, world) -> None:
    """Move a run made with another config into ``out/superseded-<its hash>/``: nothing is deleted, and the
    fresh run that follows does not mix its checkpoints and logs with the old one's."""
    last = out / "checkpoints" / "last.pt"
    if not last.exists():
        return
    old = checkpoint.load(last)
    if old["config_hash"] == config_hash(cfg):
        return
    if world.main:
        keys = differing_keys(old["config"], cfg)
        aside = out / f"superseded-{old['config_hash']}"
        aside.mkdir(exist_ok=True)
        for entry in out.iterdir():
            if not entry.name.startswith("superseded-"):
                entry.rename(aside / entry.name)
        print(f"[train] the config changed ({', '.join(keys)}): the earlier run is kept in {aside}; starting afresh",
              file=sys.stderr, flush=True)
    distributed.barrier(world)


def _resume_checkpoint(cfg: dict, ckpt_dir: Path, resume: str | None, force: bool) -> dict | None:
    last = ckpt_dir / "last.pt"
    if resume is None:
        if last.exists():
            raise TrainingError(f"{ckpt_dir.parent} already holds checkpoints: pass --resume auto to continue, or "
                                "choose another --out")
        return None
    if resume == "auto":
        if not last.exists():
            print(f"[train] --resume auto: no checkpoint in {ckpt_dir}, starting fresh", flush=True)
            return None
        path = last
    else:
        path = Path(resume)
    ckpt = checkpoint.load(path)
    if ckpt["config_hash"] != config_hash(cfg):
        keys = differing_keys(ckpt["config"], cfg)
        if not force:
            raise TrainingError(f"{path} was made with another config; differing keys: {', '.join(keys)} "
                                "(--force resumes anyway)")
        print(f"[train] --force: resuming {path} despite differing keys {', '.join(keys)}", file=sys.stderr)
    return ckpt


def _best_psnr(path: Path) -> float | None:
    if not path.is_file():
        return None
    return float(torch.load(path, map_location="cpu", weights_only=False).get("val_psnr", -math.inf))


def _progress(enabled: bool, step: int, total: int):
    if not enabled or not sys.stdout.isatty():
        return None
    from tqdm import tqdm

    return tqdm(total=total, initial=step, unit="step", dynamic_ncols=True)
