"""Calibrating a DA-CLIP's "none of my degradations" check on its val set (:mod:`daclip_kit.core.ood`).

``daclip-kit classify --calibrate ROOT --weights MODEL [--out DIR]`` runs
:func:`calibrate_embedder` on ``ROOT/val`` and :func:`write_calibrated` stores the result in the
model's folder (``config.json``, ``config.ood``, and the reference state in ``ood.safetensors``);
``train daclip`` calibrates after each validation.
A calibration records the digest of the weights it was measured on
(:func:`daclip_kit.checkpoint.state_dict_sha256`) and is written only beside those weights.

Example:
    >>> from daclip_kit import create_embedder  # doctest: +SKIP
    >>> from daclip_kit.train.calibrate import calibrate_embedder, write_calibrated  # doctest: +SKIP
    >>> emb = create_embedder("daclip", weights="runs/daclip/checkpoints/step-00001000/daclip")  # doctest: +SKIP
    >>> cal = calibrate_embedder(emb, "datasets/universal")  # doctest: +SKIP
    >>> write_calibrated(emb.model, cal, "daclip-calibrated")  # doctest: +SKIP
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

import torch

from ..checkpoint import state_dict_sha256
from ..core.embedder import EmbeddingProvider
from ..core.ood import (
    DEFAULT_FALSE_ALARM,
    DEFAULT_STATISTIC,
    MAX_PROB,
    STATISTICS,
    OodCalibration,
    calibrate,
    calibrate_embeddings,
)
from ..data.mini import source_photos
from ..data.universal import degradation_folders, scan_universal
from ..errors import ConfigError, InputError
from ..io import read_image

if TYPE_CHECKING:
    from ..embedders.daclip.model import DaCLIP

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


@torch.no_grad()
def embeddings(embedder: EmbeddingProvider, paths: Sequence[str | Path]) -> torch.Tensor:
    """``(N, D)`` the L2-normalised embeddings ``classify`` compares with the words (the degradation
    embedding of a DA-CLIP), on the CPU (images read one at a time, any size)."""
    rows = []
    for path in paths:
        emb = embedder.embed_image(read_image(path)).normalized()
        query = emb.degradation if emb.degradation is not None else emb.content
        rows.append(query.float().cpu())
    return torch.cat(rows) if rows else torch.zeros(0, embedder.embed_dim)


def calibrate_embedder(embedder: EmbeddingProvider, root: str | Path, *,
                       false_alarm: float = DEFAULT_FALSE_ALARM, split: str = "val",
                       limit: int | None = None, statistic: str = DEFAULT_STATISTIC,
                       reference: str | None = None, reference_limit: int | None = None,
                       k: int | None = None) -> OodCalibration:
    """Calibrate ``embedder`` against its own words on ``root/split`` (the universal layout).

    The LQ images of the folders named after the model's degradation words are in distribution
    (the threshold flags ``false_alarm`` of them); their clean GT images are measured as an
    out-of-distribution set (recorded as ``detection["clean (val GT)"]``). For the embedding-space
    statistics (:mod:`daclip_kit.core.ood`) the val images are the reference set (each scored
    without itself), plus the LQ images of ``root/reference`` where given (e.g. ``"train"``). The
    calibration records the digest of the embedder's network (its ``model``, where it has one: a
    DA-CLIP's).

    Args:
        embedder: the model (its :attr:`~EmbeddingProvider.degradations` are the labels).
        root: a data root with ``split/<degradation>/{LQ,GT}``.
        false_alarm: the share of val images the threshold flags.
        split: the split read.
        limit: at most this many pairs per degradation folder.
        statistic: ``"knn"`` (default), ``"mahalanobis"`` or ``"max_prob"`` (the older score).
        reference: a split whose LQ images join the reference set (``None``: the val images only).
        reference_limit: at most this many of its pairs per degradation folder.
        k: the neighbour rank of ``"knn"`` (default :func:`~daclip_kit.core.ood.default_k`).

    Raises:
        InputError: ``root/split`` has no folder named after any of the model's words.
        ConfigError: an unknown statistic.
    """
    if statistic not in STATISTICS:
        raise ConfigError(f"Unknown unknown-degradation statistic {statistic!r}; choose one of "
                          f"{', '.join(STATISTICS)}.")
    words = tuple(embedder.degradations)
    present = [name for name in degradation_folders(root, split) if name in words]
    if not present:
        raise InputError(f"{str(Path(root) / split)!r} has no folder named after the model's degradations "
                         f"({', '.join(words)}); calibrate on the data the model was trained on.")
    missing = [w for w in words if w not in present]
    if missing:
        log.warning("calibrating without val images of %s (no folder in %s)", ", ".join(missing), Path(root) / split)
    groups = scan_universal(root, split, present)
    pairs = [p for group in groups.values() for p in group[:limit]]
    classes = [name for name, group in groups.items() for _ in group[:limit]]
    extra: list[tuple[str, Path]] = []
    if reference is not None and statistic != MAX_PROB:
        found = [name for name in degradation_folders(root, reference) if name in words]
        extra = [(name, Path(p.lq)) for name, group in scan_universal(root, reference, found).items()
                 for p in group[:reference_limit]]
    was_training = embedder.training
    embedder.eval()
    try:
        if statistic == MAX_PROB:
            val = max_probs(embedder, [p.lq for p in pairs], words)
            clean = max_probs(embedder, [p.gt for p in pairs], words)
        else:
            val_emb = embeddings(embedder, [p.lq for p in pairs])
            clean_emb = embeddings(embedder, [p.gt for p in pairs])
            ref_emb = embeddings(embedder, [path for _, path in extra]) if extra else None
    finally:
        embedder.train(was_training)
    network = getattr(embedder, "model", None)
    digest = state_dict_sha256(network) if isinstance(network, torch.nn.Module) else None
    if statistic == MAX_PROB:
        return calibrate(val, words, false_alarm=false_alarm, detection={CLEAN_SET: clean}, state_dict_sha256=digest)
    return calibrate_embeddings(val_emb, classes, words, statistic=statistic, reference=ref_emb,
                                reference_classes=[name for name, _ in extra], k=k, false_alarm=false_alarm,
                                detection={CLEAN_SET: clean_emb}, state_dict_sha256=digest,
                                groups=source_photos([p.lq for p in pairs]))


def write_calibrated(model: DaCLIP, calibration: OodCalibration, out: str | Path, *,
                     overwrite: bool = False) -> Path:
    """Write the DA-CLIP network ``model`` with ``calibration`` (and its words) as a native folder.

    ``calibration`` must have been measured on ``model``'s weights: it is written with their digest
    (``state_dict_sha256``; recorded here where the calibration has none, e.g. one made with
    :func:`~daclip_kit.core.ood.calibrate` from scores), and one recording another digest is refused.
    The folder is written atomically (:func:`daclip_kit.io.atomic_folder`); an existing model
    folder is replaced only with ``overwrite``.

    Raises:
        ConfigError: ``calibration`` records the digest of other weights than ``model``'s.
    """
    from ..embedders.daclip.convert import save_daclip

    digest = state_dict_sha256(model)
    if calibration.state_dict_sha256 is None:
        calibration = replace(calibration, state_dict_sha256=digest)
    elif calibration.state_dict_sha256 != digest:
        raise ConfigError(f"The calibration was measured on other weights (digest {calibration.state_dict_sha256[:12]}"
                          f"...) than the DA-CLIP written to {str(out)!r} ({digest[:12]}...); calibrate this model "
                          "(calibrate_embedder, or `daclip-kit classify --calibrate`) and write that.")
    model.degradations = tuple(calibration.labels)
    model.ood = calibration.to_dict()
    model.ood_state = dict(calibration.state) if calibration.state is not None else None
    return save_daclip(model, out, overwrite=overwrite)
