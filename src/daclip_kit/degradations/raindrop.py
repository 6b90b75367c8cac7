"""``raindrop``: water drops on the lens or windscreen, which refract and blur what lies behind."""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from .base import Degradation, Draw, gaussian_blur, pixel_grid


@dataclass(frozen=True, kw_only=True)
class RaindropConfig:
    """Parameters of :class:`Raindrops`.

    Attributes:
        count: number of drops per image.
        radius: drop radius as a fraction of the shorter image side.
        aspect: height/width ratio of a drop (drops hang longer than wide).
        refraction: each drop shows an inverted view of a region this many times its size
            (a water drop is a short-focal-length lens).
        blur: blur of the drop contents (out of focus), as a fraction of the shorter side.
        edge: width of the soft drop border, as a fraction of the radius.
        rim: darkening at the rim of a drop (0 = none).
    """

    count: tuple[int, int] = (6, 16)
    radius: tuple[float, float] = (0.025, 0.08)
    aspect: tuple[float, float] = (1.0, 1.4)
    refraction: tuple[float, float] = (1.5, 3.0)
    blur: tuple[float, float] = (0.006, 0.015)
    edge: float = 0.2
    rim: float = 0.3


class Raindrops(Degradation):
    """Overlay refracting, blurred, soft-edged water drops (elliptic lenses) on each image."""

    name = "raindrop"
    config_class = RaindropConfig

    def apply_one(self, image: torch.Tensor, draw: Draw) -> torch.Tensor:
        cfg = self.config
        h, w = image.shape[-2:]
        short = min(h, w)
        y, x = pixel_grid(h, w, image)
        src_y, src_x = y.clone(), x.clone()
        alpha = torch.zeros_like(y)
        shade = torch.ones_like(y)
        for _ in range(draw.integer(*cfg.count)):
            cy, cx = draw.uniform(0, h - 1), draw.uniform(0, w - 1)
            rx = max(1.5, draw.range(cfg.radius) * short)
            ry = rx * draw.range(cfg.aspect)
            power = draw.range(cfg.refraction)
            dy, dx = (y - cy) / ry, (x - cx) / rx
            rho = torch.sqrt(dy * dy + dx * dx)
            a = ((1 - rho) / max(cfg.edge, 1e-3)).clamp(0, 1)
            take = a > alpha
            # inverted, minified view through the drop, stronger towards its border (fish-eye)
            gain = power * (1 + 0.5 * rho * rho)
            src_y = torch.where(take, cy - (y - cy) * gain, src_y)
            src_x = torch.where(take, cx - (x - cx) * gain, src_x)
            shade = torch.where(take, 1 - cfg.rim * rho.clamp(max=1) ** 4, shade)
            alpha = torch.maximum(alpha, a)
        grid = torch.stack([src_x / max(w - 1, 1) * 2 - 1, src_y / max(h - 1, 1) * 2 - 1], -1)[None]
        seen = F.grid_sample(image, grid, mode="bilinear", padding_mode="reflection", align_corners=True)
        seen = gaussian_blur(seen, draw.range(cfg.blur) * short) * shade
        return image * (1 - alpha) + seen * alpha
