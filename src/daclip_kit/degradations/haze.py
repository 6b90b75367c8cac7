"""``hazy``: the atmospheric scattering model ``I = J·t + A·(1 − t)`` with ``t = exp(−β·d)``."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from .base import Degradation, Draw, pixel_grid, smooth_field


@dataclass(frozen=True, kw_only=True)
class HazeConfig:
    """Parameters of :class:`Haze`.

    Attributes:
        beta: scattering coefficient β per unit of relative depth.
        airlight: atmospheric light A (grey level of the haze).
        airlight_tint: largest per-channel deviation of A from grey.
        depth: relative depth range ``(near, far)`` the depth map is scaled to.
        horizon: weight of the vertical "farther towards the top" gradient in the depth map; the
            rest is a smooth random field.
    """

    beta: tuple[float, float] = (0.6, 1.8)
    airlight: tuple[float, float] = (0.7, 1.0)
    airlight_tint: float = 0.03
    depth: tuple[float, float] = (0.3, 1.0)
    horizon: float = 0.6


class Haze(Degradation):
    """Add haze with a synthetic depth map and airlight.

    Lowers contrast and pulls colours towards the airlight (lifts the mean of dark scenes).
    """

    name = "hazy"
    config_class = HazeConfig

    def depth_map(self, draw: Draw, height: int, width: int, like: torch.Tensor) -> torch.Tensor:
        """Relative depth ``(1,1,H,W)`` within ``config.depth``."""
        cfg = self.config
        y, _ = pixel_grid(height, width, like)
        gradient = 1 - y / max(height - 1, 1)
        field = smooth_field(draw, height, width, cells=3, like=like)[0, 0]
        d = cfg.horizon * gradient + (1 - cfg.horizon) * field
        near, far = cfg.depth
        return (near + (far - near) * d)[None, None]

    def apply_one(self, image: torch.Tensor, draw: Draw) -> torch.Tensor:
        cfg = self.config
        beta = draw.range(cfg.beta)
        grey = draw.range(cfg.airlight)
        tint = (draw.rand(3, like=image) * 2 - 1) * cfg.airlight_tint
        airlight = (grey + tint).clamp(0, 1).view(1, 3, 1, 1)
        h, w = image.shape[-2:]
        t = torch.exp(-beta * self.depth_map(draw, h, w, like=image))
        return image * t + airlight * (1 - t)
