"""Several processes, one job: the torchrun environment, process groups and result gathering.

Under ``torchrun`` (or any launcher that sets ``RANK``, ``WORLD_SIZE`` and ``LOCAL_RANK``) every
process runs the same command; :func:`process_group` joins them (NCCL on CUDA, gloo on the CPU),
each process takes its own device (``cuda:LOCAL_RANK``) and its share of the work
(:func:`shard`), and rank 0 gathers what the others produced (:func:`gather`). Without those
variables everything runs in one process and these functions are no-ops. Importing this module
does not import torch (the CLI reads the process's rank before deciding what to load).

A failure on one process ends every process within seconds, with that process's message: inside
:func:`process_group` an exception (any kind) is published in the job's key-value store before the
process leaves the group, and every other process watches that store from a background thread.
A process that is itself failing names the first failure (its own error is often only the broken
connection to the process that failed); one that is busy or waiting in a collective operation
(which nothing can interrupt) prints the failure and exits with status 1 after a short grace
period, instead of waiting for the collective timeout (:data:`TIMEOUT`).

A launcher such as torchrun kills the remaining processes as soon as one ends, which would cut the
others' last lines short. So the processes leave in order, each after its own line: the first failed
process waits (a few seconds at most) until every other has acknowledged its failure, and each other
process, once it has written its line, waits (as briefly) until the first one has exited.
"""

from __future__ import annotations

import atexit
import contextlib
import datetime
import os
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

from ..errors import ConfigError, DaclipKitError, ProcessFailedError

if TYPE_CHECKING:
    import torch

T = TypeVar("T")

#: How long a process waits for the others (e.g. while rank 0 downloads weights, validates or saves).
TIMEOUT = datetime.timedelta(hours=2)
#: Seconds between two looks at the store for another process's failure, and how long a process
#: that sees one waits for its own code to end (it may be failing the same way) before it exits.
FAILURE_POLL = 0.25
FAILURE_GRACE = 3.0
#: The longest a process waits for the others to acknowledge a failure, or for the first failed
#: process to exit (seconds).
FAILURE_WAIT = FAILURE_GRACE + 4 * FAILURE_POLL + 2.0


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
    """The process's place from the launcher's environment (one process when unset).

    Raises:
        ConfigError: values that are not integers or do not fit together.
    """
    try:
        world = int(os.environ.get("WORLD_SIZE", "1"))
        rank = int(os.environ.get("RANK", "0"))
        local = int(os.environ.get("LOCAL_RANK", str(rank)))
    except ValueError:
        raise ConfigError("WORLD_SIZE, RANK and LOCAL_RANK must be integers (torchrun sets them).") from None
    if world < 1 or not 0 <= rank < world or local < 0:
        raise ConfigError(f"RANK={rank}, WORLD_SIZE={world}, LOCAL_RANK={local} do not fit together; start "
                          "several processes with torchrun.")
    return Process(rank=rank, world=world, local_rank=local) if world > 1 else Process()


def process_device(setting: str | torch.device | None, proc: Process | None = None) -> torch.device:
    """The device of this process: the setting as :func:`~daclip_kit.core.device.pick_device` gives
    it; with several processes a CUDA setting (``auto`` on a GPU machine, or ``cuda``) becomes
    ``cuda:LOCAL_RANK``.

    Raises:
        ConfigError: a fixed ``cuda:N`` with several processes, or more processes on a machine than
            it has GPUs.
    """
    import torch

    from .device import pick_device

    proc = proc or current()
    device = pick_device(setting)
    if not proc.distributed or device.type != "cuda":
        return device
    if device.index is not None and str(setting) not in ("auto", "cuda"):
        raise ConfigError(f"device={str(setting)!r} would put all {proc.world} processes on one GPU; use "
                          "--device cuda (each process takes cuda:LOCAL_RANK) and choose GPUs with "
                          "CUDA_VISIBLE_DEVICES.")
    if proc.local_rank >= torch.cuda.device_count():
        raise ConfigError(f"LOCAL_RANK={proc.local_rank} but only {torch.cuda.device_count()} GPU(s) are "
                          "visible; start at most that many processes per machine.")
    return torch.device("cuda", proc.local_rank)


def join_group(device: torch.device, proc: Process | None = None) -> bool:
    """Join the job's process group (NCCL on CUDA, gloo on the CPU) unless alone or already in one;
    ``True`` when this call created it (the caller then ends it with
    ``torch.distributed.destroy_process_group()``).

    Raises:
        ConfigError: an existing group whose size is not ``WORLD_SIZE``.
    """
    import torch
    import torch.distributed as dist

    proc = proc or current()
    if not (proc.distributed and dist.is_available()):
        return False
    if dist.is_initialized():
        if dist.get_world_size() != proc.world:
            raise ConfigError(f"the process group has {dist.get_world_size()} processes but "
                              f"WORLD_SIZE={proc.world}.")
        return False
    if device.type == "cuda":
        torch.cuda.set_device(device)
    dist.init_process_group("nccl" if device.type == "cuda" else "gloo", rank=proc.rank, world_size=proc.world,
                            timeout=TIMEOUT)
    return True


@contextlib.contextmanager
def process_group(device: torch.device, proc: Process | None = None) -> Iterator[Process]:
    """Join the job's process group for the duration of the block (:func:`join_group`); does
    nothing for a single process or when a group already exists.

    While inside, a failure anywhere ends every process promptly (see the module's description):
    an exception in the block is published for the others, and this process exits (status 1, the
    failure printed) when another process fails while it is still working or waiting.

    Raises:
        ProcessFailedError: this block failed after another process did (e.g. a collective
            operation broke because that process left); its message is that process's error.
    """
    proc = proc or current()
    owned = join_group(device, proc)
    watch = _FailureWatch(proc) if owned else None
    ok = False
    try:
        yield proc
        ok = True
    except Exception as exc:
        if watch is None:
            raise
        _raise_first(watch, exc)
    finally:
        try:
            if owned:  # the watch still runs: a final barrier that a failed process never reaches ends too
                leave_group(synchronise=ok)
        except Exception as exc:
            if watch is None:
                raise
            _raise_first(watch, exc)
        finally:
            if watch is not None:
                watch.close()


def _raise_first(watch: _FailureWatch, exc: Exception) -> None:
    """Publish ``exc`` and raise the job's first failure: ``exc`` itself when it was first or is a
    daclip-kit error (raised on purpose, often on every process alike), else the first process's."""
    first = watch.publish(exc)
    if first is not None:
        watch.acknowledge()
        if not isinstance(exc, DaclipKitError):
            leave_group(synchronise=False)
            raise ProcessFailedError(first) from None
    raise exc


def describe_failure(exc: BaseException) -> str:
    """One line for an error: a daclip-kit error's message, an OS error's words and file, else
    ``"Type: message"``."""
    if isinstance(exc, DaclipKitError):
        return str(exc)
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror + (f": {exc.filename}" if exc.filename else "")
    text = " ".join(str(exc).split())
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


class _FailureWatch:
    """The job's failure notice: the first process to fail writes its message into the process
    group's store; a thread of every other process polls it and ends its process."""

    def __init__(self, proc: Process):
        import torch.distributed as dist

        self.proc = proc
        restart = os.environ.get("TORCHELASTIC_RESTART_COUNT", "0")
        self.key, self.count_key = f"daclip_kit/failure/{restart}", f"daclip_kit/failures/{restart}"
        self.ack_key, self.done_key = f"daclip_kit/acknowledged/{restart}", f"daclip_kit/first-done/{restart}"
        self.store: torch.distributed.Store | None
        try:
            self.store = dist.distributed_c10d._get_default_store()
        except Exception:
            self.store = None
        self._done = threading.Event()
        self._thread: threading.Thread | None = None
        if self.store is not None:
            self._thread = threading.Thread(target=self._watch, name="daclip-kit-failure-watch", daemon=True)
            self._thread.start()

    def stop(self) -> None:
        self._done.set()

    def close(self) -> None:
        """Stop the watch and wait for its thread to leave the store, so that no thread is inside the
        store's C++ client when the process exits (a client torn down under a running call aborts
        the process: "terminate called without an active exception")."""
        self.stop()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout=FAILURE_POLL * 2 + FAILURE_GRACE)

    def _failure(self) -> str | None:
        if self.store is None:
            return None
        try:
            if self.store.check([self.key]):
                return self.store.get(self.key).decode("utf-8", "replace")
        except Exception:
            return None
        return None

    def publish(self, exc: BaseException) -> str | None:
        """Report this process's failure (unless another was first); return the first failure's
        message when it was another process's, else ``None``."""
        self.stop()
        if self.store is None:
            return None
        try:
            if self.store.add(self.count_key, 1) == 1:
                message = f"process {self.proc.rank} of {self.proc.world} failed: {describe_failure(exc)}"
                self.store.set(self.key, message)  # stored as its UTF-8 bytes
                atexit.register(self._announce_exit)
                self._await_acknowledgements()
                return None
        except Exception:
            return None
        deadline = time.monotonic() + FAILURE_GRACE  # the first one's message follows its count
        while time.monotonic() < deadline:
            first = self._failure()
            if first is not None:
                return first
            time.sleep(FAILURE_POLL / 5)
        return None

    def acknowledge(self, *, at_exit: bool = True) -> None:
        """Tell the first failed process that this one knows its failure (and is ending); with
        ``at_exit`` this process waits, when it exits, until the first one has exited."""
        if self.store is None:
            return
        with contextlib.suppress(Exception):
            self.store.add(self.ack_key, 1)
        if at_exit:
            atexit.register(self.await_first_exit)

    def _poll(self, done: Callable[[Any], bool]) -> None:
        """Wait until ``done(store)`` holds (store errors end the wait) or :data:`FAILURE_WAIT` passed."""
        assert self.store is not None
        deadline = time.monotonic() + FAILURE_WAIT
        while time.monotonic() < deadline:
            try:
                if done(self.store):
                    return
            except Exception:
                return
            time.sleep(FAILURE_POLL / 5)

    def _await_acknowledgements(self) -> None:
        """Keep the first failed process until every other process has taken its failure in."""
        self._poll(lambda store: store.add(self.ack_key, 0) >= self.proc.world - 1)

    def _announce_exit(self) -> None:
        """The first failed process is exiting (after its last line): the others may go."""
        if self.store is not None:
            with contextlib.suppress(Exception):
                self.store.set(self.done_key, "1")

    def await_first_exit(self) -> None:
        """Wait (briefly) until the first failed process has written its line and exits."""
        if self.store is not None:
            self._poll(lambda store: store.check([self.done_key]))

    def _watch(self) -> None:
        seen = None
        while not self._done.wait(FAILURE_POLL):
            message = self._failure()
            if message is None:
                continue
            seen = seen or time.monotonic()
            if time.monotonic() - seen < FAILURE_GRACE:
                continue  # this process may be ending by itself (the same error everywhere)
            if self._done.is_set():
                return
            sys.stdout.flush()
            # the user's last message before os._exit (nothing runs after it): written and flushed to
            # stderr directly, like the CLI's "error: ..." lines, not through a log handler
            sys.stderr.write(f"error: {message}; process {self.proc.rank} stops too.\n")
            sys.stderr.flush()
            self.acknowledge(at_exit=False)
            self.await_first_exit()
            os._exit(1)


def leave_group(*, synchronise: bool = True) -> None:
    """End the process group this process created. With ``synchronise`` every process first waits
    for the others, so none tears its communication threads down while another still talks to it
    (an unsynchronised exit can abort a gloo process at shutdown); after an error the group is
    ended at once, since the other processes may never arrive."""
    import torch.distributed as dist

    if not dist.is_initialized():
        return
    if synchronise:
        dist.barrier()
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
