"""``shadowed``: cast shadows, i.e. soft-edged regions where direct light is blocked."""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from .base import Degradation, Draw, gaussian_blur, pixel_grid


@dataclass(frozen=True, kw_only=True)
class ShadowConfig:
    """Parameters of :class:`CastShadow`.

    Attributes:
        regions: number of shadow regions.
        size: region radius as a fraction of the shorter image side.
        vertices: vertices of each (star-shaped) shadow polygon.
        darkness: fraction of the light that remains inside the shadow.
        softness: penumbra width (Gaussian sigma) as a fraction of the shorter side.
        blue_tint: how much less the blue channel is darkened (shadows are lit by the blue sky).
    """

    regions: tuple[int, int] = (1, 2)
    size: tuple[float, float] = (0.25, 0.6)
    vertices: tuple[int, int] = (4, 8)
    darkness: tuple[float, float] = (0.2, 0.5)
    softness: tuple[float, float] = (0.005, 0.03)
    blue_tint: float = 0.15


def star_polygon_mask(draw: Draw, height: int, width: int, radius: float, vertices: int,
                      like: torch.Tensor) -> torch.Tensor:
    """``(H, W)`` binary mask of a random star-shaped polygon centred inside the image."""
    cy, cx = draw.uniform(0, height - 1), draw.uniform(0, width - 1)
    angles = torch.sort(draw.rand(vertices, like=like) * 2 * math.pi).values
    radii = radius * (0.5 + 0.5 * draw.rand(vertices, like=like))
    # close the polygon: repeat the first vertex one turn later
    angles = torch.cat([angles[-1:] - 2 * math.pi, angles, angles[:1] + 2 * math.pi])
    radii = torch.cat([radii[-1:], radii, radii[:1]])
    y, x = pixel_grid(height, width, like)
    phi = torch.atan2(y - cy, x - cx).remainder(2 * math.pi)
    rho = torch.sqrt((y - cy) ** 2 + (x - cx) ** 2)
    idx = torch.searchsorted(angles.contiguous(), phi.flatten().contiguous()).view_as(phi).clamp(1, len(angles) - 1)
    a0, a1 = angles[idx - 1], angles[idx]
    t = (phi - a0) / (a1 - a0).clamp_min(1e-6)
    edge = radii[idx - 1] * (1 - t) + radii[idx] * t
    return (rho <= edge).to(like.dtype)


class CastShadow(Degradation):
    """Darken random soft-edged polygons, slightly less in blue, leaving the rest untouched."""

    name = "shadowed"
    config_class = ShadowConfig

    def apply_one(self, image: torch.Tensor, draw: Draw) -> torch.Tensor:
        cfg = self.config
        h, w = image.shape[-2:]
        short = min(h, w)
        mask = torch.zeros(h, w, device=image.device, dtype=image.dtype)
        for _ in range(draw.integer(*cfg.regions)):
            region = star_polygon_mask(draw, h, w, draw.range(cfg.size) * short,
                                       draw.integer(*cfg.vertices), image)
            mask = torch.maximum(mask, region)
        mask = gaussian_blur(mask[None, None], draw.range(cfg.softness) * short)
        k = draw.range(cfg.darkness)
        tint = torch.tensor([0.0, 0.5, 1.0], device=image.device, dtype=image.dtype) * cfg.blue_tint
        light = (k * (1 + tint)).clamp(max=1).view(1, 3, 1, 1)
        return image * (1 - mask * (1 - light))
