"""What ``daclip-kit adapt`` measures before and after: restoration quality per degradation and
DA-CLIP's naming of the degradations (with its unknown-degradation check).

Restoration is scored as ``daclip-kit score`` scores it (PSNR and SSIM, the official protocol:
4-pixel border crop, RGB, uint8 rounding) on the val pairs of each degradation folder of the data
root; a model is built once through the one model resolver (:func:`daclip_kit.load`), with its own
DA-CLIP.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..data.universal import degradation_folders

log = logging.getLogger(__name__)

#: The metrics of every restoration score.
METRICS = ("psnr", "ssim")


@dataclass(frozen=True)
class ValSet:
    """The val pairs of one degradation folder: ``ROOT/val/<name>/{LQ,GT}``."""

    name: str
    lq: Path
    gt: Path


def val_sets(root: Path, names: tuple[str, ...] | list[str]) -> dict[str, ValSet]:
    """The val folders of ``names`` that ``root`` has (with LQ and GT images), by name."""
    present = set(degradation_folders(root, "val"))
    out = {}
    for name in names:
        lq, gt = root / "val" / name / "LQ", root / "val" / name / "GT"
        if name in present and lq.is_dir() and gt.is_dir() and any(lq.iterdir()):
            out[name] = ValSet(name, lq, gt)
    return out


def input_scores(sets: Mapping[str, ValSet], *, limit: int | None) -> dict[str, dict[str, float]]:
    """PSNR/SSIM of the LQ images themselves against their GT, per set (what restoring must beat)."""
    from ..metrics.score import score_folders

    return {name: _rounded(score_folders(s.gt, pred=s.lq, metrics=METRICS, limit=limit).metrics)
            for name, s in sets.items()}


def restoration_scores(model: str | Path, sets: Mapping[str, ValSet], *, device: str, limit: int | None,
                       steps: int | None, seed: int = 0,
                       daclip: str | Path | None = None) -> dict[str, dict[str, float]]:
    """PSNR/SSIM of ``model`` (any model reference; restored with its own DA-CLIP, or ``daclip``
    where given, and its sampler, ``steps`` sampler steps or the model's) on each set's first
    ``limit`` pairs."""
    import torch

    from ..api import load
    from ..core.pipeline import per_image_generators
    from ..metrics.score import score_folders

    built = load(model, daclip=daclip, device=device, settings={"steps": steps} if steps else None)
    pipe, dev = built.pipeline, built.device

    def restore(lq: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            return pipe(lq.to(dev), generator=per_image_generators(seed, 1)).image.cpu()

    return {name: _rounded(score_folders(s.gt, lq=s.lq, restore=restore, metrics=METRICS, limit=limit).metrics)
            for name, s in sets.items()}


def naming(daclip: Path, sets: Mapping[str, ValSet], *, device: str, limit: int | None) -> dict[str, Any]:
    """How the DA-CLIP at ``daclip`` (a local file or native folder) names each set's val LQ images
    with its own words.

    Returns:
        ``{"words": [...], "accuracy": {name: share named right, or None when name is not one of its
        words}, "unknown": {name: share flagged as unknown degradations, or None (not calibrated)}}``.
    """
    import torch

    from ..factory import create_embedder
    from ..io import read_image

    embedder = create_embedder("daclip", weights=str(daclip), device=device).eval()
    dev = next(embedder.parameters()).device
    words = tuple(embedder.degradations)
    accuracy: dict[str, float | None] = {}
    unknown: dict[str, float | None] = {}
    for name, s in sets.items():
        rows: list[dict[str, Any]] = []
        for f in sorted(p for p in s.lq.iterdir() if p.is_file())[:limit]:
            with torch.no_grad():
                rows += embedder.degradation_report(read_image(f).to(dev))
        right = sum(r["degradation"] == name for r in rows)
        accuracy[name] = round(right / len(rows), 4) if name in words and rows else None
        flags = [r["unknown_degradation"] for r in rows]
        unknown[name] = None if not flags or None in flags else round(sum(flags) / len(flags), 4)
    return {"words": list(words), "accuracy": accuracy, "unknown": unknown}


def _rounded(values: Mapping[str, float | None]) -> dict[str, float]:
    return {k: round(float(v), 4) for k, v in values.items() if k in METRICS and v is not None}
