"""Shared preprocessing of the full-reference metrics: rounding, colour space, border crop."""

from __future__ import annotations

import torch

from ..core.checks import check_image
from ..errors import ShapeError
from .color import rgb_to_y


def to_uint8_levels(images: torch.Tensor) -> torch.Tensor:
    """Clamp to [0, 1], scale by 255 and round, as the official ``tensor2img``; float64 result."""
    return images.detach().to(torch.float64).clamp(0, 1).mul(255.0).round()


def prepare_pair(pred: torch.Tensor, ref: torch.Tensor, *, crop_border: int, y_channel: bool,
                 quantize: bool) -> tuple[torch.Tensor, torch.Tensor]:
    """Bring a prediction and its reference to the 0..255 float64 scale the metrics work on.

    Args:
        pred, ref: ``(B, 3, H, W)`` float RGB in [0, 1], same shape.
        crop_border: pixels removed from every side before comparing (0 keeps everything).
        y_channel: compare the BT.601 luma (unrounded, as the official script) instead of RGB.
        quantize: round to uint8 levels first (the official protocol); otherwise use the raw floats.

    Returns:
        two ``(B, C, H - 2*crop, W - 2*crop)`` float64 tensors on the 0..255 scale, ``C`` = 3 or 1.
    """
    check_image(pred, "pred")
    check_image(ref, "ref")
    if pred.shape != ref.shape:
        raise ShapeError(
            f"pred and ref must have the same shape, got {tuple(pred.shape)} and {tuple(ref.shape)}."
        )
    if crop_border < 0:
        raise ShapeError(f"crop_border must be >= 0, got {crop_border}.")
    h, w = pred.shape[-2:]
    if 2 * crop_border >= min(h, w):
        raise ShapeError(
            f"crop_border={crop_border} removes the whole {h}x{w} image; use a smaller crop."
        )
    ref = ref.to(pred.device)
    if quantize:
        a, b = to_uint8_levels(pred), to_uint8_levels(ref.to(pred.device))
    else:
        a, b = pred.detach().to(torch.float64) * 255.0, ref.detach().to(torch.float64) * 255.0
    if y_channel:
        a, b = rgb_to_y(a / 255.0) * 255.0, rgb_to_y(b / 255.0) * 255.0
    if crop_border:
        c = crop_border
        a, b = a[..., c:-c, c:-c], b[..., c:-c, c:-c]
    return a, b
