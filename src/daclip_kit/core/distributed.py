"""Several processes, one job: the torchrun environment, process groups and result gathering.

Under ``torchrun`` (or any launcher that sets ``RANK``, ``WORLD_SIZE`` and ``LOCAL_RANK``) every
process runs the same command; :func:`process_group` joins them (NCCL on CUDA, gloo on the CPU),
each process takes its own device (``cuda:LOCAL_RANK``) and its share of the work
(:func:`shard`), and rank 0 gathers what the others produced (:func:`gather`). Without those
variables everything runs in one process and these functions are no-ops.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

import torch

T = TypeVar("T")


@dataclass(frozen=True)
class Process:
    """This process's place in the job.

    Attributes:
        rank: 0-based index among all processes (``RANK``).
        world: number of processes (``WORLD_SIZE``).
        local_rank: index among the processes on this machine (``LOCAL_RANK``): its GPU.
    """

    rank: int = 0
    world: int = 1
    local_rank: int = 0

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world > 1


def current() -> Process:
    """The process's place from the launcher's environment (one process when unset)."""
    def env(name: str, default: int) -> int:
        try:
            return int(os.environ.get(name, default))
        except ValueError:
            return default

    world = env("WORLD_SIZE", 1)
    return Process(rank=env("RANK", 0) if world > 1 else 0, world=max(1, world),
                   local_rank=env("LOCAL_RANK", 0) if world > 1 else 0)


def process_device(setting: str | torch.device | None, proc: Process | None = None) -> torch.device:
    """The device of this process: ``cuda:LOCAL_RANK`` when the setting is CUDA (or auto with
    CUDA available) under a launcher, else the setting as :func:`~daclip_kit.core.device.pick_device`
    gives it."""
    from .device import pick_device

    proc = proc or current()
    device = pick_device(setting)
    if device.type == "cuda" and proc.distributed and device.index is None:
        return torch.device("cuda", proc.local_rank)
    return device


@contextlib.contextmanager
def process_group(device: torch.device, proc: Process | None = None) -> Iterator[Process]:
    """Join the job's process group for the duration of the block (NCCL on CUDA, gloo on the
    CPU); does nothing for a single process or when a group already exists."""
    import torch.distributed as dist

    proc = proc or current()
    owned = proc.distributed and dist.is_available() and not dist.is_initialized()
    if owned:
        backend = "nccl" if device.type == "cuda" else "gloo"
        if device.type == "cuda":
            torch.cuda.set_device(device)
        dist.init_process_group(backend=backend, rank=proc.rank, world_size=proc.world)
    try:
        yield proc
    finally:
        if owned:
            dist.destroy_process_group()


def _active() -> bool:
    import torch.distributed as dist

    return dist.is_available() and dist.is_initialized()


def shard(items: Sequence[T], proc: Process | None = None) -> list[T]:
    """This process's share of ``items``: every ``world``-th item starting at ``rank``."""
    proc = proc or current()
    return list(items[proc.rank::proc.world])


def barrier() -> None:
    """Wait for every process (no-op alone)."""
    if _active():
        import torch.distributed as dist

        dist.barrier()


def gather(obj: Any) -> list[Any]:
    """Every process's ``obj``, in rank order, on every process (``[obj]`` alone)."""
    if not _active():
        return [obj]
    import torch.distributed as dist

    out: list[Any] = [None] * dist.get_world_size()
    dist.all_gather_object(out, obj)
    return out
