"""The training loop both trainers share.

A trainer supplies a :class:`TrainTask` (its models, data, loss and checkpoint contents); the loop
does the rest: run folder, device and precision, seeding, data order and sharding over processes,
gradient accumulation, AdamW and the learning-rate rule, gradient scaling, logging every
``log_every`` steps, validation, atomic checkpoints, resuming and stopping on Ctrl-C. Library code
logs through :mod:`logging`; a ``progress(step, total, record)`` callback lets the CLI draw a
progress bar.

For watching a run (``[logging]``, :class:`~daclip_kit.train.sections.LoggingConfig`): TensorBoard
event files in ``OUT/tensorboard/`` (``train/*`` and ``val/*`` scalars, validation images; the
package is imported only when a run writes them), the validation images a task hands over with
:meth:`TrainTask.add_val_image` in ``OUT/val-images/step-N/``, and the best checkpoint by the
task's validation metric (:attr:`TrainTask.best_metric`) named ``OUT/checkpoints/best``.

Order of a start (nothing is written before step 4, so a start that fails leaves no trace):

1. check the config, the resumed run's stored config and the output folder (read only);
2. build the task (models, data), estimate its memory (refused when it does not fit the budget:
   :mod:`.memory`) and build the optimizer, load the resumed state;
3. every process checks that all others got this far (:meth:`Distributed.agree`);
4. process 0 locks the folder and writes ``config.toml``; then training starts.

With several processes (``torchrun``) each trains on its share of every global batch and
``DistributedDataParallel`` averages the gradients; only process 0 writes files.
"""

from __future__ import annotations

import contextlib
import importlib.util
import json
import logging
import random
import re
import shutil
import signal
import threading
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.utils.data import DataLoader

from ..config import to_dict
from ..core.runtime import autocast
from ..errors import CheckpointError, ConfigError, DaclipKitError, InputError
from ..io import atomic_write_text, write_image
from ..options import option
from . import distributed
from .checkpoints import (
    CONFIG_JSON,
    CONFIG_TOML,
    METRICS,
    STATE_NAME,
    TENSORBOARD,
    VAL_IMAGES,
    RunLock,
    better,
    check_out_dir,
    clear_best,
    find_checkpoint,
    load_state,
    mark_best,
    prepare_out_dir,
    run_dir_of,
    save_checkpoint,
    step_dir,
    stored_config_text,
)
from .config import ABSENT, RESUME_ALLOWED_TEXT, config_to_toml, parse_run_config, resume_changes
from .datasets import (
    EpochData,
    ItemFailure,
    SafeItems,
    ShardedBatchSampler,
    collate_items,
    ignore_interrupts,
)
from .distributed import Distributed
from .memory import check_training_memory, enable_activation_checkpointing
from .optim import build_optimizer, lr_at, set_lr
from .sections import LoggingConfig

log = logging.getLogger(__name__)

#: ``progress(step, total, record)``: called after every step; ``record`` is the logged
#: metrics on log steps, else ``None``.
Progress = Callable[[int, int, "dict[str, Any] | None"], None]

#: A second Ctrl-C later than this after the first stops at once, without a checkpoint.
SECOND_SIGNAL_S = 2.0

#: The validation metric a task without :attr:`TrainTask.best_metric` is judged by: the first of
#: these its :meth:`~TrainTask.validate` reports (``(name, "max" | "min")``).
DEFAULT_BEST_METRICS: tuple[tuple[str, str], ...] = (("psnr", "max"), ("accuracy", "max"), ("loss", "min"))

#: What ``logging.tensorboard = true`` without the package says.
TENSORBOARD_INSTALL = "pip install 'daclip-kit[tensorboard]'"


class TrainingError(DaclipKitError):
    """Training cannot go on (for instance the loss is no longer finite)."""


class TrainingInterrupted(KeyboardInterrupt):
    """Training stopped on SIGINT (Ctrl-C) or SIGTERM after saving a checkpoint at the current step.

    Attributes:
        signum: the signal.
        step: the step training stopped at.
        checkpoint: the checkpoint to ``--resume`` from (``None`` when no step was done).
        exit_code: ``128 + signum`` (130 for SIGINT, 143 for SIGTERM).
    """

    def __init__(self, signum: int, step: int, checkpoint: Path | None):
        name = signal.Signals(signum).name
        where = f"; resume from {checkpoint}" if checkpoint is not None else ""
        super().__init__(f"stopped by {name} at step {step}{where}")
        self.signum, self.step, self.checkpoint = int(signum), int(step), checkpoint
        self.exit_code = 128 + int(signum)


def check_precision(precision: str, device: torch.device) -> None:
    """Refuse ``fp16`` (autocast + gradient scaling) off CUDA."""
    if precision == "fp16" and device.type != "cuda":
        raise ConfigError(f"precision='fp16' (amp) needs a CUDA device, got {device}; "
                          f"use {option('set', 'precision=bf16', python='precision=bf16')} or "
                          f"{option('set', 'precision=fp32', python='precision=fp32')}.")


def seed_everything(seed: int) -> None:
    """Seed Python's and torch's global generators (model initialisation)."""
    random.seed(seed)
    torch.manual_seed(seed)


class StepContext:
    """What :meth:`TrainTask.accumulate` gets for one optimizer step.

    Attributes:
        dist: the processes and this one's device (:class:`~daclip_kit.train.distributed.Distributed`).
        nonfinite: whether a loss passed to :meth:`backward` was not finite.
    """

    def __init__(self, dist: Distributed, precision: str, scaler: torch.amp.GradScaler):
        self.dist, self.precision, self.scaler = dist, precision, scaler
        self.nonfinite = False

    def autocast(self) -> contextlib.AbstractContextManager:
        """The forward pass's precision context."""
        return autocast(self.precision, self.dist.device)

    def sync(self, last: bool) -> contextlib.AbstractContextManager:
        """Wrap the forward and backward pass of a micro-batch: gradients are averaged over the
        processes only in the ``last`` one (``DistributedDataParallel.no_sync`` before)."""
        return self.dist.no_sync(last)

    def backward(self, loss: torch.Tensor) -> None:
        """Back-propagate ``loss`` (scaled for fp16), accumulating into ``.grad``."""
        if not bool(torch.isfinite(loss.detach()).all()):
            self.nonfinite = True
        self.scaler.scale(loss).backward()


class TrainTask(ABC):
    """What a trainer contributes to :func:`run`.

    Subclasses build their models in ``__init__(cfg, device, checkpoint)``, loading the weights of
    ``checkpoint`` (a checkpoint folder, or ``None`` for a fresh run).

    Attributes:
        dataset: the training set; it must have ``set_epoch(epoch)``.
        batch_size: the global batch (items per optimizer step over all processes).
        accumulate_steps: micro-batches per step and process.
        num_workers: data-loader processes (per training process).
        best_metric: ``(name, "max" | "min")``: the metric of :meth:`validate` that picks the best
            checkpoint and whether higher or lower is better; ``None`` (the default): the first of
            :data:`DEFAULT_BEST_METRICS` that :meth:`validate` reports (``psnr``, ``accuracy``,
            ``loss``).
        val_images_wanted: how many images :meth:`validate` should hand over with
            :meth:`add_val_image` (set by the loop from ``logging.val_images``; ``0`` outside it).
    """

    dataset: EpochData
    batch_size: int
    accumulate_steps: int = 1
    num_workers: int = 0
    best_metric: tuple[str, str] | None = None
    val_images_wanted: int = 0

    @abstractmethod
    def trainable(self) -> Iterable[tuple[str, nn.Parameter]]:
        """``(name, parameter)`` of everything the optimizer updates."""

    def wrap(self, wrap: Callable[[nn.Module], nn.Module]) -> None:  # noqa: B027 - optional hook, no-op by default
        """Replace the trained module used in :meth:`loss` by ``wrap(module)`` (data-parallel
        wrapper with several processes). The default trains without a wrapper (one process)."""

    def loss(self, batch: dict) -> tuple[torch.Tensor, dict[str, float]]:
        """Scalar loss of one micro-batch (called under autocast) and values to log; the default
        :meth:`accumulate` needs it, a task overriding :meth:`accumulate` need not."""
        raise NotImplementedError(f"{type(self).__name__} defines neither loss() nor accumulate().")

    def accumulate(self, batches: list[dict], ctx: StepContext) -> dict[str, float]:
        """Forward and backward of one optimizer step's micro-batches (this process's share).

        The default: ``backward(loss_j / k)`` for each of the ``k`` micro-batches, so the
        gradient is that of the mean loss over the process's share (and, averaged by the
        data-parallel wrapper, over the global batch). Returns the values to log (``"loss"``
        included), averaged over the micro-batches.
        """
        k = len(batches)
        totals: dict[str, float] = {}
        for j, batch in enumerate(batches):
            with ctx.sync(j == k - 1):
                with ctx.autocast():
                    loss, values = self.loss(batch)
                ctx.backward(loss / k)
            for key, value in {"loss": float(loss.detach()), **values}.items():
                totals[key] = totals.get(key, 0.0) + float(value) / k
        return totals

    def after_step(self, step: int) -> None:  # noqa: B027 - optional hook, no-op by default
        """Called after each optimizer step with the new step count."""

    def checkpoint_units(self) -> list[nn.Module]:
        """The blocks whose activations ``activation_checkpointing = true`` recomputes in the
        backward pass (:func:`~daclip_kit.train.memory.enable_activation_checkpointing`); the
        default, none, refuses the setting."""
        return []

    def memory_trace(self, cfg: Any, micro_batch: int) -> tuple[nn.Module, tuple, dict] | None:
        """The trained module and ``meta`` inputs of one forward pass of ``micro_batch`` items as
        ``cfg`` says (its patch size, say), for the memory estimate printed at the start of a run
        (:mod:`daclip_kit.train.memory`); ``None`` (the default): activations are not estimated."""
        return None

    @abstractmethod
    def model_writers(self) -> dict[str, Callable[[Path], Any]]:
        """``{folder name: writer(path)}`` of the models a checkpoint holds."""

    def state(self) -> dict[str, Any]:
        """Extra resumable state (plain values and tensors)."""
        return {}

    def load_state(self, state: dict[str, Any]) -> None:  # noqa: B027 - optional hook, no-op by default
        """Restore :meth:`state`."""

    def validation_interval(self, steps_per_epoch: int) -> int:
        """Validate every N steps (``0``: never, the default)."""
        return 0

    def validate(self, step: int) -> dict[str, float]:
        """Validation metrics at ``step`` (run by process 0 only). It may also hand the loop up to
        :attr:`val_images_wanted` images with :meth:`add_val_image`."""
        return {}

    def add_val_image(self, name: str, *panels: torch.Tensor) -> None:
        """Hand the loop one image of the current validation: ``panels`` (``(3, H, W)`` or
        ``(1, 3, H, W)`` in [0, 1], e.g. LQ, output, GT) side by side, saved as
        ``OUT/val-images/step-N/<name>.png`` and as the TensorBoard image ``val/<name>``. Images
        beyond :attr:`val_images_wanted` are dropped."""
        kept = self.__dict__.setdefault("_val_images", [])
        if len(kept) < self.val_images_wanted:
            kept.append((name, side_by_side(panels)))

    def take_val_images(self) -> list[tuple[str, torch.Tensor]]:
        """The images :meth:`add_val_image` got since the last call (called by the loop)."""
        return self.__dict__.pop("_val_images", [])


@dataclass
class TrainResult:
    """What :func:`run` did.

    Attributes:
        out_dir: the run folder.
        step: the step training ended at.
        checkpoint: the newest checkpoint folder (``None`` if nothing was saved).
        history: the logged records (``{"step", "lr", "loss", ...}``) and validation records
            (process 0; empty on the others).
        best: the best validation so far (process 0): ``{"step", "metric", "value", "mode"}``, its
            checkpoint ``OUT/checkpoints/best``; ``None`` without validation.
    """

    out_dir: Path
    step: int
    checkpoint: Path | None
    history: list[dict[str, Any]] = field(default_factory=list)
    best: dict[str, Any] | None = None


def write_run_config(out_dir: Path, cfg: Any) -> None:
    """Save the resolved config as ``config.toml`` (usable with ``--config``) and ``config.json``."""
    atomic_write_text(out_dir / CONFIG_TOML, config_to_toml(cfg))
    atomic_write_text(out_dir / CONFIG_JSON, json.dumps(to_dict(cfg), indent=2) + "\n")


def check_resume_config(cfg: Any, checkpoint: Path) -> None:
    """Refuse to resume ``checkpoint`` with a config that differs from the one it was trained with
    in anything but :data:`~daclip_kit.train.config.RESUME_ALLOWED` (reads only).

    Raises:
        ConfigError: one line naming the changed keys, their stored and new values.
        CheckpointError: no stored config to compare with.
    """
    found = stored_config_text(checkpoint)
    if found is None:
        raise CheckpointError(f"{str(checkpoint)!r} has no config.toml in its run folder and no stored config; "
                              "it cannot be resumed safely.")
    text, where = found
    stored = parse_run_config(type(cfg), text, where)
    changes = resume_changes(stored, cfg)
    if changes:
        shown = ", ".join(f"{k} {_value(a)} -> {_value(b)}" for k, a, b in changes)
        raise ConfigError(
            f"Cannot resume {str(run_dir_of(checkpoint))!r} with a changed config: {shown}. Resuming may only change "
            f"{RESUME_ALLOWED_TEXT}; drop the other changes (the run's config.toml is used by default) or start a "
            "new run with --out.")


def _value(v: Any) -> str:
    return "(absent)" if v is ABSENT else repr(v)


def _total_steps(cfg: Any, steps_per_epoch: int) -> int:
    return int(cfg.max_steps) if cfg.max_steps is not None else int(cfg.epochs) * steps_per_epoch


def _rng_state() -> dict[str, Any]:
    state = {"torch": torch.get_rng_state(), "python": list(random.getstate()[1])}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def _load_rng_state(state: dict[str, Any]) -> None:
    torch.set_rng_state(state["torch"])
    random.setstate((3, tuple(state["python"]), None))
    if "cuda" in state and torch.cuda.is_available() and len(state["cuda"]) == torch.cuda.device_count():
        torch.cuda.set_rng_state_all(state["cuda"])


def tensorboard_wanted(setting: bool | str) -> bool:
    """Whether a run writes TensorBoard files for ``logging.tensorboard = setting`` (``"auto"``: when
    the ``tensorboard`` package is installed). Nothing is imported.

    Raises:
        ConfigError: ``true`` but the package is not installed (naming how to install it).
    """
    if setting is False:
        return False
    installed = importlib.util.find_spec("tensorboard") is not None
    if setting is True and not installed:
        raise ConfigError(f"logging.tensorboard = true, but the tensorboard package is not installed; install it "
                          f"with {TENSORBOARD_INSTALL}, or set logging.tensorboard = false (\"auto\", the default, "
                          "writes TensorBoard files only when it is installed).")
    return installed


def side_by_side(panels: Iterable[torch.Tensor]) -> torch.Tensor:
    """One ``(3, H, W_1 + W_2 + ...)`` image of ``(3, H_i, W_i)`` images (or ``(1, 3, H_i, W_i)``, or
    one channel) placed left to right, on the CPU, clamped to [0, 1]; ``H`` is the largest
    ``H_i``, the shorter ones padded with black at the bottom."""
    images = []
    for panel in panels:
        image = panel.detach().float().cpu()
        image = image[0] if image.dim() == 4 else image
        image = image.expand(3, -1, -1) if image.shape[0] == 1 else image
        images.append(image.clamp(0, 1))
    if not images:
        raise ValueError("side_by_side needs at least one image")
    height = max(i.shape[1] for i in images)
    return torch.cat([torch.nn.functional.pad(i, (0, 0, 0, height - i.shape[1])) for i in images], dim=2)


def _file_name(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", name).strip("._") or "image"


class _Board:
    """The run's TensorBoard writer (``OUT/tensorboard``, process 0), or nothing at all."""

    def __init__(self, folder: Path | None = None, purge_step: int | None = None):
        self.writer: Any = None
        if folder is not None:
            from torch.utils.tensorboard import SummaryWriter  # lazy: imports tensorboard (seconds)

            self.writer = SummaryWriter(log_dir=str(folder), purge_step=purge_step)
            log.info("TensorBoard files in %s (tensorboard --logdir %s)", folder, folder)

    def record(self, record: dict[str, Any]) -> None:
        """A logged record: ``val_x`` as ``val/x``, the others as ``train/x``, at ``record["step"]``."""
        if self.writer is None:
            return
        step = int(record["step"])
        for key, value in record.items():
            if key == "step" or isinstance(value, bool) or not isinstance(value, (int, float)):
                continue
            tag = f"val/{key[4:]}" if key.startswith("val_") else f"train/{key}"
            self.writer.add_scalar(tag, float(value), step)
        self.writer.flush()

    def image(self, tag: str, image: torch.Tensor, step: int) -> None:
        if self.writer is not None:
            self.writer.add_image(tag, image, step, dataformats="CHW")

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
            self.writer = None


class _StopSignals:
    """SIGINT/SIGTERM set :attr:`signum` instead of raising, so the loop can save and stop after
    the current step. A second SIGINT more than :data:`SECOND_SIGNAL_S` after the first raises
    ``KeyboardInterrupt`` at once (copies of one Ctrl-C, e.g. forwarded by torchrun, are ignored)."""

    def __init__(self) -> None:
        self.signum: int | None = None
        self._at = 0.0
        self._old: dict[int, Any] = {}

    def __enter__(self) -> _StopSignals:
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGINT, signal.SIGTERM):
                self._old[sig] = signal.signal(sig, self._handle)
        return self

    def _handle(self, signum: int, _frame: Any) -> None:
        now = time.monotonic()
        if self.signum is None:
            self.signum, self._at = signum, now
        elif signum == signal.SIGINT and now - self._at > SECOND_SIGNAL_S:
            raise KeyboardInterrupt

    def __exit__(self, *exc: object) -> None:
        for sig, old in self._old.items():
            signal.signal(sig, old)
        self._old.clear()


def run(task_factory: Callable[[Any, torch.device, Path | None], TrainTask], cfg: Any, *,
        resume: str | Path | None = None, overwrite: bool = False,
        progress: Progress | None = None) -> TrainResult:
    """Train ``task_factory(cfg, device, checkpoint)`` as ``cfg`` says.

    Under ``torchrun`` (``WORLD_SIZE > 1``) every process calls this; they share each global
    batch and process 0 writes the run folder.

    Args:
        task_factory: builds the :class:`TrainTask` (a trainer class).
        cfg: a run config (:class:`~daclip_kit.train.config.DaClipTrainConfig` or
            :class:`~daclip_kit.train.config.RestorationTrainConfig`); ``cfg.out_dir`` is the run folder.
        resume: a run folder or checkpoint folder to continue from (its step count, optimizer,
            scaler, EMA and weights). ``cfg`` must equal the run's stored config except for
            :data:`~daclip_kit.train.config.RESUME_ALLOWED`.
        overwrite: allow a non-empty ``cfg.out_dir`` (the files of an earlier run are removed).
        progress: see :data:`Progress`.

    Raises:
        InputError: non-empty output folder without ``resume``/``overwrite``; unreadable data.
        ConfigError: bad or changed settings, batch larger than the data set, unusable device.
        TrainingError: the loss stopped being finite.
        TrainingInterrupted: SIGINT/SIGTERM; a checkpoint of the current step was saved first.
    """
    cfg = cfg.validate()
    with distributed.session(cfg.device) as dist:
        return _Run(task_factory, cfg, dist, progress).start(resume, overwrite)


class _Run:
    def __init__(self, task_factory, cfg, dist: Distributed, progress: Progress | None):
        self.task_factory, self.cfg, self.dist, self.progress = task_factory, cfg, dist, progress
        self.device = dist.device
        self.logging: LoggingConfig = getattr(cfg, "logging", None) or LoggingConfig()
        self.best: dict[str, Any] | None = None
        self.board = _Board()

    # -- start ------------------------------------------------------------------------------

    def _plan(self, resume, overwrite):
        checkpoint = find_checkpoint(resume) if resume is not None else None
        out = Path(self.cfg.out_dir)
        if checkpoint is not None:
            check_resume_config(self.cfg, checkpoint)
        in_place = checkpoint is not None and run_dir_of(checkpoint).resolve() == out.resolve()
        self.tensorboard = tensorboard_wanted(self.logging.tensorboard)
        return checkpoint, out, check_out_dir(out, resume_in_place=in_place, overwrite=overwrite)

    def _build(self, checkpoint: Path | None) -> None:
        cfg, dist = self.cfg, self.dist
        check_precision(cfg.precision, self.device)
        seed_everything(cfg.seed)
        task = self.task_factory(cfg, self.device, checkpoint)
        task.val_images_wanted = self.logging.val_images
        _check_best_metric(task)
        g, k = task.batch_size, task.accumulate_steps
        if g % (dist.world * k):
            raise ConfigError(f"data.batch_size={g} (the global batch) must be divisible by the {dist.world} "
                              f"process(es) x data.accumulate_steps={k}; change one of them.")
        self.steps_per_epoch = len(task.dataset) // g
        if self.steps_per_epoch == 0:
            raise ConfigError(f"data.batch_size={g} is larger than the {len(task.dataset)} training samples; "
                              f"lower it ({option('set', 'data.batch_size=N', python='data.batch_size=N')}) or "
                              "add data.")
        self.total = _total_steps(cfg, self.steps_per_epoch)
        self.memory = check_training_memory(task, cfg, self.device, dist.world)
        if getattr(cfg, "activation_checkpointing", False):
            units = task.checkpoint_units()
            if not units:
                network = getattr(getattr(cfg, "network", None), "name", None) or type(task).__name__
                raise ConfigError(f"activation_checkpointing=true is not available for {network} (it names no blocks "
                                  "to recompute; the IR-SDE U-Net and DA-CLIP do); set it to false.")
            enable_activation_checkpointing(units)
        params = list(task.trainable())
        self.trainable = [p for _, p in params]
        self.optimizer = build_optimizer(params, cfg.optim)
        self.scaler = torch.amp.GradScaler(self.device.type, enabled=cfg.precision == "fp16")
        self.step = 0
        if checkpoint is not None:
            state = load_state(checkpoint)
            try:
                self.optimizer.load_state_dict(state["optimizer"])
                self.scaler.load_state_dict(state["scaler"])
                _load_rng_state(state["rng"])
                task.load_state(state["task"])
                self.step = int(state["step"])
                self.best = state.get("best")
            except (KeyError, ValueError, RuntimeError) as exc:
                raise CheckpointError(f"Cannot resume from {str(checkpoint)!r}: its trainer state does not fit "
                                      f"this run ({exc}).") from None
        self.task = task

    def start(self, resume, overwrite) -> TrainResult:
        dist, cfg = self.dist, self.cfg
        checkpoint, out, plan = dist.agree(lambda: self._plan(resume, overwrite))
        dist.agree(lambda: self._build(checkpoint))
        self.out = out
        lock = RunLock(out)

        def write() -> None:
            out.mkdir(parents=True, exist_ok=True)
            lock.acquire()
            prepare_out_dir(out, plan)
            write_run_config(out, cfg)
            if plan == "resume":
                truncate_metrics(out / METRICS, self.step)
                drop_later_images(out / VAL_IMAGES, self.step)
            self._keep_best()

        try:
            dist.agree(write, only_main=True)
            if checkpoint is not None:
                log.info("resumed at step %d from %s", self.step, checkpoint)
            self.task.wrap(dist.wrap)
            if dist.is_main and self.tensorboard:
                self.board = _Board(out / TENSORBOARD, purge_step=self.step + 1 if self.step else None)
            return self._train(checkpoint)
        finally:
            self.board.close()
            lock.release()

    def _keep_best(self) -> None:
        """Name the best checkpoint of the resumed state in this run folder (or nothing: a new run,
        one resumed without validations, or one continued in another folder, where the best
        checkpoint of the earlier folder is not)."""
        best = self.best
        if best is not None and not (step_dir(self.out, int(best["step"])) / STATE_NAME).is_file():
            log.info("the best checkpoint so far (step %s) is not in %s; the best is chosen again from the "
                     "validations of this run", best["step"], self.out)
            best = None
        self.best = best
        if best is None:
            clear_best(self.out)
        else:
            mark_best(self.out, best)

    # -- training ---------------------------------------------------------------------------

    def _save(self) -> Path | None:
        """Write a checkpoint (process 0; the others have nothing to write and return ``None``)."""
        if not self.dist.is_main:
            return None
        state = {"step": self.step, "total": self.total, "optimizer": self.optimizer.state_dict(),
                 "scaler": self.scaler.state_dict(), "rng": _rng_state(), "task": self.task.state(),
                 "world_size": self.dist.world, "config": config_to_toml(self.cfg), "best": self.best}
        protect = int(self.best["step"]) if self.best is not None else None
        path = save_checkpoint(self.out, self.step, self.task.model_writers(), state, keep=self.cfg.keep,
                               protect=protect)
        log.info("saved %s", path)
        return path

    def _batches(self, loader: DataLoader) -> Iterator[list[Any]]:
        k = self.task.accumulate_steps
        it = iter(loader)
        while True:
            micro = []
            for _ in range(k):
                try:
                    micro.append(next(it))
                except StopIteration:
                    return
            yield micro

    def _train(self, checkpoint: Path | None) -> TrainResult:
        cfg, dist, task = self.cfg, self.dist, self.task
        result = TrainResult(self.out, self.step, checkpoint if dist.is_main else None,
                             best=self.best if dist.is_main else None)
        total = self.total
        if self.step >= total:
            log.info("nothing to do: step %d >= total %d", self.step, total)
            return result
        sampler = ShardedBatchSampler(len(task.dataset), cfg.seed, task.batch_size, world=dist.world,
                                      rank=dist.rank, accumulate=task.accumulate_steps)
        loader = DataLoader(SafeItems(task.dataset), batch_sampler=sampler, num_workers=task.num_workers,
                            collate_fn=collate_items, pin_memory=self.device.type == "cuda",
                            worker_init_fn=ignore_interrupts if task.num_workers else None)
        save_every = cfg.save_every or self.steps_per_epoch
        validate_every = task.validation_interval(self.steps_per_epoch)
        ctx = StepContext(dist, cfg.precision, self.scaler)
        window: dict[str, float] = {}
        window_steps = 0
        saved_at = -1
        tic = time.perf_counter()
        log.info("training %d steps (%d per epoch, global batch %d = %d process(es) x %d micro-batch(es) of %d) "
                 "on %s, %s", total, self.steps_per_epoch, task.batch_size, dist.world, task.accumulate_steps,
                 sampler.micro, self.device, cfg.precision)
        with _StopSignals() as stop:
            while self.step < total:
                epoch, offset = divmod(self.step, self.steps_per_epoch)
                task.dataset.set_epoch(epoch)
                sampler.set_epoch(epoch, offset)
                for micro in self._batches(loader):
                    failure = next((b for b in micro if isinstance(b, ItemFailure)), None)
                    halt = dist.max([float(failure is not None), float(stop.signum or 0)])
                    if halt[0]:
                        raise InputError(failure.message if failure is not None else
                                         "another process could not read a training item (see its error).")
                    if halt[1]:
                        signum = int(halt[1])
                        if saved_at != self.step and self.step > 0:
                            result.checkpoint = self._save() or result.checkpoint
                        dist.barrier()
                        raise TrainingInterrupted(signum, self.step, result.checkpoint if self.step > 0 else None)

                    lr = lr_at(self.step, total, cfg.optim)
                    set_lr(self.optimizer, lr)
                    self.optimizer.zero_grad(set_to_none=True)
                    ctx.nonfinite = False
                    values = task.accumulate(micro, ctx)
                    if dist.any(ctx.nonfinite):
                        if cfg.precision != "fp16":
                            raise TrainingError(f"The loss is {values.get('loss')} at step {self.step + 1}; lower "
                                                "optim.lr, set optim.grad_clip, or check the data.")
                        log.warning("non-finite loss at step %d; the gradient scaler skips this step", self.step + 1)
                    if cfg.optim.grad_clip is not None:
                        self.scaler.unscale_(self.optimizer)
                        torch.nn.utils.clip_grad_norm_(self.trainable, cfg.optim.grad_clip)
                    self.scaler.step(self.optimizer)
                    self.scaler.update()
                    self.step += 1
                    step = self.step
                    task.after_step(step)

                    window_steps += 1
                    for key, value in values.items():
                        window[key] = window.get(key, 0.0) + float(value)
                    record = None
                    if step % cfg.log_every == 0 or step == total:
                        keys = sorted(window)
                        sums = dist.sum([window[k] for k in keys])
                        seconds = time.perf_counter() - tic
                        record = {"step": step, "epoch": epoch, "lr": lr,
                                  **{k: v / (window_steps * dist.world) for k, v in zip(keys, sums, strict=True)},
                                  "steps_per_s": window_steps / max(seconds, 1e-9)}
                        self._log(record, result)
                        window, window_steps, tic = {}, 0, time.perf_counter()
                    improved = False
                    if validate_every and step % validate_every == 0:
                        if dist.is_main:
                            metrics = task.validate(step)
                            val = {"step": step, **{f"val_{k}": v for k, v in metrics.items()}}
                            self._log(val, result)
                            self._val_images(step)
                            improved = self._judge(step, metrics)
                            record = {**(record or {}), **val}
                        dist.barrier()
                    if step % save_every == 0 or step == total or improved:  # the best is always saved
                        result.checkpoint = self._save() or result.checkpoint
                        saved_at = step
                        if improved and self.best is not None:
                            mark_best(self.out, self.best)
                            result.best = self.best
                    if self.progress is not None:
                        self.progress(step, total, record)
                    if step >= total:
                        break
        dist.barrier()
        result.step = self.step
        return result

    def _log(self, record: dict[str, Any], result: TrainResult) -> None:
        if not self.dist.is_main:
            return
        _log_record(self.out, record)
        self.board.record(record)
        result.history.append(record)

    def _val_images(self, step: int) -> None:
        """Save the images the task handed over in this validation (process 0)."""
        images = self.task.take_val_images()
        if not images:
            return
        folder = self.out / VAL_IMAGES / f"step-{step:08d}"
        folder.mkdir(parents=True, exist_ok=True)
        for name, image in images:
            name = _file_name(name)
            write_image(folder / f"{name}.png", image)
            self.board.image(f"val/{name}", image, step)

    def _judge(self, step: int, metrics: dict[str, float]) -> bool:
        """Whether the validation ``metrics`` of ``step`` are the best so far (then :attr:`best` is
        updated; the caller saves the checkpoint of ``step`` and names it the best)."""
        chosen = self.task.best_metric or next(((n, m) for n, m in DEFAULT_BEST_METRICS if n in metrics), None)
        if chosen is None or chosen[0] not in metrics:
            return False
        name, mode = chosen
        value = float(metrics[name])
        best = self.best if self.best is not None and self.best.get("metric") == name else None
        if not better(value, None if best is None else float(best["value"]), mode):
            return False
        self.best = {"step": step, "metric": name, "value": value, "mode": mode}
        log.info("step %d: best val_%s so far (%.6g); it becomes checkpoints/best", step, name, value)
        return True


def _check_best_metric(task: TrainTask) -> None:
    chosen = task.best_metric
    if chosen is not None and (len(chosen) != 2 or chosen[1] not in ("max", "min")):
        raise ConfigError(f"{type(task).__name__}.best_metric = {chosen!r}: it must be (metric name, \"max\" or "
                          "\"min\"), e.g. (\"psnr\", \"max\").")


def drop_later_images(folder: Path, step: int) -> None:
    """Remove the validation images (``OUT/val-images/step-N``) of steps after ``step``: those of the
    steps a run resumed from ``step`` takes again."""
    if not folder.is_dir():
        return
    for path in folder.iterdir():
        match = re.fullmatch(r"step-(\d+)", path.name)
        if match and int(match.group(1)) > step and path.is_dir():
            shutil.rmtree(path, ignore_errors=True)


def truncate_metrics(path: Path, step: int) -> None:
    """Keep only the records of ``path`` (``metrics.jsonl``) up to ``step``, rewritten atomically, so
    a run resumed from an earlier checkpoint does not log the later steps twice."""
    if not path.is_file():
        return
    kept, dropped = [], 0
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            record = json.loads(line)
            keep = int(record["step"]) <= step
        except (ValueError, TypeError, KeyError):
            keep = False  # e.g. a line cut short when the earlier run was killed
        if keep:
            kept.append(line + "\n")
        else:
            dropped += 1
    if dropped:
        atomic_write_text(path, "".join(kept))
        log.info("dropped %d record(s) after step %d from %s", dropped, step, path)


def _log_record(out: Path, record: dict[str, Any]) -> None:
    shown = "  ".join(f"{k} {v:.4g}" if isinstance(v, float) else f"{k} {v}" for k, v in record.items())
    log.info("%s", shown)
    with (out / METRICS).open("a", encoding="utf-8") as fh:
        fh.write(json.dumps(record) + "\n")
