"""The two training runs of ``daclip-kit adapt``: their configs, from the fine-tuning recipes.

:func:`daclip_run` continues the model's DA-CLIP with the new word (``daclip_finetune``);
:func:`restorer_run` adapts the restorer (``irsde_finetune``) as the preflight's :class:`Plan` says.
The network, sampler and DA-CLIP architectures are the base model's own (from its folders, never the
recipe's defaults); what a recipe sets for a GPU and the full data set is fitted to the device and
to the data actually there (precision, batch size, loader workers, patch size), so the same command
runs on a laptop's CPU and on a GPU. The user's ``--daclip-set`` / ``--restorer-set`` overrides come
last and win.
"""

from __future__ import annotations

import dataclasses
import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..config import Component, apply_overrides
from ..errors import ConfigError
from ..model.unit import ModelUnit
from .preflight import Plan

#: The recipes the runs start from (``daclip-kit train --config NAME``).
DACLIP_RECIPE = "daclip_finetune"
RESTORER_RECIPE = "irsde_finetune"
#: DA-CLIP learning rates: a controller started from CLIP (ViT-B and up, width >= 512) moves little;
#: a small one trained from scratch (the tiny stand-ins) needs a larger rate to learn a word.
DACLIP_LR_PRETRAINED = 1e-5
DACLIP_LR_SMALL = 5e-4
#: DA-CLIP's steps derived from the restorer's are never below this.
MIN_STEPS = 10


@dataclass(frozen=True)
class DataFacts:
    """What the data root holds for the runs.

    Attributes:
        root: the universal folder.
        new: the new degradation's word.
        known: the base model's degradation words that have training folders in ``root``.
        train_rows: rows of ``root/daclip_train.csv`` (DA-CLIP's batch cannot be larger).
        train_pairs: training pairs of ``known`` and ``new`` (the restorer's batch cannot be larger).
        min_side: the smallest side of the training images (the restorer's patches fit in it).
    """

    root: Path
    new: str
    known: tuple[str, ...]
    train_rows: int
    train_pairs: int
    min_side: int


def _cpu_workers() -> int:
    """Loader processes that leave the trainer a core: none on a machine of 2 cores or fewer."""
    cores = os.cpu_count() or 1
    return 0 if cores <= 2 else min(8, cores - 2)


def _device_settings(device: str) -> list[str]:
    """Precision and workers for ``device`` (fp16 autocast needs CUDA; the recipes assume it)."""
    cuda = device.startswith("cuda") or (device == "auto" and _cuda_available())
    return [f"device={device}", f"precision={'fp16' if cuda else 'fp32'}"]


def _cuda_available() -> bool:
    import torch

    return bool(torch.cuda.is_available())


def daclip_lr(width: int | None) -> float:
    """The DA-CLIP fine-tuning rate for a vision tower of ``width`` (see :data:`DACLIP_LR_SMALL`)."""
    return DACLIP_LR_PRETRAINED if (width or 0) >= 512 else DACLIP_LR_SMALL


def daclip_run(daclip: Path, facts: DataFacts, out: Path, *, steps: int, device: str, seed: int,
               width: int | None, user: Sequence[str] = ()) -> Any:
    """The config continuing the DA-CLIP at ``daclip`` (a native folder or released file) on
    ``facts.root`` for ``steps`` steps, validated (and calibrated) at its last step.

    Raises:
        ConfigError: a bad user override (named).
    """
    from ..train.config import load_run_config

    batch = max(2, min(256, facts.train_rows))
    overrides = [f"data.root={facts.root}", f"model.pretrained={daclip}", f"out_dir={out}", f"max_steps={steps}",
                 f"save_every={steps}", f"seed={seed}", f"data.batch_size={batch}",
                 f"data.num_workers={_cpu_workers()}", f"optim.lr={daclip_lr(width)}",
                 f"optim.warmup_steps={min(100, max(1, steps // 10))}", f"validation.every={steps}",
                 f"log_every={max(1, min(50, steps // 10))}", *_device_settings(device)]
    return _with_user(load_run_config("daclip", DACLIP_RECIPE, overrides), user, "--daclip-set")


def _patch(min_side: int, network: Mapping[str, Any]) -> int:
    """The largest patch up to 256 px that fits the smallest image and the U-Net's downsampling."""
    levels = len(tuple(network.get("ch_mult", (1, 2, 4, 8)))) - 1
    multiple = 2 ** max(levels, 0) * 8
    side = min(256, min_side)
    patch = (side // multiple) * multiple
    if patch < multiple:
        raise ConfigError(f"The training images are {min_side} px on their smallest side, smaller than the "
                          f"{multiple} px the network's patches need; give larger images.")
    return patch


def restorer_run(unit: ModelUnit, daclip: Path, plan: Plan, facts: DataFacts, out: Path, *, steps: int,
                 device: str, seed: int, val_count: int, val_every: int, eval_steps: int | None,
                 user: Sequence[str] = ()) -> Any:
    """The config adapting ``unit``'s restorer as ``plan`` says, conditioned on the adapted DA-CLIP
    at ``daclip`` (a checkpoint's ``daclip`` folder), on the new degradation and the known ones.

    The network and sampler are ``unit``'s own (its recorded name, settings and SDE); with
    ``plan.init == "continue"`` its weights are the start, with ``"anew"`` the same architecture
    starts from random weights, predicting what ``plan.objective`` trains.

    Raises:
        ConfigError: a base model whose network is not recorded (a released file: give the registry
            name), or a bad user override.
    """
    from ..train.config import load_run_config

    assert unit.network is not None  # adapt refuses a DA-CLIP alone before this
    network = dict(unit.network_config)
    name = unit.network_name or "irsde-unet"
    prediction = "clean" if plan.objective == "clean" else "noise"
    network["prediction"] = prediction
    degradations = [*facts.known, facts.new] if plan.new_share < 1.0 and facts.known else [facts.new]
    new_share = plan.new_share if len(degradations) > 1 else None
    overrides = [f"data.root={facts.root}", f"data.degradations={','.join(degradations)}", f"out_dir={out}",
                 f"max_steps={steps}", f"save_every={val_every}", f"seed={seed}",
                 f"data.batch_size={max(1, min(16, facts.train_pairs))}",
                 f"data.patch_size={_patch(facts.min_side, network)}", f"data.num_workers={_cpu_workers()}",
                 f"embedder.weights={daclip}", f"optim.lr={plan.lr}",
                 f"optim.warmup_steps={min(500, max(1, steps // 10))}",
                 f"ema.update_after_step={min(100, steps // 10)}",
                 f"ema.update_every={1 if steps < 2000 else 10}", f"validation.every={val_every}",
                 f"validation.count={val_count}", "validation.use_ema=true",
                 f"log_every={max(1, min(200, steps // 10))}", *_device_settings(device)]
    if prediction == "clean":  # else the recipe's (the released model's) maximum-likelihood objective
        overrides.append("objective=clean")
    if new_share is not None:
        overrides.append(f"data.new_share={new_share}")
    overrides.append(f"init_from={unit.network}" if plan.init == "continue" else "init_from=none")
    if eval_steps is not None:
        overrides.append(f"validation.steps={eval_steps}")
    cfg = load_run_config("restoration", RESTORER_RECIPE, overrides)
    cfg = dataclasses.replace(cfg, network=Component(name, network))
    if unit.sampler:
        cfg = dataclasses.replace(cfg, sampler=Component(str(unit.sampler.get("name", "irsde")),
                                                         dict(unit.sampler.get("config", {}))))
    return _with_user(cfg, user, "--restorer-set")


def _with_user(cfg: Any, user: Sequence[str], flag: str) -> Any:
    try:
        return apply_overrides(cfg, list(user))
    except ConfigError as exc:
        raise ConfigError(f"{flag}: {exc}") from None


def daclip_steps(steps: int, plan: Plan, given: int | None) -> int:
    """DA-CLIP's steps: ``given``, else the restorer's ``steps`` times the plan's ratio (at least
    :data:`MIN_STEPS`)."""
    if given is not None:
        if given < 1:
            raise ConfigError(f"--daclip-steps must be at least 1, got {given}.")
        return given
    return max(MIN_STEPS, math.ceil(steps * plan.daclip_steps_ratio))
