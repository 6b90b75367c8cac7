"""Shrink images to a size limit."""

from __future__ import annotations

import torch
import torch.nn.functional as F


def fit_longest(image: torch.Tensor, longest: int) -> torch.Tensor:
    """``image`` ``(B, C, H, W)`` scaled down (area averaging) so its longer side is at most
    ``longest`` pixels, aspect ratio kept; returned as it is when it already fits."""
    h, w = image.shape[-2:]
    if max(h, w) <= longest:
        return image
    scale = longest / max(h, w)
    return F.interpolate(image, size=(max(1, round(h * scale)), max(1, round(w * scale))), mode="area")
