"""Image-quality metrics with the official DA-CLIP evaluation protocol.

Paired metrics take ``pred`` and ``ref`` as ``(B, 3, H, W)`` float RGB in [0, 1] and return ``(B,)``
float64 per-image values; set metrics (FID) compare two sets of images.

* :func:`psnr`, :func:`ssim` - uint8 rounding, 4-pixel border crop, RGB by default
  (``y_channel=True`` for BT.601 luma), SSIM with an 11x11 Gaussian window (sigma 1.5).
* :func:`lpips` - LPIPS v0.1 with the AlexNet trunk (the ``lpips`` package), inputs mapped to [-1, 1].
* :func:`fid` - Frechet Inception Distance as pytorch-fid computes it (Inception pool3, 2048-d).

No-reference metrics take only ``pred``:

* :func:`niqe` - NIQE as MATLAB's ``niqe`` / BasicSR (BT.601 luma, 96x96 blocks, the pristine model); lower is better.
* :func:`clipiqa` - zero-shot CLIP-IQA with a DA-CLIP's plain CLIP towers, P("Good photo."); higher is better.

Nothing heavy is imported until a function is used.
"""

from __future__ import annotations

from .._lazy import lazy_exports

_LAZY = {
    "psnr": "daclip_kit.metrics.peak_snr",
    "psnr_y": "daclip_kit.metrics.peak_snr",
    "ssim": "daclip_kit.metrics.structural",
    "ssim_y": "daclip_kit.metrics.structural",
    "rgb_to_y": "daclip_kit.metrics.color",
    "lpips": "daclip_kit.metrics.perceptual",
    "load_lpips": "daclip_kit.metrics.perceptual",
    "fid": "daclip_kit.metrics.fid_score",
    "load_fid_inception": "daclip_kit.metrics.inception",
    "frechet_distance": "daclip_kit.metrics.frechet",
    "FeatureStats": "daclip_kit.metrics.frechet",
    "niqe": "daclip_kit.metrics.naturalness",
    "clipiqa": "daclip_kit.metrics.clip_quality",
    "load_clipiqa_embedder": "daclip_kit.metrics.clip_quality",
}

__all__ = list(_LAZY)

__getattr__ = lazy_exports(__name__, _LAZY, globals())
