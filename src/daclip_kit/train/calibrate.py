"""Calibrating a DA-CLIP's "none of my degradations" check on its val set (:mod:`daclip_kit.core.ood`).

``daclip-kit classify --calibrate ROOT --weights MODEL [--out DIR]`` runs
:func:`calibrate_embedder` on ``ROOT/val`` and :func:`write_calibrated` stores the result in the
model's folder (``config.json``, ``config.ood``); ``train daclip`` calibrates after each validation.

Example:
    >>> from daclip_kit import create_embedder  # doctest: +SKIP
    >>> from daclip_kit.train.calibrate import calibrate_embedder, write_calibrated  # doctest: +SKIP
    >>> emb = create_embedder("daclip", weights="runs/daclip/checkpoints/step-00001000/daclip")  # doctest: +SKIP
    >>> write_calibrated(emb.model, calibrate_embedder(emb, "datasets/universal"), "daclip-calibrated")  # doctest: +SKIP
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

import torch

from ..core.embedder import EmbeddingProvider
from ..core.ood import DEFAULT_FALSE_ALARM, OodCalibration, calibrate
from ..data.universal import degradation_folders, scan_universal
from ..errors import InputError
from ..io import read_image

log = logging.getLogger(__name__)

#: The name under which the clean (GT) val images' flag rate is recorded.
CLEAN_SET = "clean (val GT)"


@torch.no_grad()
def max_probs(embedder: EmbeddingProvider, paths: Sequence[str | Path], labels: Sequence[str]) -> list[float]:
    """The maximum class probability of each image against ``labels`` (images read one at a time,
    any size)."""
    text = embedder.label_features(labels)
    return [float(embedder.classify(read_image(p), labels, label_features=text).probs.max())
            for p in paths]


def calibrate_embedder(embedder: EmbeddingProvider, root: str | Path, *,
                       false_alarm: float = DEFAULT_FALSE_ALARM, split: str = "val",
                       limit: int | None = None) -> OodCalibration:
    """Calibrate ``embedder`` against its own words on ``root/split`` (the universal layout).

    The LQ images of the folders named after the model's degradation words are in distribution
    (the threshold flags ``false_alarm`` of them); their clean GT images are measured as an
    out-of-distribution set (recorded as ``detection["clean (val GT)"]``).

    Args:
        embedder: the model (its :attr:`~EmbeddingProvider.degradations` are the labels).
        root: a data root with ``split/<degradation>/{LQ,GT}``.
        false_alarm: the share of val images the threshold flags.
        split: the split read.
        limit: at most this many pairs per degradation folder.

    Raises:
        InputError: ``root/split`` has no folder named after any of the model's words.
    """
    words = tuple(embedder.degradations)
    present = [name for name in degradation_folders(root, split) if name in words]
    if not present:
        raise InputError(f"{str(Path(root) / split)!r} has no folder named after the model's degradations "
                         f"({', '.join(words)}); calibrate on the data the model was trained on.")
    missing = [w for w in words if w not in present]
    if missing:
        log.warning("calibrating without val images of %s (no folder in %s)", ", ".join(missing), Path(root) / split)
    pairs = [p for group in scan_universal(root, split, present).values() for p in group[:limit]]
    was_training = embedder.training
    embedder.eval()
    try:
        val = max_probs(embedder, [p.lq for p in pairs], words)
        clean = max_probs(embedder, [p.gt for p in pairs], words)
    finally:
        embedder.train(was_training)
    return calibrate(val, words, false_alarm=false_alarm, detection={CLEAN_SET: clean})


def write_calibrated(model: torch.nn.Module, calibration: OodCalibration, out: str | Path, *,
                     overwrite: bool = False) -> Path:
    """Write the DA-CLIP network ``model`` with ``calibration`` (and its words) as a native folder.

    The folder is written atomically (:func:`daclip_kit.io.atomic_folder`); an existing model
    folder is replaced only with ``overwrite``.
    """
    from ..embedders.daclip.convert import save_daclip

    model.degradations = tuple(calibration.labels)
    model.ood = calibration.to_dict()
    return save_daclip(model, out, overwrite=overwrite)
