"""Pad images to a spatial multiple and crop them back."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
import torch.nn.functional as F


def pad_to_multiple(x: torch.Tensor, multiple: int, mode: str = "reflect") -> torch.Tensor:
    """Pad ``x`` ``(..., H, W)`` on the bottom and right so H and W are multiples of ``multiple``.

    ``reflect`` (the official choice) needs the pad to be smaller than the side; tiny images whose
    pad is larger fall back to ``replicate``. Returns ``x`` itself when no padding is needed.

    Example:
        >>> pad_to_multiple(torch.zeros(1, 3, 20, 28), 16).shape
        torch.Size([1, 3, 32, 32])
    """
    h, w = x.shape[-2:]
    pad_h, pad_w = -h % multiple, -w % multiple
    if not (pad_h or pad_w):
        return x
    if mode == "reflect" and (pad_h >= h or pad_w >= w):
        mode = "replicate"
    return F.pad(x, (0, pad_w, 0, pad_h), mode=mode)


def crop_to(x: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """The top-left ``height x width`` window of ``x`` ``(..., H, W)`` (undoes :func:`pad_to_multiple`)."""
    return x[..., :height, :width]


def padded_call(fn: Callable[..., torch.Tensor], images: Sequence[torch.Tensor], divisor: int,
                mode: str = "reflect") -> torch.Tensor:
    """``fn(*padded_images)`` cropped back to the size of ``images[0]``: the one padding rule.

    Every image ``(B, C, H, W)`` is padded on the bottom and right to a multiple of ``divisor``
    (:func:`pad_to_multiple` with ``mode``: ``"reflect"``, or ``"constant"`` for zeros); the output
    ``(B, C', H', W')`` is cropped to the top-left ``H x W`` window. Networks never pad themselves;
    pipelines and :func:`daclip_kit.sample` call them through this function.

    Example:
        >>> padded_call(lambda x: x * 2, (torch.ones(1, 3, 20, 28),), 16).shape
        torch.Size([1, 3, 20, 28])
    """
    h, w = images[0].shape[-2:]
    divisor = max(1, int(divisor))
    if h % divisor == 0 and w % divisor == 0:
        return fn(*images)
    return crop_to(fn(*(pad_to_multiple(x, divisor, mode) for x in images)), h, w)
