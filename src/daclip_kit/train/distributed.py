"""Data-parallel training under ``torchrun`` (``torch.distributed``).

``torchrun --nproc_per_node N -m daclip_kit train ...`` starts N processes with the standard
environment variables ``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK`` (and ``MASTER_ADDR``/``PORT``).
:func:`session` reads them, picks the process's device (``cuda:LOCAL_RANK`` on GPUs) and joins the
process group (NCCL on CUDA, gloo on CPU) through :mod:`daclip_kit.core.distributed`; without them
(or with ``WORLD_SIZE=1``) training runs in one process and nothing here communicates.

* :meth:`Distributed.wrap`: ``DistributedDataParallel`` around the trained module, which averages
  the gradients over the processes during ``backward``.
* :meth:`Distributed.gather`: every process's rows of a tensor, in rank order (no gradient).
* :meth:`Distributed.agree`: run a step on every process and raise the first error on all of
  them, so one process's bad input never leaves the others waiting.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal, TypeVar, overload

import torch
from torch import nn

from .. import errors
from ..core import distributed as core
from ..errors import DaclipKitError

if TYPE_CHECKING:
    from torch.nn.parallel import DistributedDataParallel

log = logging.getLogger(__name__)
T = TypeVar("T")

@dataclass
class Distributed:
    """This process's place in a data-parallel run (``world == 1``: a single process).

    Attributes:
        proc: the process's rank and the number of processes (:class:`~daclip_kit.core.distributed.Process`).
        device: the device this process trains on.
        wrapped: the ``DistributedDataParallel`` modules :meth:`wrap` made.
    """

    proc: core.Process = field(default_factory=core.Process)
    device: torch.device = field(default_factory=lambda: torch.device("cpu"))
    wrapped: list[DistributedDataParallel] = field(default_factory=list)

    @property
    def world(self) -> int:
        return self.proc.world

    @property
    def rank(self) -> int:
        return self.proc.rank

    @property
    def is_main(self) -> bool:
        return self.proc.is_main

    @property
    def active(self) -> bool:
        return self.proc.distributed

    def barrier(self) -> None:
        core.barrier()

    def wrap(self, module: nn.Module) -> nn.Module:
        """``module`` itself in one process; else ``DistributedDataParallel(module)``: gradients
        averaged over the processes. Parameters a step does not use are allowed (the IR-SDE
        U-Net's single-token cross-attention leaves some without gradient; a plugin's network may
        too); buffers are not re-broadcast before each forward (the trained networks have no
        running statistics)."""
        if not self.active:
            return module
        import inspect

        from torch.nn.parallel import DistributedDataParallel

        ids = [self.device.index] if self.device.type == "cuda" else None
        takes = inspect.signature(DistributedDataParallel.__init__).parameters
        buffers: dict[str, Any] = ({"forward_sync_buffers": False} if "forward_sync_buffers" in takes
                                   else {"broadcast_buffers": False})
        ddp = DistributedDataParallel(module, device_ids=ids, find_unused_parameters=True, **buffers)
        self.wrapped.append(ddp)
        return ddp

    def no_sync(self, sync: bool) -> contextlib.AbstractContextManager:
        """Inside, ``backward`` only accumulates gradients locally (unless ``sync``); the pass with
        ``sync=True`` averages the accumulated gradients over the processes."""
        if sync or not self.wrapped:
            return contextlib.nullcontext()
        stack = contextlib.ExitStack()
        for ddp in self.wrapped:
            stack.enter_context(ddp.no_sync())
        return stack

    @torch.no_grad()
    def gather(self, tensor: torch.Tensor) -> list[torch.Tensor]:
        """``[rows of process 0, rows of process 1, ...]`` of a ``(B, ...)`` tensor with the same
        shape on every process (detached copies; the own part is ``tensor`` itself, detached)."""
        if not self.active:
            return [tensor.detach()]
        parts = [torch.empty_like(tensor) for _ in range(self.world)]
        torch.distributed.all_gather(parts, tensor.detach().contiguous())
        parts[self.rank] = tensor.detach()
        return parts

    def sum(self, values: list[float]) -> list[float]:
        """Element-wise sum of ``values`` over the processes."""
        return self._reduce(values, "SUM")

    def max(self, values: list[float]) -> list[float]:
        """Element-wise maximum of ``values`` over the processes."""
        return self._reduce(values, "MAX")

    def any(self, flag: bool) -> bool:
        """Whether ``flag`` is true on any process."""
        return self.max([1.0 if flag else 0.0])[0] > 0

    def _reduce(self, values: list[float], op: str) -> list[float]:
        if not self.active:
            return list(values)
        t = torch.tensor(values, dtype=torch.float64, device=self._comm_device())
        torch.distributed.all_reduce(t, op=getattr(torch.distributed.ReduceOp, op))
        return t.tolist()

    @overload
    def agree(self, fn: Callable[[], T], *, only_main: Literal[False] = False) -> T: ...
    @overload
    def agree(self, fn: Callable[[], T], *, only_main: bool) -> T | None: ...

    def agree(self, fn: Callable[[], T], *, only_main: bool = False) -> T | None:
        """Run ``fn`` (on process 0 only when ``only_main``), then raise on every process the
        first error any of them got (same class for daclip-kit errors), so none is left waiting
        at the next collective."""
        result, failure = None, None
        try:
            if self.is_main or not only_main:
                result = fn()
        except DaclipKitError as exc:
            if not self.active:
                raise
            failure = (type(exc).__name__, str(exc))
        if not self.active:
            return result
        first = next((f for f in core.gather(failure) if f is not None), None)
        if first is not None:
            name, message = first
            cls = getattr(errors, name, None)
            if not (isinstance(cls, type) and issubclass(cls, DaclipKitError)):
                cls = DaclipKitError
            raise cls(message)
        return result

    def _comm_device(self) -> torch.device:
        return self.device if self.device.type == "cuda" else torch.device("cpu")


@contextlib.contextmanager
def session(device_name: str | None) -> Iterator[Distributed]:
    """This process's :class:`Distributed` for the block: the device the environment and
    ``device_name`` give, inside the job's process group when ``WORLD_SIZE > 1``
    (:func:`~daclip_kit.core.distributed.process_group`)."""
    proc = core.current()
    device = core.process_device(device_name, proc)
    with core.process_group(device, proc):
        if proc.distributed:
            log.info("process %d of %d on %s (%s)", proc.rank, proc.world, device, torch.distributed.get_backend())
        yield Distributed(proc, device)
