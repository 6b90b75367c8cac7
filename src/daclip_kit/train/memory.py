"""Training memory: activation checkpointing, the estimate printed at the start of a run, and the
refusal of a run that cannot fit its budget, naming settings that would.

The estimate of one process's peak is

* **weights**: every parameter and buffer the task holds (trained network, frozen embedder, EMA copy);
* **gradients**: one per trained parameter (and as much again for the data-parallel buckets with
  several processes);
* **optimizer state**: AdamW's two moments per trained parameter;
* **activations**: one micro-batch's forward and backward traced on the ``meta`` device
  (:func:`daclip_kit.ops.memory.peak_step_bytes`: what autograd keeps for the backward pass,
  attention counted as the kernel PyTorch picks on the device, checkpointed blocks recomputed),
  halved for bf16/fp16 autocast, plus autocast's half-precision copies of the trained weights.

Allocator slack is not in the estimate; a run must fit :data:`FIT_FRACTION` of its budget. The
budget is ``max_memory`` when set, else the device's: free CUDA memory plus what this process
already holds, or the available RAM plus the weights on the CPU.
"""

from __future__ import annotations

import contextlib
import logging
import types
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn
from torch.overrides import _get_current_function_mode_stack
from torch.utils.checkpoint import checkpoint

from ..config import apply_overrides, parse_size
from ..errors import ConfigError
from ..ops.memory import ACTIVATION_BYTES, COMPUTE_DTYPES, available_bytes, peak_step_bytes

log = logging.getLogger(__name__)

#: The share of the budget a run's estimate may use (allocator slack, fragmentation).
FIT_FRACTION = 0.9
#: The smallest patch side suggested.
MIN_PATCH = 64
GIB = 2**30


def size_text(n: int) -> str:
    """``"1.23 GiB"``, or ``"45.6 MiB"`` below 1 GiB."""
    return f"{n / GIB:.2f} GiB" if n >= GIB else f"{n / 2**20:.1f} MiB"


# -- activation checkpointing ---------------------------------------------------------------------

def _checkpointed_forward(self: nn.Module, *args: Any, **kwargs: Any) -> Any:
    forward = type(self).forward.__get__(self)
    if not torch.is_grad_enabled():
        return forward(*args, **kwargs)
    # The backward pass runs without torch-function modes; the recomputation re-enters those of
    # the forward (e.g. the memory trace's FusedAttention), so it computes the same tensors.
    modes = _get_current_function_mode_stack()

    def run(*a: Any, **k: Any) -> Any:
        with contextlib.ExitStack() as stack:
            if not _get_current_function_mode_stack():
                for mode in modes:
                    stack.enter_context(mode)
            return forward(*a, **k)

    return checkpoint(run, *args, use_reentrant=False, **kwargs)


def enable_activation_checkpointing(modules: Iterable[nn.Module]) -> int:
    """Make each module recompute its forward in the backward pass instead of keeping its
    intermediate tensors (``torch.utils.checkpoint.checkpoint(..., use_reentrant=False)``, only
    while gradients are on). The weights and their names are unchanged; a deep copy (the EMA)
    gets its own checkpointed forward. Returns the number of modules switched."""
    count = 0
    for module in modules:
        if getattr(module.forward, "__func__", None) is not _checkpointed_forward:
            module.forward = types.MethodType(_checkpointed_forward, module)
            count += 1
    return count


# -- the estimate ---------------------------------------------------------------------------------

@dataclass(frozen=True)
class TrainingMemory:
    """Estimated peak bytes of one training process (see the module docstring).

    Attributes:
        weights, gradients, optimizer: bytes of each.
        activations: bytes of one micro-batch's forward and backward (``None``: the task cannot
            be traced, so the total leaves them out).
        micro_batch: items per forward pass and process.
        settings: the settings the estimate is for, in words.
    """

    weights: int
    gradients: int
    optimizer: int
    activations: int | None
    micro_batch: int
    settings: str

    @property
    def total(self) -> int:
        return self.weights + self.gradients + self.optimizer + (self.activations or 0)

    def describe(self) -> str:
        """One line: the total and its parts."""
        acts = "activations not estimated" if self.activations is None else f"activations {size_text(self.activations)}"
        return (f"memory estimate ~{size_text(self.total)} per process = weights {size_text(self.weights)} + "
                f"gradients {size_text(self.gradients)} + optimizer state {size_text(self.optimizer)} + {acts} "
                f"({self.settings})")


def _held_modules(task: Any) -> list[nn.Module]:
    found = []
    for value in vars(task).values():
        if isinstance(value, nn.Module):
            found.append(value)
        elif isinstance(getattr(value, "model", None), nn.Module):  # e.g. the EMA
            found.append(value.model)
    return found


def _weight_bytes(task: Any) -> int:
    storages: dict[int, int] = {}
    for module in _held_modules(task):
        for t in [*module.parameters(), *module.buffers()]:
            storage = t.untyped_storage()
            storages[id(storage)] = storage.nbytes()
    return sum(storages.values())


def _checkpointing(cfg: Any) -> bool:
    return bool(getattr(cfg, "activation_checkpointing", False))


def micro_batch(cfg: Any, world: int) -> int:
    """Items per forward pass and process under ``cfg``."""
    return max(1, cfg.data.batch_size // (world * cfg.data.accumulate_steps))


def _settings(cfg: Any, micro: int) -> str:
    parts = [f"micro-batch {micro}"]
    if hasattr(cfg.data, "patch_size"):
        parts.append(f"patch {cfg.data.patch_size}")
    parts.append(cfg.precision)
    parts.append("activation checkpointing" if _checkpointing(cfg) else "no checkpointing")
    return ", ".join(parts)


def estimate_training_memory(task: Any, cfg: Any, device: torch.device, world: int = 1) -> TrainingMemory:
    """The :class:`TrainingMemory` of ``task`` (built) trained as ``cfg`` says (``cfg`` may differ
    from the task's own in batch, accumulation, patch size, precision and checkpointing).

    The task's :meth:`~daclip_kit.train.loop.TrainTask.memory_trace` gives the module and
    ``meta`` inputs of one micro-batch.
    """
    trainable = [p for _, p in task.trainable()]
    train_bytes = sum(p.numel() * p.element_size() for p in trainable)
    half = cfg.precision in ("bf16", "fp16")
    gradients = train_bytes * (2 if world > 1 else 1)
    optimizer = 2 * train_bytes
    micro = micro_batch(cfg, world)
    activations = None
    traced = task.memory_trace(cfg, micro)
    if traced is not None:
        module, args, kwargs = traced
        units = list(task.checkpoint_units()) if _checkpointing(cfg) else []
        saved = [(m, m.__dict__.get("forward")) for m in units]
        enable_activation_checkpointing(units)
        forward: int | None
        step: int | None
        try:
            forward, step = peak_step_bytes(module, args, kwargs, device=device,
                                            dtype=COMPUTE_DTYPES[cfg.precision])
        except (RuntimeError, NotImplementedError, TypeError) as exc:  # an op without a meta kernel
            log.info("no activation estimate for %s (%s)", type(module).__name__, exc)
            forward = step = None
        finally:
            for m, before in saved:  # the trace leaves the task's modules as they were
                if before is None:
                    m.__dict__.pop("forward", None)
                else:
                    m.forward = before
        if forward is not None and step is not None:
            own_grads = sum(p.numel() * 4 for p in module.parameters() if p.requires_grad)
            activations = int(max(forward, step - own_grads) * ACTIVATION_BYTES[cfg.precision] / 4)
            if half:
                activations += train_bytes // 2  # autocast's half copies of the trained weights
    return TrainingMemory(_weight_bytes(task), gradients, optimizer, activations, micro, _settings(cfg, micro))


def device_budget(device: torch.device, weights: int) -> int:
    """Bytes a run on ``device`` may use when no ``max_memory`` is set (see the module docstring)."""
    if device.type == "cuda":
        return available_bytes(device) + torch.cuda.memory_reserved(device)
    return available_bytes(device) + weights


def _fits(task: Any, cfg: Any, device: torch.device, world: int, budget: int) -> TrainingMemory | None:
    est = estimate_training_memory(task, cfg, device, world)
    return est if est.total <= budget * FIT_FRACTION else None


def _first_fit(task, cfg, device, world, budget, options: Iterable[list[str]]):
    for overrides in options:
        try:
            changed = apply_overrides(cfg, overrides)
        except ConfigError:
            continue
        est = _fits(task, changed, device, world, budget)
        if est is not None:
            return overrides, est
    return None


def settings_that_fit(task: Any, cfg: Any, device: torch.device, world: int, budget: int,
                      limit: int = 5) -> list[tuple[list[str], TrainingMemory]]:
    """Overrides (``["precision=bf16", ...]``) that make the estimate fit ``budget``, each with its
    estimate, computed (not guessed): the fewest accumulation steps (the same training, slower),
    bf16, activation checkpointing, both, both with accumulation, the largest patch, the largest
    batch; at most ``limit`` of them."""
    per_process = cfg.data.batch_size // world
    k = cfg.data.accumulate_steps
    accumulate = [[f"data.accumulate_steps={a}"] for a in range(k + 1, per_process + 1) if per_process % a == 0]
    half = []
    if cfg.precision == "fp32":
        bf16 = device.type != "cuda" or torch.cuda.is_bf16_supported()
        half = [f"precision={'bf16' if bf16 else 'fp16'}"]
    ckpt = ["activation_checkpointing=true"] if not _checkpointing(cfg) and task.checkpoint_units() else []
    families: list[list[list[str]]] = [accumulate]
    if half:
        families.append([half])
    if ckpt:
        families.append([ckpt])
    if half and ckpt:
        families.append([half + ckpt])
    if half or ckpt:
        families.append([half + ckpt + a for a in accumulate])
    if hasattr(cfg.data, "patch_size"):
        patches, p = [], cfg.data.patch_size // 2
        while p >= MIN_PATCH:
            patches.append([f"data.patch_size={p}"])
            p //= 2
        families.append(patches)
    batches, b = [], cfg.data.batch_size // 2
    while b >= world:
        if b % world == 0:
            batches.append([f"data.batch_size={b}", "data.accumulate_steps=1"])
        b //= 2
    families.append(batches)
    found = []
    for options in families:
        hit = _first_fit(task, cfg, device, world, budget, options)
        if hit is not None:
            found.append(hit)
        if len(found) >= limit:
            break
    return found


def check_training_memory(task: Any, cfg: Any, device: torch.device, world: int = 1) -> TrainingMemory:
    """Log the estimate (one line) and refuse a run that does not fit its budget.

    Raises:
        ConfigError: the estimate exceeds :data:`FIT_FRACTION` of the budget; one message with the
            estimate, the budget and the settings that would fit (or that none does).
    """
    est = estimate_training_memory(task, cfg, device, world)
    log.info("%s", est.describe())
    max_memory = getattr(cfg, "max_memory", None)
    limit = parse_size(max_memory, "max_memory") if max_memory is not None else None
    budget = limit if limit is not None else device_budget(device, est.weights)
    if est.total <= budget * FIT_FRACTION:
        return est
    where = f"max_memory={max_memory}" if limit is not None else f"the {device} device's free memory"
    head = (f"This run needs about {size_text(est.total)} per process ({est.describe().split('= ', 1)[1]}), "
            f"more than {FIT_FRACTION:.0%} of {where} ({size_text(budget)}).")
    fixed = est.weights + est.gradients + est.optimizer  # no batch, patch, precision or checkpointing lowers it
    fits = settings_that_fit(task, cfg, device, world, budget) if fixed <= budget * FIT_FRACTION else []
    if fits:
        shown = "; ".join(" ".join(f"--set {o}" for o in overrides) + f" (~{size_text(e.total)})"
                          for overrides, e in fits)
        raise ConfigError(f"{head} Settings that fit: {shown}.")
    raise ConfigError(f"{head} No smaller batch, patch, precision or checkpointing fits: the weights, gradients "
                      f"and optimizer state alone need {size_text(fixed)}; raise max_memory or use a larger device.")
