"""Run configs of the trainers (torch-free): nested frozen dataclasses read from TOML.

Every default is the official recipe; the source of each is given next to the field
(FACTS = ``shared/reference/FACTS.md``: §1.7 DA-CLIP training, §2.6-2.7 IR-SDE training).

* :class:`DaClipTrainConfig`: stage 1, contrastive training of DA-CLIP's controller
  (open_clip ``training.main --da``, README single-GPU command).
* :class:`RestorationTrainConfig`: stage 2, any registered restoration network (defaults: the
  IR-SDE U-Net, ``config/daclip-sde/options/train.yml``) with a frozen embedder. The network,
  sampler and embedder are registry components (``[network] name = "..."``), so a plugin's
  backbone trains with the same verb.
* ``train distill``: :class:`~daclip_kit.train.distill_config.DistillTrainConfig`.

The sections the trainers share (the loop settings, the restoration network's sections, the
optimizer) live in :mod:`.sections` and are importable from here too. :data:`TRAINERS` is the one
table of trainers (kind -> config class, train function, description) that :func:`config_class`
and ``daclip-kit train`` read.

Unknown keys are errors with a suggestion; ``--set section.key=value`` overrides are coerced by
the field's type (:func:`daclip_kit.config.apply_overrides`), never evaluated.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from ..components import check_component
from ..config import Component, apply_overrides, from_dict, load_toml, to_dict, tomllib
from ..errors import ConfigError, UnknownComponentError
from ..plugins import get_registry
from ..specs import load_target
from .distill_config import DistillTrainConfig
from .sections import EMAConfig as EMAConfig  # `X as X`: sections that moved to .sections, re-exported
from .sections import IRSDEDataConfig as IRSDEDataConfig
from .sections import IRSDEOptimConfig as IRSDEOptimConfig
from .sections import LoggingConfig as LoggingConfig
from .sections import (
    LoopConfig,
    NetworkTrainConfig,
    OptimConfig,
    Precision,
    _check_batching,
    _check_new_share,
    check_float,
    check_int,
)
from .sections import ValidationConfig as ValidationConfig
from .toml_text import dumps

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
        synthesize: ``False`` (official): train on the stored LQ images. ``True``: online
            degradations, each training image is made anew every time its row is read: the row's
            clean GT (``ROOT/<split>/<degradation>/GT/<name>`` beside the LQ), randomly cropped,
            flipped and colour-shuffled, degraded with a degradation text of the CSV drawn at
            random (equally, or as ``new_share`` weighs them) by the registered generators
            (:func:`daclip_kit.factory.create_degradation`). The caption stays the row's. A
            degradation without a registered generator is read as stored (one of its rows' LQ
            when drawn); every row needs its GT; the val rows are read as stored. Not in the
            paper: the tiny recipe's cure for overfitting a few images (``daclip_tiny.toml``).
    """

    root: str = "datasets/universal"
    split: str = "train"
    csv: str | None = None
    batch_size: int = 784
    accumulate_steps: int = 1
    num_workers: int = 8
    crop: bool = False
    new_share: float | None = None
    synthesize: bool = False

    def __post_init__(self) -> None:
        _check_batching(self)
        _check_new_share(self)
        if not isinstance(self.synthesize, bool):
            raise ConfigError(f"data.synthesize={self.synthesize!r} must be true or false.")

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
class DaClipTrainConfig(LoopConfig):
    """Contrastive training of DA-CLIP's controller (paper §3.1; FACTS §1.7).

    CLIP is frozen; the controller and DA-CLIP's ``logit_scale`` are trained with
    ``contrastive_loss + degra_loss``; ``logit_scale`` is clamped to ``[0, ln 100]`` after each step.

    Attributes:
        data, model, optim, validation: the sections above (optim defaults: lr 2e-5, betas
            (0.9, 0.98), eps 1e-6, weight decay 0.05, warmup 100: the README single-GPU recipe).

    The loop settings are :class:`~daclip_kit.train.sections.LoopConfig`'s, with these defaults:
    ``epochs`` 30 (a number, never none), ``out_dir`` ``runs/daclip``, ``precision`` ``"fp16"``
    (the official ``amp``); ``save_every`` 0 saves once per epoch, as the official runs;
    ``activation_checkpointing`` applies to the vision towers' transformer blocks.
    """

    data: DaClipDataConfig = field(default_factory=DaClipDataConfig)
    model: DaClipModelConfig = field(default_factory=DaClipModelConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    validation: DaClipValidationConfig = field(default_factory=DaClipValidationConfig)
    # the loop defaults of this trainer (the fields are LoopConfig's)
    epochs: int = 30
    out_dir: str = "runs/daclip"
    precision: Precision = "fp16"


# -- stage 2: IR-SDE ----------------------------------------------------------------------------

@dataclass(frozen=True, kw_only=True)
class RestorationTrainConfig(NetworkTrainConfig):
    """Training a restoration network with a frozen embedder (paper §3.2; FACTS §2.5-2.7).

    The sections are :class:`~daclip_kit.train.sections.NetworkTrainConfig`'s, the loop settings
    :class:`~daclip_kit.train.sections.LoopConfig`'s; what they mean here:

    Attributes:
        data, ema, validation: :class:`IRSDEDataConfig`, :class:`EMAConfig`, :class:`ValidationConfig`.
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
        out_dir: ``runs/irsde``; precision: ``"fp32"`` (the official training has no amp); the
            other loop settings keep :class:`~daclip_kit.train.sections.LoopConfig`'s defaults.
    """

    objective: Literal["ml", "noise", "clean"] = "ml"
    loss: Literal["l1", "l2", "psnr"] = "l1"
    # the loop defaults of this trainer (the fields are LoopConfig's)
    max_steps: int | None = 700_000
    log_every: int = 200
    save_every: int = 10_000
    out_dir: str = "runs/irsde"

    def validate(self) -> RestorationTrainConfig:
        """Check every section, the registered components' settings included (after all
        overrides), before anything is written; returns the config with typed settings."""
        super().validate()
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


#: Settings that may differ from the stored ``config.toml`` when a run is resumed: how long to
#: train (extending a run stretches the rest of the cosine schedule), how often to log, save,
#: keep and validate, what to write for watching the run (``[logging]``), where to run and how to
#: fit memory (budget, checkpointing). Everything else (data, model, optimizer, batch, precision,
#: seed, ...) decides the weights and is refused. ``section.*`` allows a whole section.
RESUME_ALLOWED: tuple[str, ...] = ("max_steps", "epochs", "log_every", "save_every", "keep", "device", "out_dir",
                                   "max_memory", "activation_checkpointing", "data.num_workers", "logging.*",
                                   "validation.*")
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


@dataclass(frozen=True)
class Trainer:
    """One trainer of ``daclip-kit train KIND``: a row of :data:`TRAINERS`.

    Attributes:
        kind: its name on the command line.
        config: its run-config class (:func:`load_run_config` reads run files into it).
        target: ``"module:function"`` of its train function, imported only when it runs (torch).
        description: what it trains, for ``--help``.
    """

    kind: str
    config: type[LoopConfig]
    target: str
    description: str

    def train_function(self) -> Callable[..., Any]:
        """The train function (``train_daclip``, ``train_restoration``, ``train_distill``)."""
        return load_target(self.target)


#: The one table of trainers, by CLI name (``irsde`` is the older name of ``restoration``), read by
#: :func:`config_class` and ``daclip-kit train``.
TRAINERS: dict[str, Trainer] = {row.kind: row for row in (
    Trainer("daclip", DaClipTrainConfig, "daclip_kit.train.daclip:train_daclip", "DA-CLIP's controller (stage 1)"),
    Trainer("restoration", RestorationTrainConfig, "daclip_kit.train.restoration:train_restoration",
            "the restoration network (stage 2; any registered backbone, the IR-SDE U-Net by default)"),
    Trainer("irsde", RestorationTrainConfig, "daclip_kit.train.restoration:train_restoration",
            "the older name of restoration"),
    Trainer("distill", DistillTrainConfig, "daclip_kit.train.distill:train_distill",
            "a 1-, 2- or 4-evaluation student of a trained diffusion network"),
)}


def trainer(kind: str) -> Trainer:
    """The row of :data:`TRAINERS` called ``kind``.

    Raises:
        UnknownComponentError: not a trainer (the message lists them, with a close match).
    """
    if kind not in TRAINERS:
        raise UnknownComponentError("trainer", kind, TRAINERS)
    return TRAINERS[kind]


def config_class(kind: str) -> type:
    """The run-config class of trainer ``kind``: ``DaClipTrainConfig`` for ``"daclip"``,
    ``RestorationTrainConfig`` for ``"restoration"`` (and ``"irsde"``), ``DistillTrainConfig`` for
    ``"distill"``."""
    return trainer(kind).config


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
