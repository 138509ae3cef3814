"""What a profile runs: one model at its configuration, an inference on one image and one training step.

- Inference: ``model(lq)`` (stage-1 models: ``model(lq, gt)``, their CPEN reads the ground truth) on one random
  image at the profile's LR size, in eval mode under ``torch.no_grad()``.
- Training step: Adam (lr 1e-4, betas 0.9 / 0.99, Sec. 4.1) on a random batch of ``train_batch`` LR patches of
  ``train_patch`` pixels: zero the gradients, the loss, backward, the optimizer step. Two-stage models use their own
  ``compute_losses``; stage 2 needs the frozen stage-1 prior ``prior_s1``, which here is random (N(0, 1), the IPR's
  shape): building and running the stage-1 model would add its cost to the step. Other models: L1 to the target.

A ``WorkloadSpec`` is plain data (JSON), so a fresh subprocess can rebuild the same workload (``repro.profile.memory``,
``repro.profile.ncu``).
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable

import torch
import torch.nn.functional as F

from repro import build_model, get_descriptor

ADAM = {"lr": 1e-4, "betas": (0.9, 0.99)}


@dataclasses.dataclass(frozen=True)
class WorkloadSpec:
    """One model and what to run it on.

    Args:
        model: registry name.
        scale: SR factor (ignored by inpainting networks).
        lr_hw: LR (height, width) of the inference input.
        overrides: constructor keyword overrides (``build_model(model, **overrides)``).
        device: ``cpu`` or ``cuda[:i]``.
        train_batch: patches per training step.
        train_patch: LR patch side of the training step.
        seed: seeds the random inputs and weights.
    """

    model: str
    scale: int
    lr_hw: tuple[int, int]
    overrides: dict = dataclasses.field(default_factory=dict)
    device: str = "cpu"
    train_batch: int = 2
    train_patch: int = 48
    seed: int = 0

    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self))

    @classmethod
    def from_json(cls, text: str) -> WorkloadSpec:
        fields = json.loads(text)
        return cls(**{**fields, "lr_hw": tuple(fields["lr_hw"])})


class Workload:
    """The built model with its inputs; ``inference()`` and ``training()`` return the callables to time.

    Args:
        spec: what to build.
    """

    def __init__(self, spec: WorkloadSpec) -> None:
        self.spec = spec
        self.device = torch.device(spec.device)
        self.descriptor = get_descriptor(spec.model, scale=spec.scale)
        self.task = self.descriptor.task
        self.scale = spec.scale if self.task == "sr" else 1
        torch.manual_seed(spec.seed)
        # inpainting entry points take no scale (as repro.profile.forward builds them)
        built = build_model(spec.model, **spec.overrides) if self.task == "inpaint" else \
            build_model(spec.model, scale=spec.scale, **spec.overrides)
        self.model = built.to(self.device)
        self.stage = self.descriptor.stage
        self.output_hw = (spec.lr_hw[0] * self.scale, spec.lr_hw[1] * self.scale)
        self._optimizer: torch.optim.Optimizer | None = None

    @property
    def trainable(self) -> bool:
        return any(p.requires_grad for p in self.model.parameters())

    def _pair(self, batch: int, hw: tuple[int, int]) -> tuple[torch.Tensor, torch.Tensor]:
        """A random (lq, gt) pair on the device: RGB in [0, 1]; inpainting lq = cat(image * (1 - mask), mask)."""
        h, w = hw
        gt = torch.rand(batch, 3, h * self.scale, w * self.scale, device=self.device)
        if self.task == "inpaint":
            mask = (torch.rand(batch, 1, h, w, device=self.device) < 0.25).float()
            return torch.cat([gt * (1 - mask), mask], dim=1), gt
        return torch.rand(batch, 3, h, w, device=self.device), gt

    def inference_inputs(self) -> tuple[torch.Tensor, ...]:
        """The arguments of one inference: ``(lq,)``, or ``(lq, gt)`` for a stage-1 model."""
        lq, gt = self._pair(1, self.spec.lr_hw)
        return (lq, gt) if self.stage == 1 else (lq,)

    def inference(self) -> Callable[[], object]:
        """Eval mode; returns a callable running one inference under ``torch.no_grad()`` on fixed inputs."""
        self.model.eval()
        inputs = self.inference_inputs()

        def run():
            with torch.no_grad():
                return self.model(*inputs)

        return run

    def _loss(self, lq: torch.Tensor, gt: torch.Tensor) -> torch.Tensor:
        if self.stage == 2:
            prior = torch.randn(lq.shape[0], self.model.diffusion.ipr_dim, device=self.device)
            return self.model.compute_losses(lq, gt, prior_s1=prior)["total"]
        if self.stage == 1:
            return self.model.compute_losses(lq, gt)["total"]
        return F.l1_loss(self.model(lq), gt)

    def training(self) -> Callable[[], object]:
        """Train mode; returns a callable running one training step on a fixed random batch."""
        if not self.trainable:
            raise ValueError(f"{self.spec.model} has no trainable parameters: there is no training step to time")
        self.model.train()
        if self._optimizer is None:
            self._optimizer = torch.optim.Adam([p for p in self.model.parameters() if p.requires_grad], **ADAM)
        optimizer = self._optimizer
        lq, gt = self._pair(self.spec.train_batch, (self.spec.train_patch, self.spec.train_patch))

        def step():
            optimizer.zero_grad(set_to_none=True)
            loss = self._loss(lq, gt)
            loss.backward()
            optimizer.step()
            return loss

        return step

    def synchronize(self) -> None:
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
