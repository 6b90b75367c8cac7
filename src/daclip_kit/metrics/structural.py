"""Structural similarity, MATLAB-style, as in the official DA-CLIP test script."""

from __future__ import annotations

import functools

import torch
import torch.nn.functional as F

from ..errors import ShapeError
from .prepare import prepare_pair

WINDOW_SIZE = 11
WINDOW_SIGMA = 1.5
_C1 = (0.01 * 255) ** 2
_C2 = (0.03 * 255) ** 2


@functools.cache
def gaussian_window(size: int = WINDOW_SIZE, sigma: float = WINDOW_SIGMA) -> torch.Tensor:
    """``(1, 1, size, size)`` float64 Gaussian window summing to 1."""
    x = torch.arange(size, dtype=torch.float64) - (size - 1) / 2
    g = torch.exp(-(x**2) / (2 * sigma**2))
    g = g / g.sum()
    return torch.outer(g, g).view(1, 1, size, size)


def ssim_map(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """SSIM map of ``(N, 1, H, W)`` float64 images on the 0..255 scale ("valid" region only).

    Returns ``(N, 1, H - 10, W - 10)``: local statistics use an 11x11 Gaussian window (sigma 1.5)
    without padding, and C1 = (0.01*255)^2, C2 = (0.03*255)^2.
    """
    if min(a.shape[-2:]) < WINDOW_SIZE:
        raise ShapeError(
            f"SSIM needs images of at least {WINDOW_SIZE}x{WINDOW_SIZE} pixels after the border "
            f"crop, got {tuple(a.shape[-2:])}."
        )
    win = gaussian_window().to(a.device)
    mu_a, mu_b = F.conv2d(a, win), F.conv2d(b, win)
    var_a = F.conv2d(a * a, win) - mu_a**2
    var_b = F.conv2d(b * b, win) - mu_b**2
    cov = F.conv2d(a * b, win) - mu_a * mu_b
    num = (2 * mu_a * mu_b + _C1) * (2 * cov + _C2)
    den = (mu_a**2 + mu_b**2 + _C1) * (var_a + var_b + _C2)
    return num / den


def ssim(pred: torch.Tensor, ref: torch.Tensor, *, crop_border: int = 4, y_channel: bool = False,
         quantize: bool = True) -> torch.Tensor:
    """Per-image SSIM, the mean of the per-channel SSIM maps.

    Defaults follow ``config/daclip-sde/test.py``: uint8 rounding, a 4-pixel border crop, RGB,
    11x11 Gaussian window with sigma 1.5 and the "valid" region.

    Args:
        pred: ``(B, 3, H, W)`` restored images, float RGB in [0, 1].
        ref: ``(B, 3, H, W)`` ground truth, float RGB in [0, 1].
        crop_border: pixels cropped from each side before comparing.
        y_channel: compare BT.601 luma instead of RGB.
        quantize: round to uint8 levels first.

    Returns:
        ``(B,)`` float64 SSIM values in [-1, 1]; 1 for identical images.

    Example:
        >>> import torch
        >>> from daclip_kit.metrics import ssim
        >>> x = torch.rand(2, 3, 32, 32, generator=torch.Generator().manual_seed(0))
        >>> ssim(x, x).tolist()
        [1.0, 1.0]
    """
    a, b = prepare_pair(pred, ref, crop_border=crop_border, y_channel=y_channel, quantize=quantize)
    n, c, h, w = a.shape
    per_pixel = ssim_map(a.reshape(n * c, 1, h, w), b.reshape(n * c, 1, h, w))
    return per_pixel.reshape(n, -1).mean(dim=1)


def ssim_y(pred: torch.Tensor, ref: torch.Tensor, *, crop_border: int = 4,
           quantize: bool = True) -> torch.Tensor:
    """:func:`ssim` on the BT.601 luma channel (the official script's ``ssim_y``); ``(B,)`` float64."""
    return ssim(pred, ref, crop_border=crop_border, y_channel=True, quantize=quantize)
