"""``rainy``: layers of oriented rain streaks (Rain100H-like heavy rain) with a light rain veil."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from .base import Degradation, Draw, gaussian_blur, kernel_limit, odd


@dataclass(frozen=True, kw_only=True)
class RainConfig:
    """Parameters of :class:`RainStreaks`.

    Attributes:
        layers: number of streak layers (each with its own density, length and direction).
        density: fraction of pixels seeding a streak, per layer.
        length: streak length as a fraction of the shorter image side.
        angle: fall direction in degrees from vertical, shared by the layers.
        spread: extra per-layer deviation of the direction, in degrees.
        width: streak thickness (Gaussian sigma in pixels).
        intensity: brightness of a streak (screen-blended over the image).
        veil: strength of the bright rain accumulation veil.
    """

    layers: tuple[int, int] = (1, 3)
    density: tuple[float, float] = (0.002, 0.008)
    length: tuple[float, float] = (0.04, 0.12)
    angle: tuple[float, float] = (-25.0, 25.0)
    spread: float = 6.0
    width: tuple[float, float] = (0.4, 1.0)
    intensity: tuple[float, float] = (0.4, 0.8)
    veil: tuple[float, float] = (0.0, 0.1)


def streak_layer(seeds: torch.Tensor, length: float, angle: float, width: float) -> torch.Tensor:
    """Smear ``(1,1,H,W)`` seed points into streaks of ``length`` pixels at ``angle`` degrees from
    vertical, peak value about the seed value."""
    import kornia

    limit = kernel_limit(*seeds.shape[-2:])
    k = max(3, min(odd(length), limit))
    direction = torch.full((1,), 90.0 + angle, device=seeds.device, dtype=seeds.dtype)
    streaks = kornia.filters.motion_blur(seeds, k, direction, 0.0, border_type="constant") * k
    return gaussian_blur(streaks, width).clamp(0, 1)


class RainStreaks(Degradation):
    """Screen-blend bright, motion-smeared streaks over each image (kornia ``motion_blur``)."""

    name = "rainy"
    config_class = RainConfig

    def apply_one(self, image: torch.Tensor, draw: Draw) -> torch.Tensor:
        cfg = self.config
        h, w = image.shape[-2:]
        short = min(h, w)
        base = draw.range(cfg.angle)
        out = image
        for _ in range(draw.integer(*cfg.layers)):
            density = draw.range(cfg.density)
            strength = 0.6 + 0.4 * draw.rand(1, 1, h, w, like=image)
            seeds = (draw.rand(1, 1, h, w, like=image) < density).to(image.dtype) * strength
            angle = base + draw.uniform(-cfg.spread, cfg.spread)
            layer = streak_layer(seeds, draw.range(cfg.length) * short, angle, draw.range(cfg.width))
            out = 1 - (1 - out) * (1 - draw.range(cfg.intensity) * layer)
        veil = draw.range(cfg.veil)
        return out * (1 - veil) + 0.85 * veil
