"""CLIP image preprocessing on tensors: ``(B,3,H,W)`` in [0,1] -> normalised ``(B,3,S,S)``.

Follows the official eval transform (open_clip ``image_transform``: PIL bicubic ``Resize(S)`` of
the shorter side, ``CenterCrop(S)``, ``ToTensor``, ``Normalize`` with the OpenAI mean/std) with
tensor operations: antialiased bicubic interpolation, clamped to [0, 1] as PIL's uint8 output is.
With ``quantize=True`` it also emulates the restoration code's ``clip_transform``, which turns the
float image into uint8 by truncation before PIL, and PIL's uint8 rounding after the resize; the
result then matches the PIL path to within about one grey level.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F

from ..core.checks import check_image

OPENAI_MEAN: tuple[float, float, float] = (0.48145466, 0.4578275, 0.40821073)
OPENAI_STD: tuple[float, float, float] = (0.26862954, 0.26130258, 0.27577711)


def resized_size(height: int, width: int, size: int) -> tuple[int, int]:
    """Output ``(h, w)`` of a shorter-side resize to ``size`` (torchvision ``Resize(int)`` rule:
    the longer side is truncated, not rounded)."""
    if height <= width:
        return size, int(size * width / height)
    return int(size * height / width), size


def clip_preprocess(images: torch.Tensor, size: int = 224, *,
                    mean: Sequence[float] = OPENAI_MEAN, std: Sequence[float] = OPENAI_STD,
                    quantize: bool = False) -> torch.Tensor:
    """Resize the shorter side to ``size`` (bicubic), centre-crop ``size``, normalise.

    Args:
        images: ``(B, 3, H, W)`` float RGB in [0, 1], any ``H``, ``W``.
        size: output side ``S`` (the tower's image size, 224 for the released models).
        mean, std: per-channel normalisation (OpenAI CLIP statistics by default).
        quantize: emulate the official uint8 truncation before and rounding after the resize.

    Returns:
        ``(B, 3, S, S)`` normalised pixels, same dtype and device as ``images``.
    """
    check_image(images)
    x = images.clamp(0, 1)
    if quantize:
        x = torch.floor(x * 255) / 255
    h, w = x.shape[-2:]
    new_h, new_w = resized_size(h, w, size)
    if (new_h, new_w) != (h, w):
        x = F.interpolate(x, size=(new_h, new_w), mode="bicubic", align_corners=False, antialias=True)
        x = x.clamp(0, 1)
        if quantize:
            x = torch.round(x * 255) / 255
    top = int(round((new_h - size) / 2.0))
    left = int(round((new_w - size) / 2.0))
    x = x[..., top:top + size, left:left + size]
    m = torch.tensor(mean, dtype=x.dtype, device=x.device).view(1, 3, 1, 1)
    s = torch.tensor(std, dtype=x.dtype, device=x.device).view(1, 3, 1, 1)
    return (x - m) / s
