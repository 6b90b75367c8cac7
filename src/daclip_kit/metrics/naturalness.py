"""NIQE, the "completely blind" natural image quality evaluator (Mittal, Soundararajan and Bovik, 2013).

A no-reference metric: the distance between a multivariate Gaussian fitted to local statistics of
the image and the one fitted once to a corpus of pristine photos (shipped with the package, see
``data/NOTICE.txt``). Lower is better. It follows MATLAB's ``niqe`` as BasicSR re-implements it:

1. luma of the uint8 RGB image (BT.601, MATLAB ``rgb2ycbcr``) on 0..255, border crop, rounded;
2. cropped to whole 96x96 blocks;
3. at two scales (full, then MATLAB bicubic ``imresize`` by 0.5 with antialiasing): MSCN coefficients
   ``(I - mu) / (sigma + 1)`` with a 7x7 Gaussian window (replicated borders), and per block 18
   features - a generalized Gaussian fit of the coefficients (shape, scale) and asymmetric
   generalized Gaussian fits of the products of horizontal, vertical and both diagonal neighbours
   (shape, mean, left and right scales);
4. ``sqrt((mu_p - mu_d) ((S_p + S_d) / 2)^+ (mu_p - mu_d)^T)`` between the pristine model
   ``(mu_p, S_p)`` and the mean and covariance of the image's 36-feature blocks.

The image work is done in float32, rounded where BasicSR rounds: each shape parameter is chosen
from a grid of step 0.001, so a last-bit difference can move it one step, and with few blocks that
moves NIQE by up to about 2e-3 (float64 arithmetic differs from BasicSR by up to 0.1 on a small
JPEG-compressed crop). BasicSR's float32 resize runs on the BLAS's ``sgemv``, whose kernels differ
between CPUs in the last bits, so BasicSR itself gives values that differ by that much from one
machine to another; on one machine ours matches it to about 1e-13. The parity test holds ours to
BasicSR's golden values within 1e-3 (5e-3 for a 4-block JPEG crop).
"""

from __future__ import annotations

import math
from functools import cache
from importlib import resources

import numpy as np
import torch

from ..core.checks import check_image
from ..errors import ShapeError

#: Block size of the features (the NIQE model's).
BLOCK = 96
#: BT.601 limited-range luma weights for R, G, B on 0..255 (MATLAB ``rgb2ycbcr``), and the offset.
_Y_WEIGHTS = (65.481, 128.553, 24.966)
_Y_OFFSET = 16.0
#: The neighbour offsets (rows, columns) whose products are fitted: horizontal, vertical, two diagonals.
_SHIFTS = ((0, 1), (1, 0), (1, 1), (1, -1))


@cache
def pristine_model() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(mean (36,), covariance (36, 36), 7x7 Gaussian window)`` of the pristine NIQE model."""
    with resources.files("daclip_kit.metrics").joinpath("data/niqe_pris_params.npz").open("rb") as fh:
        data = np.load(fh)
        return (np.asarray(data["mu_pris_param"], np.float64).reshape(-1),
                np.asarray(data["cov_pris_param"], np.float64),
                np.asarray(data["gaussian_window"], np.float64))


@cache
def _shape_table() -> tuple[np.ndarray, np.ndarray]:
    """Candidate shapes 0.2, 0.201, ..., 10 and ``Gamma(2/a)^2 / (Gamma(1/a) Gamma(3/a))`` for each."""
    shapes = np.arange(0.2, 10.001, 0.001)
    ratio = np.array([math.gamma(2.0 / a) ** 2 / (math.gamma(1.0 / a) * math.gamma(3.0 / a)) for a in shapes])
    return shapes, ratio


def _aggd(samples: np.ndarray) -> tuple[float, float, float]:
    """Moment-matching AGGD fit of the float32 ``samples``: ``(shape, left scale, right scale)``.

    Without negative (or positive) samples the scales are NaN, and the block is left out of the covariance.
    """
    samples = samples.reshape(-1)
    with np.errstate(divide="ignore", invalid="ignore"):
        negative, positive = samples[samples < 0], samples[samples > 0]
        left = np.sqrt(np.mean(negative * negative)) if negative.size else np.float32(np.nan)
        right = np.sqrt(np.mean(positive * positive)) if positive.size else np.float32(np.nan)
        ratio = left / right
        rhat = np.mean(np.abs(samples)) ** 2 / np.mean(samples * samples)
        rnorm = rhat * (ratio ** 3 + 1) * (ratio + 1) / (ratio ** 2 + 1) ** 2
    shapes, table = _shape_table()
    alpha = float(shapes[np.argmin((table - rnorm) ** 2)])  # a NaN ratio picks the first candidate
    spread = math.sqrt(math.gamma(1.0 / alpha) / math.gamma(3.0 / alpha))
    return alpha, float(left) * spread, float(right) * spread


def _block_features(mscn: np.ndarray, size: int) -> np.ndarray:
    """The 18 features of every ``size x size`` block of an MSCN map ``(H, W)``: ``(blocks, 18)``."""
    rows: list[list[float]] = []
    for top in range(0, mscn.shape[0] - size + 1, size):
        for left in range(0, mscn.shape[1] - size + 1, size):
            block = mscn[top:top + size, left:left + size]
            alpha, b_left, b_right = _aggd(block)
            row = [alpha, (b_left + b_right) / 2]
            for shift in _SHIFTS:
                # neighbour products, wrapping around inside the block as the MATLAB code's circshift
                alpha, b_left, b_right = _aggd(block * np.roll(block, shift, axis=(0, 1)))
                mean = (b_right - b_left) * math.gamma(2.0 / alpha) / math.gamma(1.0 / alpha)
                row += [alpha, mean, b_left, b_right]
            rows.append(row)
    return np.asarray(rows, np.float64)


def _filter_replicate(image: np.ndarray, window: np.ndarray) -> np.ndarray:
    """``image`` filtered by the symmetric ``window`` with replicated borders (``imfilter(..., 'replicate')``),
    summed in float64 and returned in ``image``'s dtype."""
    kh, kw = window.shape
    padded = np.pad(image.astype(np.float64), ((kh // 2, kh // 2), (kw // 2, kw // 2)), mode="edge")
    h, w = image.shape
    out = np.zeros((h, w))
    for i in range(kh):
        for j in range(kw):
            out += window[i, j] * padded[i:i + h, j:j + w]
    return out.astype(image.dtype)


def _mscn(image: np.ndarray, window: np.ndarray) -> np.ndarray:
    """Mean-subtracted contrast-normalised coefficients ``(I - mu) / (sigma + 1)`` of a float32 image."""
    mu = _filter_replicate(image, window)
    sigma = np.sqrt(np.abs(_filter_replicate(image * image, window) - mu * mu))
    return (image - mu) / (sigma + np.float32(1))


def _cubic(x: torch.Tensor) -> torch.Tensor:
    """Keys' cubic convolution kernel with a = -0.5, MATLAB ``imresize``'s ``'cubic'``."""
    ax = x.abs()
    near = (1.5 * ax ** 3 - 2.5 * ax ** 2 + 1) * (ax <= 1).to(ax.dtype)
    far = (-0.5 * ax ** 3 + 2.5 * ax ** 2 - 4 * ax + 2) * ((ax > 1) & (ax <= 2)).to(ax.dtype)
    return near + far


def _resize_taps(length: int, scale: float) -> tuple[torch.Tensor, list[int], int, int]:
    """MATLAB's antialiased bicubic ``imresize`` along one axis, in float32 as the reference implementations.

    Returns:
        ``(weights (out, taps), first tap of each output in the padded axis, pad before, pad after)``:
        output ``i`` is the dot product of ``weights[i]`` with ``taps`` consecutive values of the axis
        mirrored (``symmetric``) by the two pads.
    """
    out = math.ceil(length * scale)
    width = 4.0 / scale if scale < 1 else 4.0
    centre = torch.arange(1, out + 1, dtype=torch.float32) / scale + 0.5 * (1 - 1 / scale)  # 1-based
    first = torch.floor(centre - width / 2)
    taps = first[:, None] + torch.arange(math.ceil(width) + 2, dtype=torch.float32)[None, :]
    weights = scale * _cubic((centre[:, None] - taps) * scale) if scale < 1 else _cubic(centre[:, None] - taps)
    weights = weights / weights.sum(1, keepdim=True)
    if (weights[:, 0] == 0).any():  # a leading or trailing tap that no output uses
        weights, taps = weights[:, 1:], taps[:, 1:]
    if (weights[:, -1] == 0).any():
        weights, taps = weights[:, :-1], taps[:, :-1]
    before, after = max(0, 1 - int(taps.min())), max(0, int(taps.max()) - length)
    starts = [int(t) - 1 + before for t in taps[:, 0]]
    return weights.contiguous(), starts, before, after


def _pad_mirror(x: torch.Tensor, before: int, after: int, dim: int) -> torch.Tensor:
    """``x`` extended along ``dim`` by its mirror image (edge values repeated), contiguous."""
    length = x.shape[dim]
    parts = [x.narrow(dim, 0, before).flip(dim), x, x.narrow(dim, length - after, after).flip(dim)]
    return torch.cat(parts, dim=dim).contiguous()


def imresize_half(image: np.ndarray) -> np.ndarray:
    """MATLAB ``imresize(image, 0.5)`` (bicubic, antialiased) of a 2-D array, in float32, without rounding.

    Columns are resized first, then rows; every output value is one float32 dot product of its
    taps, taken from the mirrored image as strided views (so the summation matches the reference's).
    """
    x = torch.from_numpy(np.ascontiguousarray(image, np.float32))
    weights, starts, before, after = _resize_taps(x.shape[0], 0.5)
    padded, k = _pad_mirror(x, before, after, 0), weights.shape[1]
    x = torch.stack([padded[s:s + k].t().mv(w) for s, w in zip(starts, weights, strict=True)])
    weights, starts, before, after = _resize_taps(x.shape[1], 0.5)
    padded, k = _pad_mirror(x, before, after, 1), weights.shape[1]
    x = torch.stack([padded[:, s:s + k].mv(w) for s, w in zip(starts, weights, strict=True)], dim=1)
    return x.numpy()


def niqe_luma(luma: np.ndarray) -> float:
    """NIQE of one luma image ``(H, W)`` on 0..255 (already cropped and rounded as wanted).

    Raises:
        ShapeError: the image holds fewer than two 96x96 blocks.
    """
    mu_p, cov_p, window = pristine_model()
    rows, cols = luma.shape[0] // BLOCK, luma.shape[1] // BLOCK
    if rows * cols < 2:
        raise ShapeError(f"NIQE needs at least two {BLOCK}x{BLOCK} blocks (an image of 96x192 or more after the "
                         f"border crop); got {luma.shape[0]}x{luma.shape[1]}.")
    image = np.asarray(luma, np.float32)[:rows * BLOCK, :cols * BLOCK]
    half = imresize_half(image / np.float32(255)) * np.float32(255)
    features = [_block_features(_mscn(image, window), BLOCK), _block_features(_mscn(half, window), BLOCK // 2)]
    feats = np.concatenate(features, axis=1)
    mu_d = np.nanmean(feats, axis=0)
    complete = feats[~np.isnan(feats).any(axis=1)]
    if len(complete) < 2:
        return math.nan
    cov_d = np.cov(complete, rowvar=False)
    diff = mu_p - mu_d
    return float(np.sqrt(diff @ np.linalg.pinv((cov_p + cov_d) / 2) @ diff))


def rgb_to_luma255(images: torch.Tensor, *, quantize: bool = True) -> np.ndarray:
    """BT.601 luma ``(B, H, W)`` on 0..255 (float32, unrounded) of RGB ``(B, 3, H, W)`` in [0, 1].

    With ``quantize`` the RGB is rounded to uint8 levels first. The channels are scaled to [0, 1] in
    float32, weighted in float64 and the result stored in float32, as BasicSR's ``bgr2ycbcr`` does.
    """
    rgb = images.detach().to(torch.float64).clamp(0, 1).cpu().numpy() * 255.0
    if quantize:
        rgb = np.round(rgb)
    unit = (rgb.astype(np.float32) / np.float32(255)).astype(np.float64)
    r, g, b = unit[:, 0], unit[:, 1], unit[:, 2]
    y = b * _Y_WEIGHTS[2] + g * _Y_WEIGHTS[1] + r * _Y_WEIGHTS[0] + _Y_OFFSET
    return (y / 255.0).astype(np.float32) * np.float32(255)


def niqe(images: torch.Tensor, *, crop_border: int = 0, quantize: bool = True) -> torch.Tensor:
    """NIQE of each image (lower is better); no reference image is needed.

    Args:
        images: ``(B, 3, H, W)`` float RGB in [0, 1].
        crop_border: pixels removed from every side first (BasicSR's ``crop_border``).
        quantize: round the RGB to uint8 levels first (the images were saved as 8-bit files).
            The luma is rounded either way, as MATLAB's ``niqe`` sees a uint8 image.

    Returns:
        ``(B,)`` float64; NaN for an image whose blocks are too flat to fit (no negative or positive
        coefficients in all but one block).

    Raises:
        ShapeError: a bad batch, or fewer than two 96x96 blocks are left after the crop.
    """
    check_image(images, "images")
    if crop_border < 0:
        raise ShapeError(f"crop_border must be >= 0, got {crop_border}.")
    luma = rgb_to_luma255(images, quantize=quantize)
    if crop_border:
        luma = luma[:, crop_border:-crop_border, crop_border:-crop_border]
    return torch.tensor([niqe_luma(np.round(y)) for y in luma], dtype=torch.float64)
