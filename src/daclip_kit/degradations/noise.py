"""``noisy``: additive white Gaussian noise, σ = 50 on the 0–255 scale, clipped (as the paper)."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from ..errors import ConfigError
from .base import Degradation, Draw


@dataclass(frozen=True, kw_only=True)
class GaussianNoiseConfig:
    """Parameters of :class:`GaussianNoise`.

    Attributes:
        sigma: noise standard deviation on the 0–255 scale (the paper's "noise level 50").
        sigma_max: when set, σ is drawn uniformly from ``[sigma, sigma_max]`` per image.
        quantize: emulate the official script, which clips to [0, 1] and then writes
            ``uint8(x·255)`` (truncation, not rounding).
    """

    sigma: float = 50.0
    sigma_max: float | None = None
    quantize: bool = True


class GaussianNoise(Degradation):
    """Add iid Gaussian noise per pixel and channel, clip to [0, 1] (optionally truncate to 8 bits)."""

    name = "noisy"
    config_class = GaussianNoiseConfig

    def validate(self) -> None:
        cfg = self.config
        top = cfg.sigma if cfg.sigma_max is None else cfg.sigma_max
        if not 0 <= cfg.sigma <= top:
            raise ConfigError(f"noisy: need 0 <= sigma <= sigma_max, got {cfg.sigma}, {cfg.sigma_max}.")

    def apply_one(self, image: torch.Tensor, draw: Draw) -> torch.Tensor:
        cfg = self.config
        sigma = cfg.sigma if cfg.sigma_max is None else draw.uniform(cfg.sigma, cfg.sigma_max)
        out = (image + (sigma / 255.0) * draw.randn(*image.shape, like=image)).clamp(0, 1)
        if cfg.quantize:
            out = torch.floor(out * 255) / 255
        return out
