"""Distributed data parallel helpers.

``torchrun --nproc_per_node=K [--nnodes=M ...] -m SwinX2SLib.cli train ...`` starts K processes per machine with
``RANK``, ``WORLD_SIZE`` and ``LOCAL_RANK`` in their environment; :func:`init_distributed` then joins the process
group (NCCL on CUDA, gloo on CPU) and picks this process's device. Without those variables everything runs in one
process and the helpers are no-ops. Rank 0 alone logs and writes checkpoints.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

import torch
import torch.distributed as dist

__all__ = ["DistContext", "all_reduce_max", "all_reduce_mean", "barrier", "cleanup", "init_distributed", "unwrap"]


@dataclass(frozen=True)
class DistContext:
    """Where this process stands.

    Args:
        rank: global rank (0 in a single process).
        world_size: number of processes.
        local_rank: rank on this machine (selects the GPU).
        device: the device this process computes on.
    """

    rank: int
    world_size: int
    local_rank: int
    device: torch.device

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world_size > 1


def resolve_device(preference: str, local_rank: int = 0) -> torch.device:
    """``"auto"`` -> ``cuda:<local_rank>`` when CUDA is available, else CPU; other values as given."""
    if preference == "auto":
        return torch.device(f"cuda:{local_rank}") if torch.cuda.is_available() else torch.device("cpu")
    device = torch.device(preference)
    if device.type == "cuda" and device.index is None:
        device = torch.device(f"cuda:{local_rank}")
    return device


def init_distributed(device_preference: str = "auto") -> DistContext:
    """Join the process group when launched by ``torchrun`` (or any launcher setting ``WORLD_SIZE``)."""
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    device = resolve_device(device_preference, local_rank)
    if world_size > 1 and not dist.is_initialized():
        if device.type == "cuda":
            torch.cuda.set_device(device)
        dist.init_process_group(backend="nccl" if device.type == "cuda" else "gloo")
    return DistContext(rank, world_size, local_rank, device)


def cleanup() -> None:
    """Leave the process group (if any)."""
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def barrier() -> None:
    if dist.is_available() and dist.is_initialized():
        dist.barrier()


def all_reduce_mean(value: float, device: torch.device) -> float:
    """The mean of ``value`` over all processes."""
    if not (dist.is_available() and dist.is_initialized()):
        return float(value)
    tensor = torch.tensor([float(value)], dtype=torch.float64, device=device)
    dist.all_reduce(tensor)
    return float(tensor.item()) / dist.get_world_size()


def all_reduce_max(value: float, device: torch.device) -> float:
    """The maximum of ``value`` over all processes (e.g. "does any rank want to stop?")."""
    if not (dist.is_available() and dist.is_initialized()):
        return float(value)
    tensor = torch.tensor([float(value)], dtype=torch.float64, device=device)
    dist.all_reduce(tensor, op=dist.ReduceOp.MAX)
    return float(tensor.item())


def unwrap(model: Any) -> Any:
    """The plain module inside a ``DistributedDataParallel`` wrapper."""
    return model.module if isinstance(model, torch.nn.parallel.DistributedDataParallel) else model
