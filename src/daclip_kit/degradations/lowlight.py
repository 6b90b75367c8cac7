"""``low-light``: under-exposure as gamma and gain, with signal-dependent sensor noise."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from .base import Degradation, Draw


@dataclass(frozen=True, kw_only=True)
class LowLightConfig:
    """Parameters of :class:`LowLight`: ``y = gain·x^gamma + n``, ``Var n = shot·y + read²``.

    Attributes:
        gamma: exponent applied to the [0, 1] image (> 1 darkens mid-tones most).
        gain: exposure scale after the gamma (LOL's low images keep a few percent of the light).
        shot_noise: Poisson-like variance per unit of intensity.
        read_noise: signal-independent noise standard deviation.
        quantize: round to 8 bits, as a camera writing the dark frame would.
    """

    gamma: tuple[float, float] = (1.5, 2.5)
    gain: tuple[float, float] = (0.15, 0.45)
    shot_noise: tuple[float, float] = (0.0005, 0.004)
    read_noise: tuple[float, float] = (0.002, 0.01)
    quantize: bool = True


class LowLight(Degradation):
    """Darken each image (kornia ``adjust_gamma``) and add the noise of a high-gain sensor."""

    name = "low-light"
    config_class = LowLightConfig

    def apply_one(self, image: torch.Tensor, draw: Draw) -> torch.Tensor:
        import kornia

        cfg = self.config
        dark = kornia.enhance.adjust_gamma(image, draw.range(cfg.gamma), draw.range(cfg.gain))
        shot, read = draw.range(cfg.shot_noise), draw.range(cfg.read_noise)
        std = (dark * shot + read * read).sqrt()
        out = (dark + std * draw.randn(*image.shape, like=image)).clamp(0, 1)
        if cfg.quantize:
            out = torch.round(out * 255) / 255
        return out
