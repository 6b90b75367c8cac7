"""Helpers shared by the training tests: a small mini data set and tiny run configs."""

from __future__ import annotations

import copy
from pathlib import Path

from daclip_kit.embedders.plugin import TINY_CLIP_CONFIG

TYPES = ("noisy", "hazy", "low-light", "jpeg-compressed")
TINY_UNET = {"nf": 32, "ch_mult": [1, 1, 1, 1], "context_dim": 32}
_CACHE: dict[str, Path] = {}


def mini_root(tmp_path_factory) -> Path:
    """A mini universal data set (32 px, 3 train + 1 val pairs per type), built once per session."""
    if "mini" not in _CACHE:
        from daclip_kit.data.mini import build_mini

        root = tmp_path_factory.mktemp("train-mini") / "universal"
        build_mini(root, size=32, per_type=3, val_per_type=1, composed=0, types=TYPES, seed=0)
        _CACHE["mini"] = root
    return _CACHE["mini"]


def tiny_daclip_folder(tmp_path_factory) -> Path:
    """A randomly initialised tiny DA-CLIP saved as a native folder, built once per session."""
    if "daclip" not in _CACHE:
        import torch

        from daclip_kit.embedders.daclip.convert import save_daclip
        from daclip_kit.embedders.daclip.model import DaCLIP

        torch.manual_seed(0)
        folder = tmp_path_factory.mktemp("tiny-daclip") / "daclip"
        save_daclip(DaCLIP.from_config(copy.deepcopy(TINY_CLIP_CONFIG)), folder)
        _CACHE["daclip"] = folder
    return _CACHE["daclip"]


def daclip_run(root: Path, out: Path, **top) -> dict:
    """A tiny DA-CLIP run config as a plain dict (for ``from_dict``)."""
    cfg = {
        "max_steps": 3, "log_every": 1, "save_every": 3, "out_dir": str(out), "device": "cpu",
        "precision": "fp32",
        "data": {"root": str(root), "batch_size": 4, "num_workers": 0},
        "model": {"pretrained": None, "model_config": copy.deepcopy(TINY_CLIP_CONFIG)},
        "optim": {"lr": 1e-3, "warmup_steps": 1},
        "validation": {"enabled": False},
    }
    return _merge(cfg, top)


def irsde_run(root: Path, out: Path, daclip: Path, **top) -> dict:
    """A tiny IR-SDE run config as a plain dict (for ``from_dict``)."""
    cfg = {
        "max_steps": 3, "log_every": 1, "save_every": 3, "out_dir": str(out), "device": "cpu",
        "precision": "fp32",
        "data": {"root": str(root), "degradations": list(TYPES), "batch_size": 2, "patch_size": 32,
                 "num_workers": 0},
        "network": dict(TINY_UNET),
        "embedder": {"weights": str(daclip)},
        "validation": {"every": 0},
        "optim": {"lr": 1e-3},
    }
    return _merge(cfg, top)


def _merge(base: dict, extra: dict) -> dict:
    out = copy.deepcopy(base)
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _merge(out[key], value)
        else:
            out[key] = value
    return out


def irsde_config(root: Path, daclip: Path, out: Path, **top):
    """A tiny IR-SDE :class:`~daclip_kit.train.config.RestorationTrainConfig` (see :func:`irsde_run`)."""
    from daclip_kit.config import from_dict
    from daclip_kit.train.config import RestorationTrainConfig

    return from_dict(RestorationTrainConfig, irsde_run(root, out, daclip, **top))
