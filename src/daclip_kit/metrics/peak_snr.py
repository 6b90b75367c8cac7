"""Peak signal-to-noise ratio with the official DA-CLIP test protocol."""

from __future__ import annotations

import torch

from .prepare import prepare_pair


def psnr(pred: torch.Tensor, ref: torch.Tensor, *, crop_border: int = 4, y_channel: bool = False,
         quantize: bool = True) -> torch.Tensor:
    """Per-image PSNR in dB, ``20 log10(255 / sqrt(MSE))`` over all kept pixels and channels.

    Defaults follow ``config/daclip-sde/test.py``: both images are rounded to uint8 levels, 4 pixels
    are cropped from every side, and the three RGB channels are compared.

    Args:
        pred: ``(B, 3, H, W)`` restored images, float RGB in [0, 1].
        ref: ``(B, 3, H, W)`` ground truth, float RGB in [0, 1].
        crop_border: pixels cropped from each side before comparing.
        y_channel: compare BT.601 luma instead of RGB (:func:`~daclip_kit.metrics.color.rgb_to_y`).
        quantize: round to uint8 levels first.

    Returns:
        ``(B,)`` float64 PSNR values; ``inf`` for identical images.

    Example:
        >>> import torch
        >>> from daclip_kit.metrics import psnr
        >>> gt = torch.full((1, 3, 32, 32), 100 / 255)
        >>> round(float(psnr(gt + 10 / 255, gt)[0]), 2)  # uniform error of 10 levels
        28.13
    """
    a, b = prepare_pair(pred, ref, crop_border=crop_border, y_channel=y_channel, quantize=quantize)
    mse = (a - b).pow(2).flatten(1).mean(dim=1)
    return 20.0 * torch.log10(255.0 / mse.sqrt())


def psnr_y(pred: torch.Tensor, ref: torch.Tensor, *, crop_border: int = 4,
           quantize: bool = True) -> torch.Tensor:
    """:func:`psnr` on the BT.601 luma channel (the official script's ``psnr_y``); ``(B,)`` float64."""
    return psnr(pred, ref, crop_border=crop_border, y_channel=True, quantize=quantize)
