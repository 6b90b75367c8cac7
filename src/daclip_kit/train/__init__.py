"""Training: DA-CLIP's controller first, then the IR-SDE restoration network with DA-CLIP frozen.

Submodules import torch; this package itself does not (its ``plugin`` module is loaded at start-up).

* :mod:`.config`: the run configs (:class:`DaClipTrainConfig`, :class:`RestorationTrainConfig`) with the
  official recipes as defaults, :func:`load_run_config`.
* :mod:`.daclip`: :func:`train_daclip` (``daclip-kit train daclip``).
* :mod:`.restoration`: :func:`train_restoration` (``daclip-kit train restoration``): any registered
  network, the IR-SDE U-Net by default.
* :mod:`.distill`: :func:`train_distill` (``daclip-kit train distill``): a 1-, 2- or 4-evaluation
  student of a trained diffusion network.
* :mod:`.loop`: the shared loop (device, precision, logging, checkpoints, resume, Ctrl-C).
* :mod:`.distributed`: data-parallel training under ``torchrun``.
* :mod:`.ema`: :class:`EMA` (``ema-pytorch`` semantics).
"""

from __future__ import annotations

from .._lazy import lazy_exports

_LAZY = {
    "DaClipTrainConfig": "config",
    "IRSDETrainConfig": "config",
    "RestorationTrainConfig": "config",
    "OptimConfig": "config",
    "load_run_config": "config",
    "config_to_toml": "config",
    "train_daclip": "daclip",
    "build_daclip": "daclip",
    "DistillTrainConfig": "distill_config",
    "train_distill": "distill",
    "train_irsde": "restoration",
    "train_restoration": "restoration",
    "TrainResult": "loop",
    "TrainingError": "loop",
    "TrainingInterrupted": "loop",
    "EMA": "ema",
}

__all__ = list(_LAZY)

__getattr__ = lazy_exports(__name__, _LAZY, globals())
