"""Process-group plumbing: torchrun detection, device choice, setup/teardown, small collectives.

Single process (no torchrun): world size 1, no process group, a plain model. Under torchrun
(``WORLD_SIZE``/``RANK``/``LOCAL_RANK`` set): gloo on CPU, nccl on CUDA, one GPU per local rank.
Multi-node runs need nothing beyond torchrun's own flags.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

import torch
import torch.distributed as dist

from .errors import SSMVOSError
from .runtime import resolve_device


@dataclass(frozen=True)
class DistContext:
    """Where this process sits: its rank among ``world_size`` processes and its device."""

    world_size: int = 1
    rank: int = 0
    local_rank: int = 0
    local_world_size: int = 1
    device: torch.device = torch.device("cpu")

    @property
    def is_main(self) -> bool:
        """Rank 0: the one process that logs and writes files."""
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        """True when a process group is (to be) used."""
        return self.world_size > 1 or dist.is_initialized()


def launch_env() -> tuple[int, int, int, int] | None:
    """(world_size, rank, local_rank, local_world_size) from torchrun's variables, else None."""
    if "WORLD_SIZE" not in os.environ or "RANK" not in os.environ:
        return None
    try:
        world = int(os.environ["WORLD_SIZE"])
        rank = int(os.environ["RANK"])
        local = int(os.environ.get("LOCAL_RANK", "0"))
        local_world = int(os.environ.get("LOCAL_WORLD_SIZE", str(world)))
    except ValueError:
        raise SSMVOSError("WORLD_SIZE, RANK and LOCAL_RANK must be integers (set by torchrun)") from None
    return world, rank, local, local_world


def planned_context(device: str) -> DistContext:
    """The context this process will have, without creating the process group yet."""
    env = launch_env()
    world, rank, local, local_world = env if env else (1, 0, 0, 1)
    return DistContext(world, rank, local, local_world, resolve_device(device, local))


def init_process_group(ctx: DistContext) -> None:
    """Join the process group (torchrun runs only); nccl on CUDA, gloo on CPU."""
    if ctx.world_size <= 1 and launch_env() is None:
        return
    if dist.is_initialized():
        return
    if ctx.device.type == "cuda":
        torch.cuda.set_device(ctx.device)
        dist.init_process_group("nccl", device_id=ctx.device)
    else:
        dist.init_process_group("gloo")


def shutdown() -> None:
    """Leave the process group if one was created."""
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def all_gather_objects(ctx: DistContext, obj: Any) -> list[Any]:
    """Every rank's ``obj`` (picklable), in rank order; ``[obj]`` without a process group."""
    if not dist.is_initialized():
        return [obj]
    out: list[Any] = [None] * ctx.world_size
    dist.all_gather_object(out, obj)
    return out


def raise_if_any_failed(ctx: DistContext, error: str | None) -> None:
    """Agree across ranks on a setup failure: if any rank reports an error, every rank raises it.

    Keeps the other ranks from waiting forever in a collective that the failed rank never joins.
    """
    errors = [e for e in all_gather_objects(ctx, error) if e]
    if errors:
        raise SSMVOSError(errors[0])


def all_reduce_sum(values: torch.Tensor) -> torch.Tensor:
    """Sum a small tensor over ranks (in place); a no-op without a process group."""
    if dist.is_initialized():
        dist.all_reduce(values, op=dist.ReduceOp.SUM)
    return values
