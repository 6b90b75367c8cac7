"""Training-time image transforms on tensors, with an explicit ``torch.Generator``.

* :func:`random_resized_crop`: open_clip's train transform ``RandomResizedCrop(S, scale=(0.9, 1.0),
  bicubic)`` followed by the CLIP normalisation (FACTS §1.7).
* :func:`random_square_crop`: the official DA-CLIP ``--crop`` option.
* :func:`crop_patch` / :func:`flip_transpose`: the IR-SDE patch sampling (FACTS §2.7); the flips
  are :func:`daclip_kit.data.paired.flip_transpose`, shared with the paired data sets.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from ..data.paired import flip_transpose
from ..embedders.preprocess import OPENAI_MEAN, OPENAI_STD

__all__ = ["crop_patch", "flip_transpose", "random_resized_crop", "random_square_crop", "resized_crop_box"]


def _uniform(g: torch.Generator, low: float, high: float) -> float:
    return low + (high - low) * float(torch.rand((), generator=g))


def _randint(g: torch.Generator, low: int, high: int) -> int:
    """Uniform integer in ``[low, high]``."""
    return int(torch.randint(low, high + 1, (), generator=g))


def resized_crop_box(height: int, width: int, g: torch.Generator, *, scale: tuple[float, float] = (0.9, 1.0),
                     ratio: tuple[float, float] = (3 / 4, 4 / 3)) -> tuple[int, int, int, int]:
    """``(top, left, h, w)`` of a random crop covering ``scale`` of the area with aspect in ``ratio``.

    Up to ten draws; if none fits, the largest centred crop with the aspect clamped to ``ratio``.
    """
    area = height * width
    log_lo, log_hi = math.log(ratio[0]), math.log(ratio[1])
    for _ in range(10):
        target = area * _uniform(g, *scale)
        aspect = math.exp(_uniform(g, log_lo, log_hi))
        w = round(math.sqrt(target * aspect))
        h = round(math.sqrt(target / aspect))
        if 0 < w <= width and 0 < h <= height:
            return _randint(g, 0, height - h), _randint(g, 0, width - w), h, w
    aspect = width / height
    if aspect < ratio[0]:
        w, h = width, round(width / ratio[0])
    elif aspect > ratio[1]:
        h, w = height, round(height * ratio[1])
    else:
        h, w = height, width
    return (height - h) // 2, (width - w) // 2, h, w


def random_resized_crop(image: torch.Tensor, size: int, g: torch.Generator, *,
                        scale: tuple[float, float] = (0.9, 1.0), normalize: bool = True) -> torch.Tensor:
    """Random crop of ``image`` resized to ``size x size`` (bicubic, antialiased), CLIP-normalised.

    Args:
        image: ``(3, H, W)`` float RGB in [0, 1].
        size: output side (the tower's image size, 224 for the released models).
        g: the generator that draws the crop.
        scale: area fraction range of the crop.
        normalize: subtract the OpenAI mean and divide by the std.

    Returns:
        ``(3, size, size)`` float pixels.
    """
    top, left, h, w = resized_crop_box(image.shape[-2], image.shape[-1], g, scale=scale)
    x = image[None, :, top:top + h, left:left + w]
    x = F.interpolate(x, size=(size, size), mode="bicubic", align_corners=False, antialias=True).clamp(0, 1)[0]
    if normalize:
        mean = torch.tensor(OPENAI_MEAN, dtype=x.dtype).view(3, 1, 1)
        std = torch.tensor(OPENAI_STD, dtype=x.dtype).view(3, 1, 1)
        x = (x - mean) / std
    return x


def random_square_crop(image: torch.Tensor, g: torch.Generator, *, min_side: int = 64,
                       p: float = 0.8) -> torch.Tensor:
    """With probability ``p`` a random square of side in ``[min_side, min(H, W)]`` of ``(3, H, W)``
    ``image``, else the image itself (DA-CLIP's ``--crop``)."""
    h, w = image.shape[-2:]
    if float(torch.rand((), generator=g)) >= p or min(h, w) <= min_side:
        return image
    side = _randint(g, min_side, min(h, w))
    top, left = _randint(g, 0, h - side), _randint(g, 0, w - side)
    return image[:, top:top + side, left:left + side]


def crop_patch(lq: torch.Tensor, gt: torch.Tensor, size: int, g: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """The same random ``size x size`` window of ``(3, H, W)`` ``lq`` and ``gt``."""
    h, w = lq.shape[-2:]
    top, left = _randint(g, 0, h - size), _randint(g, 0, w - size)
    return lq[:, top:top + size, left:left + size], gt[:, top:top + size, left:left + size]
