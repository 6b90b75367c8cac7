"""``snowy``: falling snowflakes in depth layers (small far flakes to large near ones) with a veil."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from .base import Degradation, Draw, gaussian_blur, kernel_limit, odd


@dataclass(frozen=True, kw_only=True)
class SnowConfig:
    """Parameters of :class:`Snow`.

    Attributes:
        layers: number of depth layers; layer ``j`` has flakes ``j+1`` times larger and
            ``(j+1)²`` times sparser.
        density: fraction of pixels seeding a flake in the nearest-to-camera-first layer.
        flake_size: flake radius (Gaussian sigma) as a fraction of the shorter side.
        fall: motion-smear length of the flakes as a fraction of the shorter side.
        angle: fall direction in degrees from vertical.
        opacity: opacity of the flakes.
        veil: strength of the whitish snow haze.
    """

    layers: tuple[int, int] = (2, 3)
    density: tuple[float, float] = (0.004, 0.012)
    flake_size: tuple[float, float] = (0.003, 0.007)
    fall: tuple[float, float] = (0.0, 0.03)
    angle: tuple[float, float] = (-30.0, 30.0)
    opacity: tuple[float, float] = (0.7, 1.0)
    veil: tuple[float, float] = (0.05, 0.2)


class Snow(Degradation):
    """Composite white flakes over a whitish veil (Snow100K-like; kornia blur filters)."""

    name = "snowy"
    config_class = SnowConfig

    def apply_one(self, image: torch.Tensor, draw: Draw) -> torch.Tensor:
        import kornia

        cfg = self.config
        h, w = image.shape[-2:]
        short = min(h, w)
        veil = draw.range(cfg.veil)
        out = image * (1 - veil) + 0.9 * veil
        alpha = torch.zeros(1, 1, h, w, device=image.device, dtype=image.dtype)
        angle = draw.range(cfg.angle)
        limit = kernel_limit(h, w)
        for j in range(draw.integer(*cfg.layers)):
            sigma = max(0.5, draw.range(cfg.flake_size) * short * (j + 1))
            density = draw.range(cfg.density) / (j + 1) ** 2
            seeds = (draw.rand(1, 1, h, w, like=image) < density).to(image.dtype)
            flakes = (gaussian_blur(seeds, sigma) * (2 * torch.pi * sigma * sigma)).clamp(0, 1)
            length = draw.range(cfg.fall) * short
            if length >= 3 and limit >= 3:
                k = min(odd(length), limit)
                direction = torch.full((1,), 90.0 + angle, device=image.device, dtype=image.dtype)
                smeared = kornia.filters.motion_blur(flakes, k, direction, 0.0, border_type="constant")
                flakes = (smeared * (k / min(k, 2.5 * sigma + 1))).clamp(0, 1)
            alpha = torch.maximum(alpha, flakes * draw.range(cfg.opacity))
        return out * (1 - alpha) + alpha
