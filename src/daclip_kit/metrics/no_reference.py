"""How an image looks before and after restoring it, without ground truth: NIQE and CLIP-IQA of the
input and of the output, as ``restore --json`` and the demo report them.

* NIQE (:func:`~daclip_kit.metrics.naturalness.niqe`): lower is better; it needs an image of at least
  96x192 pixels (two of its 96 px blocks), so smaller images get ``None``.
* CLIP-IQA (:func:`~daclip_kit.metrics.clip_quality.clipiqa`): in [0, 1], higher is better; it runs the
  plain CLIP towers of the model's own DA-CLIP, so a model without DA-CLIP gets ``None``.

Both judge naturalness as the statistics of natural photos and CLIP's "good photo" see it, not
fidelity: a restoration can score better and be wrong (docs/bench.md says how far to trust them).
"""

from __future__ import annotations

from typing import Any

import torch

from ..errors import ShapeError

#: The metrics reported, and which way is better.
METRICS = {"niqe": "lower", "clipiqa": "higher"}


def _niqe(image: torch.Tensor) -> float | None:
    from .naturalness import niqe

    try:
        value = float(niqe(image.float().clamp(0, 1))[0])
    except ShapeError:
        return None  # smaller than two NIQE blocks
    return round(value, 4) if value == value else None


def _clipiqa(image: torch.Tensor, embedder: Any) -> float | None:
    from .clip_quality import clipiqa

    if embedder is None or not getattr(embedder, "provides_degradation", False):
        return None
    device = next(embedder.parameters()).device
    with torch.no_grad():
        return round(float(clipiqa(image.float().clamp(0, 1).to(device), embedder=embedder)[0]), 4)


def quality_change(before: torch.Tensor, after: torch.Tensor, *, embedder: Any = None) -> dict[str, dict[str, Any]]:
    """NIQE and CLIP-IQA of ``before`` (the input) and ``after`` (the restored image).

    Args:
        before: the input, ``(1, 3, H, W)`` float RGB in [0, 1].
        after: the restored image, the same (its size may differ).
        embedder: the model's DA-CLIP embedder (for CLIP-IQA), or ``None``.

    Returns:
        ``{"niqe": {"input": float or None, "output": float or None, "better": "lower"},
        "clipiqa": {..., "better": "higher"}}``; ``None`` where the metric cannot be computed (an
        image too small for NIQE, no DA-CLIP for CLIP-IQA).
    """
    return {"niqe": {"input": _niqe(before), "output": _niqe(after), "better": METRICS["niqe"]},
            "clipiqa": {"input": _clipiqa(before, embedder), "output": _clipiqa(after, embedder),
                        "better": METRICS["clipiqa"]}}


def change_text(quality: dict[str, dict[str, Any]]) -> str:
    """One line for people: ``"NIQE 6.12 -> 4.31 (lower is better), CLIP-IQA 0.42 -> 0.61 (higher is
    better)"``; metrics that could not be computed are left out (``""`` when none could)."""
    names = {"niqe": "NIQE", "clipiqa": "CLIP-IQA"}
    parts = [f"{names[k]} {v['input']:.2f} -> {v['output']:.2f} ({v['better']} is better)"
             for k, v in quality.items() if v["input"] is not None and v["output"] is not None]
    return ", ".join(parts)
