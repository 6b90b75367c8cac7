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
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from ..components import check_component
from ..config import Component, apply_overrides, from_dict, load_toml, parse_size, to_dict, tomllib
from ..errors import ConfigError, UnknownComponentError
from ..plugins import get_registry
from .toml_text import dumps

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


# -- stage 1: DA-CLIP ---------------------------------------------------------------------------

@dataclass(frozen=True, kw_only=True)
class DaClipDataConfig:
    """The caption CSV of the universal layout (``daclip-kit data caption`` / ``data mini``).

    Attributes:
        root: the universal folder (``datasets/universal``).
        split: the split whose CSV is read when ``csv`` is not given.
        csv: tab-separated ``filepath<TAB>title`` file; default ``ROOT/daclip_<split>.csv``.
            Relative ``filepath`` values are looked up beside the CSV, then in the working folder.
        batch_size: the global batch: images per optimizer step over all processes and
            accumulation steps, and the contrastive batch of the loss (FACTS §1.7: 784 in the
            README single-GPU command; the README 4-GPU run is 4 x 784 = 3136).
        accumulate_steps: split each process's share of the batch into this many micro-batches
            (memory); the loss and gradient equal those of the whole batch (see docs/train.md).
        num_workers: data-loader processes per training process (not part of the recipe).
        crop: the official ``--crop`` option (with probability 0.8 a random square of side in
            ``[64, min(h, w)]`` before the transform); off in the published commands.
        new_share: ``None`` (official): every CSV row once per epoch. A number in (0, 1): each
            item draws a degradation, those outside the ten built-in words (e.g. one added with
            ``daclip-kit data add``) together with this probability, the built-in ones the rest,
            each equally within its kind; then a random row of it. For fine-tuning on a new
            degradation without forgetting the ten (``daclip_finetune.toml``).
    """

    root: str = "datasets/universal"
    split: str = "train"
    csv: str | None = None
    batch_size: int = 784
    accumulate_steps: int = 1
    num_workers: int = 8
    crop: bool = False
    new_share: float | None = None

    def __post_init__(self) -> None:
        _check_batching(self)
        _check_new_share(self)

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
            file, or a DA-CLIP to continue from (``train daclip --init-from``): a registered
            weights name (``daclip-vit-b-32``), a released ``.pt``, a native folder or a
            ``train daclip`` run folder (its newest checkpoint); ``None`` for random.
    """

    name: str = "daclip_ViT-B-32"
    model_config: dict[str, Any] | None = None
    pretrained: str | None = "laion2b_s34b_b79k"


@dataclass(frozen=True, kw_only=True)
class DaClipValidationConfig:
    """Stage-1 validation, like the official per-epoch evaluation of ``daclip_val.csv``.

    Reported (``val_*`` in ``metrics.jsonl``): ``loss``, ``contrastive_loss`` and ``degra_loss``
    (the training loss on the val rows, in batches of ``batch_size``, weighted by batch size) and
    ``accuracy``: top-1 degradation classification of each val image (its degradation embedding
    against the degradation words of the training and val CSVs, as ``evaluate.py``). Val images
    are resized and centre-cropped (the inference transform), not randomly cropped.

    Attributes:
        enabled: validate at all.
        every: every N steps; ``0``: at the end of every epoch (official).
        csv: the val CSV; default ``data.root/daclip_val.csv``.
        batch_size: rows per loss batch (``None``: ``data.batch_size``); the contrastive loss
            depends on it, the accuracy does not.
        false_alarm: each validation also calibrates the unknown-degradation check
            (:mod:`daclip_kit.core.ood`): its threshold flags this share of the val images; stored
            with the model (``config.ood``) and reported as ``ood_threshold``,
            ``ood_val_false_alarm`` and ``ood_clean_detection`` (the share of the val rows' clean
            GT images flagged).
    """

    enabled: bool = True
    every: int = 0
    csv: str | None = None
    batch_size: int | None = None
    false_alarm: float = 0.05

    def __post_init__(self) -> None:
        check_int("validation.every", self.every, 0)
        check_int("validation.batch_size", self.batch_size, 1, allow_none=True)
        check_float("validation.false_alarm", self.false_alarm, low=0.0, high=1.0, low_open=True)

    def csv_path(self, data: DaClipDataConfig) -> Path:
        return Path(self.csv) if self.csv else Path(data.root) / "daclip_val.csv"


@dataclass(frozen=True, kw_only=True)
class DaClipTrainConfig:
    """Contrastive training of DA-CLIP's controller (paper §3.1; FACTS §1.7).

    CLIP is frozen; the controller and DA-CLIP's ``logit_scale`` are trained with
    ``contrastive_loss + degra_loss``; ``logit_scale`` is clamped to ``[0, ln 100]`` after each step.

    Attributes:
        data, model, optim, validation: the sections above (optim defaults: lr 2e-5, betas
            (0.9, 0.98), eps 1e-6, weight decay 0.05, warmup 100: the README single-GPU recipe).
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
        activation_checkpointing: keep only the inputs of the big blocks (the vision towers'
            transformer blocks here, the U-Net's blocks in stage 2) in the forward pass and
            recompute the rest in the backward pass (``torch.utils.checkpoint``, non-reentrant):
            less memory, about a third more compute, the same gradients.
        max_memory: memory the run may use per process, e.g. ``"12G"`` (``None``: the device's);
            a run whose estimate (printed at the start) does not fit is refused before it starts,
            naming settings that fit (see docs/train.md).
    """

    data: DaClipDataConfig = field(default_factory=DaClipDataConfig)
    model: DaClipModelConfig = field(default_factory=DaClipModelConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    validation: DaClipValidationConfig = field(default_factory=DaClipValidationConfig)
    epochs: int = 30
    max_steps: int | None = None
    log_every: int = 100
    save_every: int = 0
    keep: int = 0
    out_dir: str = "runs/daclip"
    seed: int = 0
    device: str = "auto"
    precision: Precision = "fp16"
    activation_checkpointing: bool = False
    max_memory: str | None = None

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
            network's converter, a native folder, an ``hf://`` Hub reference, a weights name such as
            ``universal-ir``, or a ``train restoration`` run folder: its newest ``network-ema``);
            ``None``: random init.
        embedder: the frozen embedding provider (default ``daclip`` with the official
            ``daclip-vit-b-32`` weights and the official uint8 truncation of the LQ patch), or
            ``name = "none"`` to train without conditioning (the network must take none).
        objective: for denoisers, ``"ml"``: the official maximum-likelihood target (reverse-SDE
            mean vs the optimal posterior mean); ``"noise"``: noise matching; ``"clean"``: the
            clean image, for a network with ``network.prediction = "clean"`` (small models: a noise
            prediction's errors are multiplied by ``sigma_t / alpha_t``, about 40 at ``t = T``,
            when a sampler turns it into a clean image; docs/train.md).
        loss: ``"l1"`` (official; Restormer, PromptIR), ``"l2"``, or, for one-shot backbones,
            ``"psnr"`` (NAFNet's PSNR loss: ``10 log10`` of each image's MSE, averaged).
        optim: AdamW lr 2e-4, betas (0.9, 0.99), no weight decay, cosine to 1e-6, no warmup.
        max_steps: total steps (``niter`` 700,000).
        log_every: 200 (``print_freq``); save_every: 10,000 (``save_checkpoint_freq``).
        keep, out_dir, seed (0), device, precision (``"fp32"``: the official training has no amp),
            activation_checkpointing, max_memory: as in :class:`DaClipTrainConfig`.
    """

    data: IRSDEDataConfig = field(default_factory=IRSDEDataConfig)
    network: Component = field(default_factory=_default_network)
    init_from: str | None = None
    sampler: Component = field(default_factory=_default_sampler)
    embedder: Component = field(default_factory=_default_embedder)
    objective: Literal["ml", "noise", "clean"] = "ml"
    loss: Literal["l1", "l2", "psnr"] = "l1"
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
    activation_checkpointing: bool = False
    max_memory: str | None = None

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
        if self.loss == "psnr" and spec.kind == "denoiser":
            raise ConfigError(f"loss='psnr' is for one-shot backbones; {network.name!r} is a denoiser trained on the "
                              "sampler's objective: use loss = \"l1\" (official) or \"l2\".")
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


#: Settings that may differ from the stored ``config.toml`` when a run is resumed: how long to
#: train (extending a run stretches the rest of the cosine schedule), how often to log, save,
#: keep and validate, where to run and how to fit memory (budget, checkpointing). Everything else
#: (data, model, optimizer, batch, precision, seed, ...) decides the weights and is refused.
#: ``section.*`` allows a whole section.
RESUME_ALLOWED: tuple[str, ...] = ("max_steps", "epochs", "log_every", "save_every", "keep", "device", "out_dir",
                                   "max_memory", "activation_checkpointing", "data.num_workers", "validation.*")
#: :data:`RESUME_ALLOWED` in words, for messages and help.
RESUME_ALLOWED_TEXT = f"{', '.join(RESUME_ALLOWED[:-1])} and {RESUME_ALLOWED[-1]}"
#: The value :func:`resume_changes` reports for a key one of the two configs lacks.
ABSENT = object()


def flatten(data: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """``{"a": {"b": 1}}`` -> ``{"a.b": 1}`` (lists stay values)."""
    out: dict[str, Any] = {}
    for key, value in data.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            out.update(flatten(value, name + "."))
        else:
            out[name] = value
    return out


def _allowed(key: str) -> bool:
    return any(key == a or (a.endswith(".*") and key.startswith(a[:-1])) for a in RESUME_ALLOWED)


def resume_changes(stored: Any, new: Any) -> list[tuple[str, Any, Any]]:
    """``(key, stored value, new value)`` of every setting that differs between two run configs
    and may not change on resume (outside :data:`RESUME_ALLOWED`); :data:`ABSENT` for a key one
    of them lacks."""
    a, b = flatten(to_dict(stored)), flatten(to_dict(new))
    return [(k, a.get(k, ABSENT), b.get(k, ABSENT)) for k in sorted(set(a) | set(b))
            if a.get(k, ABSENT) != b.get(k, ABSENT) and not _allowed(k)]


#: The trainers by CLI name (``irsde`` is the older name of ``restoration``).
TRAINERS = ("daclip", "restoration", "irsde", "distill")


def config_class(kind: str) -> type:
    """``DaClipTrainConfig`` for ``"daclip"``, ``RestorationTrainConfig`` for ``"restoration"``,
    ``DistillTrainConfig`` for ``"distill"``."""
    if kind not in TRAINERS:
        raise UnknownComponentError("trainer", kind, TRAINERS)
    if kind == "distill":  # built from this module's sections: imported here, not at the top, to avoid a cycle
        from .distill_config import DistillTrainConfig

        return DistillTrainConfig
    return DaClipTrainConfig if kind == "daclip" else RestorationTrainConfig


#: The run files shipped with the package (``examples/train`` in a clone links here).
RECIPES_DIR = Path(__file__).resolve().parent / "recipes"


def bundled_recipes() -> list[str]:
    """Names of the bundled run files (``daclip_tiny``, ``irsde_official``, ...)."""
    return sorted(p.stem for p in RECIPES_DIR.glob("*.toml"))


def resolve_run_file(path: str | Path) -> Path:
    """``path`` when it exists, else the bundled run file of that name (``irsde_tiny`` or
    ``irsde_tiny.toml``), so the documented commands work from an installed wheel too.

    Raises:
        ConfigError: neither a file nor a bundled name (the message lists the bundled ones).
    """
    path = Path(path)
    if path.exists():
        return path
    bundled = RECIPES_DIR / f"{path.name.removesuffix('.toml')}.toml"
    if bundled.is_file():
        return bundled
    raise ConfigError(f"Run file {str(path)!r} does not exist, and it is not a bundled run file "
                      f"({', '.join(bundled_recipes())}); give a TOML file or one of those names.")


def load_run_config(kind: str, path: str | Path | None = None, overrides: Sequence[str] = ()):
    """The run config of trainer ``kind`` from a TOML file or bundled run file name (defaults when
    ``path`` is ``None``) with ``section.key=value`` overrides applied, then checked as a whole
    (``cfg.validate()``).

    Raises:
        ConfigError: a missing file, unreadable TOML, unknown keys (with a suggestion) or invalid values.
    """
    cls = config_class(kind)
    if path is None:
        return apply_overrides(from_dict(cls, {}), overrides).validate()
    return load_toml(cls, resolve_run_file(path), overrides).validate()


def parse_run_config(cls: type, text: str, where: str, overrides: Sequence[str] = ()):
    """A run config of class ``cls`` from TOML ``text`` (``where`` names it in errors), with
    overrides, checked as a whole."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{where} is not valid TOML: {exc}") from None
    return apply_overrides(from_dict(cls, data), overrides).validate()


def config_to_toml(cfg: Any) -> str:
    """The TOML text of a run config; reading it back gives an equal config."""
    return dumps(to_dict(cfg))
