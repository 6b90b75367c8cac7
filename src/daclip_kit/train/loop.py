"""The training loop both trainers share.

A trainer supplies a :class:`TrainTask` (its models, data, loss and checkpoint contents); the loop
does the rest: run folder, device and precision, seeding, data order, AdamW and the learning-rate
rule, gradient scaling, logging every ``log_every`` steps, validation, atomic checkpoints and
resuming. Library code logs through :mod:`logging`; a ``progress(step, total, record)`` callback
lets the CLI draw a progress bar.
"""

from __future__ import annotations

import contextlib
import json
import logging
import random
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset

from ..config import to_dict
from ..core.device import pick_device
from ..errors import ConfigError, DaclipKitError
from ..io import atomic_write_text
from .checkpoints import (
    CONFIG_JSON,
    CONFIG_TOML,
    METRICS,
    find_checkpoint,
    load_state,
    prepare_out_dir,
    run_dir_of,
    save_checkpoint,
)
from .config import config_to_toml
from .datasets import EpochSampler
from .optim import build_optimizer, lr_at, set_lr

log = logging.getLogger(__name__)

#: ``progress(step, total, record)``: called after every step; ``record`` is the logged
#: metrics on log steps, else ``None``.
Progress = Callable[[int, int, "dict[str, Any] | None"], None]

_DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16}


class TrainingError(DaclipKitError):
    """Training cannot go on (for instance the loss is no longer finite)."""


def check_precision(precision: str, device: torch.device) -> None:
    """Refuse ``fp16`` (autocast + gradient scaling) off CUDA."""
    if precision == "fp16" and device.type != "cuda":
        raise ConfigError(f"precision='fp16' (amp) needs a CUDA device, got {device}; "
                          "use --set precision=bf16 or --set precision=fp32.")


def autocast(device: torch.device, precision: str) -> contextlib.AbstractContextManager:
    """Autocast to bf16/fp16, or nothing for fp32."""
    if precision == "fp32":
        return contextlib.nullcontext()
    return torch.autocast(device_type=device.type, dtype=_DTYPES[precision])


def seed_everything(seed: int) -> None:
    """Seed Python's and torch's global generators (model initialisation)."""
    random.seed(seed)
    torch.manual_seed(seed)


class TrainTask(ABC):
    """What a trainer contributes to :func:`run`.

    Subclasses build their models in ``__init__(cfg, device, checkpoint)``, loading the weights of
    ``checkpoint`` (a checkpoint folder, or ``None`` for a fresh run).

    Attributes:
        dataset: the training set; it must have ``set_epoch(epoch)``.
        batch_size, num_workers: data-loader settings.
        validate_every: call :meth:`validate` every N steps (``0``: never).
    """

    dataset: Dataset
    batch_size: int
    num_workers: int = 0
    validate_every: int = 0

    @abstractmethod
    def trainable(self) -> Iterable[tuple[str, nn.Parameter]]:
        """``(name, parameter)`` of everything the optimizer updates."""

    @abstractmethod
    def loss(self, batch: dict, generator: torch.Generator) -> tuple[torch.Tensor, dict[str, float]]:
        """Scalar loss of one batch (called under autocast) and values to log."""

    def after_step(self, step: int) -> None:
        """Called after each optimizer step with the new step count."""

    @abstractmethod
    def model_writers(self) -> dict[str, Callable[[Path], Any]]:
        """``{folder name: writer(path)}`` of the models a checkpoint holds."""

    def state(self) -> dict[str, Any]:
        """Extra resumable state (plain values and tensors)."""
        return {}

    def load_state(self, state: dict[str, Any]) -> None:
        """Restore :meth:`state`."""

    def validate(self, step: int) -> dict[str, float]:
        """Validation metrics at ``step``."""
        return {}


@dataclass
class TrainResult:
    """What :func:`run` did.

    Attributes:
        out_dir: the run folder.
        step: the step training ended at.
        checkpoint: the newest checkpoint folder (``None`` if nothing was saved).
        history: the logged records (``{"step", "lr", "loss", ...}``) and validation records.
    """

    out_dir: Path
    step: int
    checkpoint: Path | None
    history: list[dict[str, Any]] = field(default_factory=list)


def write_run_config(out_dir: Path, cfg: Any) -> None:
    """Save the resolved config as ``config.toml`` (usable with ``--config``) and ``config.json``."""
    atomic_write_text(out_dir / CONFIG_TOML, config_to_toml(cfg))
    atomic_write_text(out_dir / CONFIG_JSON, json.dumps(to_dict(cfg), indent=2) + "\n")


def _total_steps(cfg: Any, steps_per_epoch: int) -> int:
    return int(cfg.max_steps) if cfg.max_steps is not None else int(cfg.epochs) * steps_per_epoch


def _rng_state(generator: torch.Generator) -> dict[str, Any]:
    state = {"torch": torch.get_rng_state(), "generator": generator.get_state(),
             "python": list(random.getstate()[1])}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def _load_rng_state(state: dict[str, Any], generator: torch.Generator) -> None:
    torch.set_rng_state(state["torch"])
    generator.set_state(state["generator"])
    random.setstate((3, tuple(state["python"]), None))
    if "cuda" in state and torch.cuda.is_available() and len(state["cuda"]) == torch.cuda.device_count():
        torch.cuda.set_rng_state_all(state["cuda"])


def run(task_factory: Callable[[Any, torch.device, Path | None], TrainTask], cfg: Any, *,
        resume: str | Path | None = None, overwrite: bool = False,
        progress: Progress | None = None) -> TrainResult:
    """Train ``task_factory(cfg, device, checkpoint)`` as ``cfg`` says.

    Args:
        task_factory: builds the :class:`TrainTask` (a trainer class).
        cfg: a run config (:class:`~daclip_kit.train.config.DaClipTrainConfig` or
            :class:`~daclip_kit.train.config.RestorationTrainConfig`); ``cfg.out_dir`` is the run folder.
        resume: a run folder or checkpoint folder to continue from (its step count, optimizer,
            scaler, random states and weights).
        overwrite: allow a non-empty ``cfg.out_dir`` (the files of an earlier run are removed).
        progress: see :data:`Progress`.

    Raises:
        InputError: non-empty output folder without ``resume``/``overwrite``.
        ConfigError: batch larger than the data set, unusable device or precision.
        TrainingError: the loss stopped being finite.
    """
    cfg = cfg.validate()
    checkpoint = find_checkpoint(resume) if resume is not None else None
    out = Path(cfg.out_dir)
    if checkpoint is not None and run_dir_of(checkpoint).resolve() != out.resolve():
        log.info("resuming from %s into %s", checkpoint, out)
    out = prepare_out_dir(out, resume=checkpoint is not None, overwrite=overwrite)
    write_run_config(out, cfg)

    device = pick_device(cfg.device)
    check_precision(cfg.precision, device)
    seed_everything(cfg.seed)
    task = task_factory(cfg, device, checkpoint)
    steps_per_epoch = len(task.dataset) // task.batch_size
    if steps_per_epoch == 0:
        raise ConfigError(f"data.batch_size={task.batch_size} is larger than the {len(task.dataset)} training "
                          "samples; lower it (--set data.batch_size=N) or add data.")
    total = _total_steps(cfg, steps_per_epoch)

    params = list(task.trainable())
    optimizer = build_optimizer(params, cfg.optim)
    scaler = torch.amp.GradScaler(device.type, enabled=cfg.precision == "fp16")
    generator = torch.Generator().manual_seed(cfg.seed)
    step = 0
    if checkpoint is not None:
        state = load_state(checkpoint)
        optimizer.load_state_dict(state["optimizer"])
        scaler.load_state_dict(state["scaler"])
        _load_rng_state(state["rng"], generator)
        task.load_state(state["task"])
        step = int(state["step"])
        log.info("resumed at step %d from %s", step, checkpoint)
        truncate_metrics(out / METRICS, step)

    result = TrainResult(out, step, checkpoint)
    if step >= total:
        log.info("nothing to do: step %d >= total %d", step, total)
        return result

    sampler = EpochSampler(len(task.dataset), cfg.seed)
    loader = DataLoader(task.dataset, batch_size=task.batch_size, sampler=sampler, drop_last=True,
                        num_workers=task.num_workers, pin_memory=device.type == "cuda")
    save_every = cfg.save_every or steps_per_epoch
    trainable = [p for _, p in params]

    def save() -> Path:
        state = {"step": step, "total": total, "optimizer": optimizer.state_dict(), "scaler": scaler.state_dict(),
                 "rng": _rng_state(generator), "task": task.state()}
        return save_checkpoint(out, step, task.model_writers(), state, keep=cfg.keep)

    window: dict[str, float] = {}
    window_steps = 0
    tic = time.perf_counter()
    log.info("training %d steps (%d per epoch, batch %d) on %s, %s", total, steps_per_epoch,
             task.batch_size, device, cfg.precision)
    while step < total:
        epoch, offset = divmod(step, steps_per_epoch)
        task.dataset.set_epoch(epoch)
        sampler.set_epoch(epoch, offset * task.batch_size)
        for batch in loader:
            lr = lr_at(step, total, cfg.optim)
            set_lr(optimizer, lr)
            with autocast(device, cfg.precision):
                loss, values = task.loss(batch, generator)
            if not torch.isfinite(loss.detach()):
                if cfg.precision != "fp16":
                    raise TrainingError(f"The loss is {float(loss)} at step {step + 1}; lower optim.lr, "
                                        "set optim.grad_clip, or check the data.")
                log.warning("non-finite loss at step %d; the gradient scaler skips this step", step + 1)
            optimizer.zero_grad(set_to_none=True)
            scaler.scale(loss).backward()
            if cfg.optim.grad_clip is not None:
                scaler.unscale_(optimizer)
                torch.nn.utils.clip_grad_norm_(trainable, cfg.optim.grad_clip)
            scaler.step(optimizer)
            scaler.update()
            step += 1
            task.after_step(step)

            window_steps += 1
            for key, value in {"loss": float(loss.detach()), **values}.items():
                window[key] = window.get(key, 0.0) + float(value)
            record = None
            if step % cfg.log_every == 0 or step == total:
                seconds = time.perf_counter() - tic
                record = {"step": step, "epoch": epoch, "lr": lr,
                          **{k: v / window_steps for k, v in window.items()},
                          "steps_per_s": window_steps / max(seconds, 1e-9)}
                _log_record(out, record)
                result.history.append(record)
                window, window_steps, tic = {}, 0, time.perf_counter()
            if task.validate_every and step % task.validate_every == 0:
                val = {"step": step, **{f"val_{k}": v for k, v in task.validate(step).items()}}
                _log_record(out, val)
                result.history.append(val)
                record = {**(record or {}), **val}
            if step % save_every == 0 or step == total:
                result.checkpoint = save()
                log.info("saved %s", result.checkpoint)
            if progress is not None:
                progress(step, total, record)
            if step >= total:
                break
    result.step = step
    return result


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
