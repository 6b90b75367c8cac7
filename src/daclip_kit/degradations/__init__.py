"""Synthetic degradation generators for the ten DA-CLIP degradation types, and their composition.

Build one by name with :func:`daclip_kit.create_degradation` (``"noisy"``, ``"hazy"``, ...); each
is a :class:`~daclip_kit.degradations.base.Degradation` called as ``deg(images, generator)`` on
``(B,3,H,W)`` float images in [0, 1]. This package imports torch only when one of its names is
used, so the plugin module can import it cheaply.
"""

from __future__ import annotations

from .._lazy import lazy_exports

_LAZY = {
    "Degradation": "base",
    "MotionBlur": "blur",
    "Haze": "haze",
    "JPEGCompression": "jpeg",
    "LowLight": "lowlight",
    "GaussianNoise": "noise",
    "Raindrops": "raindrop",
    "RainStreaks": "rain",
    "CastShadow": "shadow",
    "Snow": "snow",
    "InpaintingMask": "inpainting",
    "compose": "composition",
    "RandomComposition": "composition",
    "PHYSICAL_ORDER": "composition",
}

__all__ = list(_LAZY)

__getattr__ = lazy_exports(__name__, _LAZY, globals())
