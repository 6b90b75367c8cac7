"""Run configs of the two trainers (torch-free): nested frozen dataclasses read from TOML.

Every default is the official recipe; the source of each is given next to the field
(FACTS = ``shared/reference/FACTS.md``: §1.7 DA-CLIP training, §2.6-2.7 IR-SDE training).

* :class:`DaClipTrainConfig`: stage 1, contrastive training of DA-CLIP's controller
  (open_clip ``training.main --da``, README single-GPU command).
* :class:`RestorationTrainConfig`: stage 2, any registered restoration network (defaults: the
  IR-SDE U-Net, ``config/daclip-sde/options/train.yml``) with a frozen embedder. The network,
  sampler and embedder are registry components (``[network] name = "..."``), so a plugin's
  backbone trains with the same verb.

Unknown keys are errors with a suggestion; ``--set section.key=value`` overrides are coerced by
the field's type (:func:`daclip_kit.config.apply_overrides`), never evaluated.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from ..components import check_component
from ..config import Component, apply_overrides, from_dict, load_toml, to_dict
from ..errors import ConfigError, UnknownComponentError
from ..plugins import get_registry
from ..types import DEGRADATIONS
from .toml_text import dumps

Precision = Literal["fp32", "bf16", "fp16"]


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
        if self.lr <= 0 or self.min_lr < 0 or self.min_lr > self.lr:
            raise ConfigError(f"optim: need 0 <= min_lr <= lr and lr > 0, got lr={self.lr}, min_lr={self.min_lr}.")
        if self.warmup_steps < 0 or self.weight_decay < 0:
            raise ConfigError("optim.warmup_steps and optim.weight_decay must not be negative.")
        if not all(0 <= b < 1 for b in self.betas):
            raise ConfigError(f"optim.betas={list(self.betas)} must lie in [0, 1).")


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


# -- stage 1: DA-CLIP ---------------------------------------------------------------------------

@dataclass(frozen=True, kw_only=True)
class DaClipDataConfig:
    """The caption CSV of the universal layout (``daclip-kit data caption`` / ``data mini``).

    Attributes:
        root: the universal folder (``datasets/universal``).
        split: the split whose CSV is read when ``csv`` is not given.
        csv: tab-separated ``filepath<TAB>title`` file; default ``ROOT/daclip_<split>.csv``.
            Relative ``filepath`` values are looked up beside the CSV, then in the working folder.
        batch_size: images per step (FACTS §1.7: 784 in the README single-GPU command).
        num_workers: data-loader processes (not part of the recipe).
        crop: the official ``--crop`` option (with probability 0.8 a random square of side in
            ``[64, min(h, w)]`` before the transform); off in the published commands.
    """

    root: str = "datasets/universal"
    split: str = "train"
    csv: str | None = None
    batch_size: int = 784
    num_workers: int = 8
    crop: bool = False

    def csv_path(self) -> Path:
        return Path(self.csv) if self.csv else Path(self.root) / f"daclip_{self.split}.csv"


@dataclass(frozen=True, kw_only=True)
class DaClipModelConfig:
    """The DA-CLIP network to train.

    Attributes:
        name: bundled DA-CLIP config (``"daclip_ViT-B-32"``, ``"daclip_ViT-L-14"``).
        model_config: an explicit open_clip model JSON (overrides ``name``).
        pretrained: where the weights come from: an open_clip tag of the base model
            (``name`` without ``daclip_``; FACTS §1.7: ``laion2b_s34b_b79k``), a CLIP state-dict
            file, a DA-CLIP file or native folder (continue from it), or ``None`` for random.
    """

    name: str = "daclip_ViT-B-32"
    model_config: dict[str, Any] | None = None
    pretrained: str | None = "laion2b_s34b_b79k"


@dataclass(frozen=True, kw_only=True)
class DaClipTrainConfig:
    """Contrastive training of DA-CLIP's controller (paper §3.1; FACTS §1.7).

    CLIP is frozen; the controller and DA-CLIP's ``logit_scale`` are trained with
    ``contrastive_loss + degra_loss``; ``logit_scale`` is clamped to ``[0, ln 100]`` after each step.

    Attributes:
        data, model, optim: the sections above (optim defaults: lr 2e-5, betas (0.9, 0.98),
            eps 1e-6, weight decay 0.05, warmup 100: the README single-GPU recipe).
        epochs: passes over the data (30); ignored when ``max_steps`` is set.
        max_steps: total optimizer steps; ``None`` derives them from ``epochs``.
        log_every: log every N steps.
        save_every: checkpoint every N steps (``0``: once per epoch, as the official runs);
            the last step is always saved.
        keep: keep only the newest N checkpoints (``0`` keeps all).
        out_dir: the run folder.
        seed: seeds model init, data order, crops.
        device: ``"auto"``, ``"cpu"``, ``"cuda"``, ``"cuda:1"``.
        precision: ``"fp16"`` (official ``amp``: autocast + gradient scaling, CUDA only),
            ``"bf16"`` (autocast) or ``"fp32"``.
    """

    data: DaClipDataConfig = field(default_factory=DaClipDataConfig)
    model: DaClipModelConfig = field(default_factory=DaClipModelConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    epochs: int = 30
    max_steps: int | None = None
    log_every: int = 100
    save_every: int = 0
    keep: int = 0
    out_dir: str = "runs/daclip"
    seed: int = 0
    device: str = "auto"
    precision: Precision = "fp16"

    def validate(self) -> DaClipTrainConfig:
        """Check settings that depend on each other (after all overrides); returns ``self``."""
        _check_loop(self)
        return self


# -- stage 2: IR-SDE ----------------------------------------------------------------------------

@dataclass(frozen=True, kw_only=True)
class IRSDEDataConfig:
    """Paired LQ/GT patches of the universal layout, balanced over degradations (FACTS §2.7).

    Item ``i`` of an epoch takes degradation ``i % n`` and a random image of it, so every type is
    seen equally often whatever the folder sizes; an epoch has as many items as GT images.

    Attributes:
        root: the universal folder; ``ROOT/<split>/<degradation>/{LQ,GT}``.
        split: training split folder.
        degradations: folders to train on (the ten official words); ``None``: every folder found.
        batch_size: patches per step (16).
        patch_size: side of the random crop taken at the same place in LQ and GT (256).
        augment: random horizontal/vertical flips and transposition, each p = 0.5 (``use_flip``,
            ``use_rot``).
        num_workers: data-loader processes (``n_workers`` 16 in train.yml; lower it on small machines).
    """

    root: str = "datasets/universal"
    split: str = "train"
    degradations: tuple[str, ...] | None = tuple(DEGRADATIONS)
    batch_size: int = 16
    patch_size: int = 256
    augment: bool = True
    num_workers: int = 16


@dataclass(frozen=True, kw_only=True)
class EMAConfig:
    """Exponential moving average of the network (train.yml: ``EMA(beta=0.995, update_every=10)``).

    Every ``update_every`` steps ``ema = decay * ema + (1 - decay) * weights``; buffers are copied.
    """

    enabled: bool = True
    decay: float = 0.995
    update_every: int = 10

    def __post_init__(self) -> None:
        if not 0 <= self.decay < 1 or self.update_every < 1:
            raise ConfigError(f"ema: need 0 <= decay < 1 and update_every >= 1, got {self.decay}, {self.update_every}.")


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


def _default_network() -> Component:
    return Component("irsde-unet")


def _default_sampler() -> Component:
    return Component("irsde")


def _default_embedder() -> Component:
    return Component("daclip", {"weights": "daclip-vit-b-32", "quantize_input": True})


@dataclass(frozen=True, kw_only=True)
class RestorationTrainConfig:
    """Training a restoration network with a frozen embedder (paper §3.2; FACTS §2.5-2.7).

    Attributes:
        data, ema, validation: the sections above.
        network: the network, a registered backbone with its settings (``daclip-kit ls
            backbones``); default ``irsde-unet`` (the universal U-Net: nf 64, ch_mult (1,2,4,8),
            context 512, both contexts). Denoisers learn the sampler's training objective,
            one-shot backbones ``loss`` on their output.
        sampler: the diffusion process of denoisers (default ``irsde``: max_sigma 50, T 100,
            cosine, eps 0.005); saved with the network so ``restore`` samples the same process.
        init_from: weights to start the network from (a released file loaded through the
            network's converter, a native folder, or a weights name); ``None``: random init.
        embedder: the frozen embedding provider (default ``daclip`` with the official
            ``daclip-vit-b-32`` weights and the official uint8 truncation of the LQ patch), or
            ``name = "none"`` to train without conditioning (the network must take none).
        objective: for denoisers, ``"ml"``: the official maximum-likelihood target (reverse-SDE
            mean vs the optimal posterior mean); ``"noise"``: noise matching.
        loss: ``"l1"`` (official) or ``"l2"``.
        optim: AdamW lr 2e-4, betas (0.9, 0.99), no weight decay, cosine to 1e-6, no warmup.
        max_steps: total steps (``niter`` 700,000).
        log_every: 200 (``print_freq``); save_every: 10,000 (``save_checkpoint_freq``).
        keep, out_dir, seed (0), device, precision (``"fp32"``: the official training has no amp):
            as in :class:`DaClipTrainConfig`.
    """

    data: IRSDEDataConfig = field(default_factory=IRSDEDataConfig)
    network: Component = field(default_factory=_default_network)
    init_from: str | None = None
    sampler: Component = field(default_factory=_default_sampler)
    embedder: Component = field(default_factory=_default_embedder)
    objective: Literal["ml", "noise"] = "ml"
    loss: Literal["l1", "l2"] = "l1"
    optim: IRSDEOptimConfig = field(default_factory=IRSDEOptimConfig)
    ema: EMAConfig = field(default_factory=EMAConfig)
    validation: ValidationConfig = field(default_factory=ValidationConfig)
    epochs: int | None = None
    max_steps: int | None = 700_000
    log_every: int = 200
    save_every: int = 10_000
    keep: int = 0
    out_dir: str = "runs/irsde"
    seed: int = 0
    device: str = "auto"
    precision: Precision = "fp32"

    @property
    def uses_embedder(self) -> bool:
        return self.embedder.name != "none"

    def validate(self) -> RestorationTrainConfig:
        """Check every section, the registered components' settings included (after all
        overrides), before anything is written; returns the config with typed settings."""

        _check_loop(self)
        network = check_component("backbones", self.network, "network")
        spec = get_registry("backbones").get(network.name)
        sampler = check_component("samplers", self.sampler, "sampler")
        embedder = self.embedder
        if self.uses_embedder:
            embedder = check_component("embedders", self.embedder, "embedder")
        elif spec.accepts and _takes_context(network):
            raise ConfigError(
                f"embedder.name='none' trains without conditioning, but network {network.name!r} takes "
                f"{', '.join(spec.accepts)} embeddings; pick a network without them (e.g. irsde-unet-plain) "
                "or an embedder.")
        return dataclasses.replace(self, network=network, sampler=sampler, embedder=embedder)


def _takes_context(network: Component) -> bool:
    """Whether the configured network uses a context (the U-Net can switch both off)."""
    flags = [network.options.get(k) for k in ("use_degra_context", "use_image_context")]
    return any(flags) if any(f is not None for f in flags) else True


#: The name stage 2 had when it trained the IR-SDE U-Net only; kept for existing scripts.
IRSDETrainConfig = RestorationTrainConfig


def _check_loop(cfg: Any) -> None:
    if cfg.max_steps is None and not cfg.epochs:
        raise ConfigError("Set max_steps or epochs (e.g. --max-steps 1000).")
    for name in ("max_steps", "epochs"):
        value = getattr(cfg, name)
        if value is not None and value < 1:
            raise ConfigError(f"{name}={value} must be at least 1.")
    if cfg.log_every < 1 or cfg.save_every < 0 or cfg.keep < 0:
        raise ConfigError("log_every must be >= 1; save_every and keep must not be negative.")


#: The run-config class of each trainer, by CLI name (``irsde`` is the older name of ``restoration``).
TRAINERS: dict[str, type] = {"daclip": DaClipTrainConfig, "restoration": RestorationTrainConfig,
                             "irsde": RestorationTrainConfig}


def config_class(kind: str) -> type:
    """``DaClipTrainConfig`` for ``"daclip"``, ``RestorationTrainConfig`` for ``"restoration"``."""
    if kind not in TRAINERS:

        raise UnknownComponentError("trainer", kind, TRAINERS)
    return TRAINERS[kind]


def load_run_config(kind: str, path: str | Path | None = None, overrides: Sequence[str] = ()):
    """The run config of trainer ``kind`` from a TOML file (defaults when ``path`` is ``None``)
    with ``section.key=value`` overrides applied, then checked as a whole (``cfg.validate()``).

    Raises:
        ConfigError: unreadable TOML, unknown keys (with a suggestion) or invalid values.
    """
    cls = config_class(kind)
    if path is None:
        return apply_overrides(from_dict(cls, {}), overrides).validate()
    return load_toml(cls, path, overrides).validate()


def config_to_toml(cfg: Any) -> str:
    """The TOML text of a run config; reading it back gives an equal config."""

    return dumps(to_dict(cfg))
