"""Data-parallel training under ``torchrun``: the process group from its environment, and the collective decisions.

One process per device; ``torchrun`` sets RANK, LOCAL_RANK and WORLD_SIZE. Without them the run is a single
process and every helper here is a no-op.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist


@dataclass(frozen=True)
class World:
    rank: int = 0
    local_rank: int = 0
    size: int = 1

    @property
    def main(self) -> bool:
        return self.rank == 0


def init(device: str) -> World:
    """Join the process group torchrun describes (gloo on CPU, nccl on CUDA); a single process otherwise."""
    if "WORLD_SIZE" not in os.environ or int(os.environ["WORLD_SIZE"]) == 1:
        return World()
    world = World(rank=int(os.environ["RANK"]), local_rank=int(os.environ["LOCAL_RANK"]),
                  size=int(os.environ["WORLD_SIZE"]))
    if device.startswith("cuda"):
        torch.cuda.set_device(world.local_rank)
    dist.init_process_group("nccl" if device.startswith("cuda") else "gloo")
    return world


def any_rank(flag: bool, world: World, device: torch.device) -> bool:
    """True on every rank if ``flag`` is true on any: a decision all ranks must take together (skipping a step whose
    loss is not finite; a rank that skipped alone would leave the others waiting in the gradient all-reduce)."""
    if world.size == 1:
        return flag
    t = torch.tensor([1.0 if flag else 0.0], device=device)
    dist.all_reduce(t, op=dist.ReduceOp.MAX)
    return bool(t.item())


def barrier(world: World) -> None:
    if world.size > 1:
        dist.barrier()


def close(world: World) -> None:
    if world.size > 1:
        dist.destroy_process_group()
