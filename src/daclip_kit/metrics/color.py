"""Colour conversion used by the Y-channel metrics."""

from __future__ import annotations

import torch

from ..core.checks import check_image

#: BT.601 limited-range ("MATLAB rgb2ycbcr") luma weights for RGB in [0, 1], output on 0..255.
_Y_WEIGHTS = (65.481, 128.553, 24.966)
_Y_OFFSET = 16.0


def rgb_to_y(images: torch.Tensor) -> torch.Tensor:
    """Luma of RGB images, BT.601 limited range, as in the official test script.

    ``Y = (65.481 R + 128.553 G + 24.966 B + 16) / 255`` for R, G, B in [0, 1], so black maps to
    16/255 and white to 235/255. Computed in the input dtype without rounding.

    Args:
        images: ``(B, 3, H, W)`` float RGB in [0, 1].

    Returns:
        ``(B, 1, H, W)`` luma in [16/255, 235/255].
    """
    check_image(images, "images")
    w = torch.tensor(_Y_WEIGHTS, dtype=images.dtype, device=images.device).view(1, 3, 1, 1)
    return ((images * w).sum(dim=1, keepdim=True) + _Y_OFFSET) / 255.0
