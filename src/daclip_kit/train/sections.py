"""The run-config sections the trainers share (torch-free), in one module below them all.

:mod:`.config` (``train daclip``, ``train restoration``, the run-file loaders and the trainer
table) and :mod:`.distill_config` (``train distill``) both build on these and neither imports the
other's classes for them:

* :class:`LoopConfig`: the loop settings at the top of every run file (``max_steps``,
  ``epochs``, ``log_every``, ``save_every``, ``keep``, ``out_dir``, ``seed``, ``device``,
  ``precision``, ``activation_checkpointing``, ``max_memory``) and the ``[logging]`` section
  (:class:`LoggingConfig`: TensorBoard, validation images), declared once; a trainer's class
  changes only the defaults that differ.
* :class:`NetworkTrainConfig`: the sections of a run that trains a restoration network (``data``,
  ``network``, ``init_from``, ``sampler``, ``embedder``, ``optim``, ``ema``, ``validation``), the
  base of ``train restoration`` and ``train distill``.
* the sections themselves (:class:`OptimConfig`, :class:`IRSDEOptimConfig`,
  :class:`IRSDEDataConfig`, :class:`EMAConfig`, :class:`ValidationConfig`) and the range checks
  (:func:`check_int`, :func:`check_float`).

Every name stays importable from :mod:`daclip_kit.train.config` too.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Literal, TypeVar

from ..config import Component, parse_size
from ..errors import ConfigError

Precision = Literal["fp32", "bf16", "fp16"]


def _bad(key: str, value: Any, allowed: str) -> ConfigError:
    return ConfigError(f"{key}={value!r} is out of range: it must be {allowed}.")


def check_int(key: str, value: Any, low: int = 0, *, allow_none: bool = False) -> None:
    """Refuse an integer setting below ``low`` (one line naming ``key`` and the range)."""
    if value is None and allow_none:
        return
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        raise _bad(key, value, f"an integer >= {low}" + (" or none" if allow_none else ""))


def check_float(key: str, value: Any, *, low: float = 0.0, high: float = math.inf, low_open: bool = False,
                high_open: bool = False, allow_none: bool = False) -> None:
    """Refuse a non-finite number or one outside ``[low, high]`` (``(`` / ``)`` when open)."""
    if value is None and allow_none:
        return
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
    if ok:
        ok = (value > low if low_open else value >= low) and (value < high if high_open else value <= high)
    if not ok:
        if math.isinf(high):
            allowed = f"a finite number {'>' if low_open else '>='} {low:g}"
        else:
            allowed = f"a number in {'(' if low_open else '['}{low:g}, {high:g}{')' if high_open else ']'}"
        raise _bad(key, value, allowed + (" or none" if allow_none else ""))


def _check_batching(data: Any) -> None:
    check_int("data.batch_size", data.batch_size, 1)
    check_int("data.accumulate_steps", data.accumulate_steps, 1)
    check_int("data.num_workers", data.num_workers, 0)
    if data.batch_size % data.accumulate_steps:
        raise ConfigError(f"data.batch_size={data.batch_size} must be divisible by data.accumulate_steps="
                          f"{data.accumulate_steps} (each micro-batch has batch_size / accumulate_steps items).")


def _check_new_share(data: Any) -> None:
    check_float("data.new_share", data.new_share, high=1.0, low_open=True, high_open=True, allow_none=True)


def _check_loop(cfg: Any) -> None:
    check_int("max_steps", cfg.max_steps, 1, allow_none=True)
    check_int("epochs", cfg.epochs, 1, allow_none=True)
    if cfg.max_steps is None and not cfg.epochs:
        raise ConfigError("Set max_steps or epochs (e.g. --max-steps 1000).")
    check_int("log_every", cfg.log_every, 1)
    check_int("save_every", cfg.save_every, 0)
    check_int("keep", cfg.keep, 0)
    if isinstance(cfg.seed, bool) or not isinstance(cfg.seed, int) or not 0 <= cfg.seed < 2**32:
        raise _bad("seed", cfg.seed, f"an integer in [0, {2**32 - 1}]")
    if getattr(cfg, "max_memory", None) is not None:
        parse_size(cfg.max_memory, "max_memory")


@dataclass(frozen=True, kw_only=True)
class OptimConfig:
    """AdamW with a cosine learning-rate schedule (linear warmup first when ``warmup_steps > 0``).

    The rate at step ``k`` (0-based) is ``lr (k+1)/warmup_steps`` during warmup, then
    ``min_lr + (lr - min_lr)(1 + cos(pi e / E)) / 2`` with ``e = k - warmup_steps`` and
    ``E = total - warmup_steps``: open_clip's ``cosine_lr`` for ``min_lr = 0`` and
    ``CosineAnnealingLR(T_max=total, eta_min=min_lr)`` for ``warmup_steps = 0``.

    Weight decay applies to matrices only: gains, biases and ``logit_scale`` get none
    (open_clip's ``exclude`` rule: ``ndim < 2`` or ``bn``/``ln``/``bias``/``logit_scale`` in the name).

    Attributes:
        lr: peak learning rate.
        betas, eps: AdamW moments.
        weight_decay: decoupled decay of the matrices.
        warmup_steps: linear warmup steps.
        min_lr: the rate the cosine ends at.
        grad_clip: clip the gradients' global L2 norm to this; ``None`` for no clipping (official).
    """

    lr: float = 2e-5
    betas: tuple[float, float] = (0.9, 0.98)
    eps: float = 1e-6
    weight_decay: float = 0.05
    warmup_steps: int = 100
    min_lr: float = 0.0
    grad_clip: float | None = None

    def __post_init__(self) -> None:
        check_float("optim.lr", self.lr, low_open=True)
        check_float("optim.min_lr", self.min_lr)
        if self.min_lr > self.lr:
            raise ConfigError(f"optim.min_lr={self.min_lr} is out of range: it must be in [0, optim.lr={self.lr}].")
        if len(self.betas) != 2:
            raise ConfigError(f"optim.betas={list(self.betas)} must hold two numbers in [0, 1), e.g. [0.9, 0.99].")
        for i, beta in enumerate(self.betas):
            check_float(f"optim.betas[{i}]", beta, high=1.0, high_open=True)
        check_float("optim.eps", self.eps, low_open=True)
        check_float("optim.weight_decay", self.weight_decay)
        check_int("optim.warmup_steps", self.warmup_steps, 0)
        check_float("optim.grad_clip", self.grad_clip, low_open=True, allow_none=True)


@dataclass(frozen=True, kw_only=True)
class IRSDEOptimConfig(OptimConfig):
    """:class:`OptimConfig` with the IR-SDE defaults (train.yml: AdamW lr 2e-4, betas (0.9, 0.99),
    no weight decay, ``TrueCosineAnnealingLR`` to ``eta_min`` 1e-6, no warmup)."""

    lr: float = 2e-4
    betas: tuple[float, float] = (0.9, 0.99)
    eps: float = 1e-8
    weight_decay: float = 0.0
    warmup_steps: int = 0
    min_lr: float = 1e-6


@dataclass(frozen=True, kw_only=True)
class IRSDEDataConfig:
    """Paired LQ/GT patches of the universal layout, balanced over degradations (FACTS §2.7).

    Item ``i`` of an epoch takes degradation ``i % n`` and a random image of it, so every type is
    seen equally often whatever the folder sizes; an epoch has as many items as GT images.

    Attributes:
        root: the universal folder; ``ROOT/<split>/<degradation>/{LQ,GT}``.
        split: training split folder.
        degradations: folders to train on; ``None`` (default): every folder found in
            ``root/split``, the ten official words first in their official order, then the others
            sorted (the official data set holds exactly the ten), so a folder added with
            ``daclip-kit data add`` is trained on without further settings.
        new_share: ``None``: folders balanced (official). A number in (0, 1): the folders outside
            the ten built-in words get this share of the items together, the built-in ones the
            rest (equal within each kind); for fine-tuning (``irsde_finetune.toml``).
        batch_size: the global batch: patches per optimizer step over all processes and
            accumulation steps (16; the official distributed code also splits it over GPUs).
        accumulate_steps: split each process's share of the batch into this many micro-batches
            (memory); the step equals one on the whole batch (see docs/train.md).
        patch_size: side of the random crop taken at the same place in LQ and GT (256).
        augment: random horizontal/vertical flips and transposition, each p = 0.5 (``use_flip``,
            ``use_rot``).
        num_workers: data-loader processes per training process (``n_workers`` 16 in train.yml;
            lower it on small machines).
    """

    root: str = "datasets/universal"
    split: str = "train"
    degradations: tuple[str, ...] | None = None
    new_share: float | None = None
    batch_size: int = 16
    accumulate_steps: int = 1
    patch_size: int = 256
    augment: bool = True
    num_workers: int = 16

    def __post_init__(self) -> None:
        _check_batching(self)
        _check_new_share(self)
        check_int("data.patch_size", self.patch_size, 1)


@dataclass(frozen=True, kw_only=True)
class EMAConfig:
    """Exponential moving average of the network: ``ema_pytorch.EMA(beta=decay,
    update_every=..., update_after_step=..., inv_gamma=..., power=...)``, as the official
    train.yml (``EMA(beta=0.995, update_every=10)`` with the package's other defaults).

    After optimizer step ``n = 1, 2, ...`` (``s = n - 1``): at ``s = 0`` and at every multiple
    ``s`` of ``update_every`` up to ``update_after_step`` the weights are copied (warm-up: the
    average never starts from the random initialisation); at later multiples
    ``ema = d * ema + (1 - d) * weights`` with the ramped decay
    ``d = min(decay, 1 - (1 + (n - update_after_step - 1) / inv_gamma) ** -power)``.

    Attributes:
        enabled: keep an EMA (saved as ``network-ema`` next to ``network``).
        decay: the largest decay (``beta``), in [0, 1).
        update_every: average every N steps (>= 1).
        update_after_step: copy instead of averaging up to this step (>= 0).
        inv_gamma, power: the decay ramp (> 0 each); with the defaults the decay reaches 0.9 at
            about step 130, 0.99 at 1,100 and its cap 0.995 at 2,930.
    """

    enabled: bool = True
    decay: float = 0.995
    update_every: int = 10
    update_after_step: int = 100
    inv_gamma: float = 1.0
    power: float = 2 / 3

    def __post_init__(self) -> None:
        check_float("ema.decay", self.decay, high=1.0, high_open=True)
        check_int("ema.update_every", self.update_every, 1)
        check_int("ema.update_after_step", self.update_after_step, 0)
        check_float("ema.inv_gamma", self.inv_gamma, low_open=True)
        check_float("ema.power", self.power, low_open=True)


@dataclass(frozen=True, kw_only=True)
class ValidationConfig:
    """Periodic validation PSNR with a short sampler run (train.yml: every 1e4 steps, the first
    100 val images).

    Attributes:
        every: validate every N steps; ``0`` never.
        split: the validation split folder.
        count: images, taken round-robin over the degradation folders.
        steps: sampler steps per image (``None``: the sampler's default, all ``T``); the
            training sampler's own settings (e.g. its ``mode``) are used.
        use_ema: validate the EMA weights instead of the trained ones.
    """

    every: int = 10_000
    split: str = "val"
    count: int = 100
    steps: int | None = None
    use_ema: bool = False

    def __post_init__(self) -> None:
        check_int("validation.every", self.every, 0)
        check_int("validation.count", self.count, 1)
        check_int("validation.steps", self.steps, 1, allow_none=True)


def _default_network() -> Component:
    return Component("irsde-unet")


def _default_sampler() -> Component:
    return Component("irsde")


def _default_embedder() -> Component:
    return Component("daclip", {"weights": "daclip-vit-b-32", "quantize_input": True})


#: ``logging.tensorboard``: always, never, or when the ``tensorboard`` package is installed.
TensorBoardSetting = bool | Literal["auto"]


@dataclass(frozen=True, kw_only=True)
class LoggingConfig:
    """What a run writes for watching it, besides ``metrics.jsonl`` and the log lines (every trainer's
    ``[logging]`` section; a resume may change it).

    Attributes:
        tensorboard: write TensorBoard event files to ``OUT/tensorboard/`` (the logged losses,
            learning rate and speed as ``train/*``, the validation metrics as ``val/*``, the
            validation images): ``true``, ``false``, or ``"auto"`` (default): when the
            ``tensorboard`` package is installed (``pip install 'daclip-kit[tensorboard]'``).
            ``true`` without the package is refused before anything is written.
        val_images: validation pairs saved at each validation as one image each, LQ | output | GT
            side by side, in ``OUT/val-images/step-N/`` (and TensorBoard); ``0``: none. Trainers
            whose validation has no images (DA-CLIP) save none.
    """

    tensorboard: TensorBoardSetting = "auto"
    val_images: int = 4

    def __post_init__(self) -> None:
        if self.tensorboard not in (True, False, "auto"):
            raise _bad("logging.tensorboard", self.tensorboard, 'true, false or "auto"')
        check_int("logging.val_images", self.val_images, 0)


_L = TypeVar("_L", bound="LoopConfig")


@dataclass(frozen=True, kw_only=True)
class LoopConfig:
    """The loop settings every trainer has, at the top level of its run file. A trainer's config
    class derives from this and redeclares only the defaults it changes (its docstring lists them).

    Attributes:
        epochs: passes over the data; ignored when ``max_steps`` is set.
        max_steps: total optimizer steps; ``None`` derives them from ``epochs``.
        log_every: log every N steps.
        save_every: checkpoint every N steps (``0``: once per epoch); the last step is always saved.
        keep: keep only the newest N checkpoints (``0`` keeps all).
        out_dir: the run folder.
        seed: seeds model init, data order, crops.
        device: ``"auto"``, ``"cpu"``, ``"cuda"``, ``"cuda:1"``.
        precision: ``"fp16"`` (autocast + gradient scaling, CUDA only), ``"bf16"`` (autocast) or
            ``"fp32"``.
        activation_checkpointing: keep only the inputs of the big blocks (DA-CLIP's vision towers'
            transformer blocks, the U-Net's blocks) in the forward pass and recompute the rest in
            the backward pass (``torch.utils.checkpoint``, non-reentrant): less memory, about a
            third more compute, the same gradients.
        max_memory: memory the run may use per process, e.g. ``"12G"`` (``None``: the device's);
            a run whose estimate (printed at the start) does not fit is refused before it starts,
            naming settings that fit (see docs/train.md).
        logging: TensorBoard and validation images (:class:`LoggingConfig`).
    """

    epochs: int | None = None
    max_steps: int | None = None
    log_every: int = 100
    save_every: int = 0
    keep: int = 0
    out_dir: str = "runs/train"
    seed: int = 0
    device: str = "auto"
    precision: Precision = "fp32"
    activation_checkpointing: bool = False
    max_memory: str | None = None
    logging: LoggingConfig = field(default_factory=LoggingConfig)

    def validate(self: _L) -> _L:
        """Check the loop settings that depend on each other (after all overrides); returns ``self``.
        A trainer's class extends this with its own sections' checks."""
        _check_loop(self)
        return self


@dataclass(frozen=True, kw_only=True)
class NetworkTrainConfig(LoopConfig):
    """The sections of a run that trains a restoration network with a frozen embedder: the base of
    :class:`~daclip_kit.train.config.RestorationTrainConfig` and
    :class:`~daclip_kit.train.distill_config.DistillTrainConfig` (each documents what its
    ``init_from`` and ``validation`` mean).

    Attributes:
        data: paired LQ/GT patches (:class:`IRSDEDataConfig`).
        network: a registered backbone with its settings (default ``irsde-unet``).
        init_from: weights to start the network from (``None``: random init).
        sampler: the diffusion process of denoisers (default ``irsde``).
        embedder: the frozen embedding provider (default ``daclip`` with ``daclip-vit-b-32``), or
            ``name = "none"``.
        optim: :class:`IRSDEOptimConfig`.
        ema: :class:`EMAConfig`.
        validation: :class:`ValidationConfig`.
    """

    data: IRSDEDataConfig = field(default_factory=IRSDEDataConfig)
    network: Component = field(default_factory=_default_network)
    init_from: str | None = None
    sampler: Component = field(default_factory=_default_sampler)
    embedder: Component = field(default_factory=_default_embedder)
    optim: IRSDEOptimConfig = field(default_factory=IRSDEOptimConfig)
    ema: EMAConfig = field(default_factory=EMAConfig)
    validation: ValidationConfig = field(default_factory=ValidationConfig)

    @property
    def uses_embedder(self) -> bool:
        return self.embedder.name != "none"
