"""The base class of degradation generators and the random draws they share.

A generator turns a clean batch ``(B,3,H,W)`` in [0, 1] into a degraded batch of the same shape,
range and dtype. Every random choice is drawn from the ``torch.Generator`` passed in, so a fixed
seed reproduces the output exactly; each image of a batch gets its own parameters.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any, ClassVar

import torch
import torch.nn.functional as F

from ..config import from_dict
from ..core.checks import check_image
from ..errors import ConfigError


class Draw:
    """Random draws from one ``torch.Generator`` (parameters on the CPU, fields on any device)."""

    def __init__(self, generator: torch.Generator):
        self.generator = generator

    def _rand(self, *shape: int) -> torch.Tensor:
        return torch.rand(shape, generator=self.generator, device=self.generator.device)

    def uniform(self, low: float, high: float) -> float:
        """One float uniformly in ``[low, high]``."""
        return float(low + (high - low) * self._rand(1).item())

    def range(self, bounds: Sequence[float]) -> float:
        """One float uniformly within a ``(low, high)`` config range."""
        return self.uniform(float(bounds[0]), float(bounds[1]))

    def integer(self, low: int, high: int) -> int:
        """One integer uniformly in ``[low, high]`` (both included)."""
        return int(torch.randint(int(low), int(high) + 1, (1,), generator=self.generator,
                                 device=self.generator.device).item())

    def choice(self, items: Sequence[Any]) -> Any:
        return items[self.integer(0, len(items) - 1)]

    def rand(self, *shape: int, like: torch.Tensor) -> torch.Tensor:
        """Uniform [0, 1) tensor of ``shape`` on ``like``'s device and dtype."""
        return self._rand(*shape).to(device=like.device, dtype=like.dtype)

    def randn(self, *shape: int, like: torch.Tensor) -> torch.Tensor:
        """Standard normal tensor of ``shape`` on ``like``'s device and dtype."""
        return torch.randn(shape, generator=self.generator, device=self.generator.device).to(
            device=like.device, dtype=like.dtype)


def smooth_field(draw: Draw, height: int, width: int, *, cells: int, like: torch.Tensor) -> torch.Tensor:
    """A smooth random field ``(1,1,H,W)`` in [0, 1]: bicubic upsampling of a coarse grid.

    ``cells`` is the number of random values along the shorter side (larger = busier field).
    """
    short = min(height, width)
    gh = max(2, round(cells * height / short)) + 1
    gw = max(2, round(cells * width / short)) + 1
    coarse = draw.rand(1, 1, gh, gw, like=like)
    field = F.interpolate(coarse, size=(height, width), mode="bicubic", align_corners=True)
    lo, hi = field.amin(), field.amax()
    return ((field - lo) / (hi - lo).clamp_min(1e-6)).clamp(0, 1)


def pixel_grid(height: int, width: int, like: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Pixel-centre coordinates ``(y, x)``, each ``(H, W)``, in pixels."""
    ys = torch.arange(height, device=like.device, dtype=like.dtype)
    xs = torch.arange(width, device=like.device, dtype=like.dtype)
    y, x = torch.meshgrid(ys, xs, indexing="ij")
    return y, x


def odd(n: float, minimum: int = 3) -> int:
    """The odd integer nearest to ``n`` and at least ``minimum``."""
    k = max(minimum, round(n))
    return k if k % 2 else k + 1


def kernel_limit(height: int, width: int) -> int:
    """The largest odd kernel side whose reflect padding fits an image of ``height x width``
    (below 3 for images with a side under 5: such images cannot be filtered)."""
    return 2 * ((min(height, width) - 1) // 2) - 1


def gaussian_blur(x: torch.Tensor, sigma: float) -> torch.Tensor:
    """Gaussian blur of ``(B,C,H,W)`` with ``sigma`` pixels (reflect border, clipped kernel)."""
    import kornia

    if sigma <= 0.05:
        return x
    k = odd(6 * sigma + 1)
    # reflect padding needs the half-kernel to be smaller than the image side
    limit = kernel_limit(*x.shape[-2:])
    k = max(3, min(k, limit)) if limit >= 3 else 1
    if k < 3:
        return x
    return kornia.filters.gaussian_blur2d(x, (k, k), (sigma, sigma), border_type="reflect")


class Degradation:
    """Base class: ``degradation(images, generator=None) -> images``.

    Subclasses set :attr:`name`, :attr:`config_class` and implement :meth:`apply_one`, which
    degrades a single image ``(1,3,H,W)`` float32 in [0, 1].

    Args:
        config: an instance of :attr:`config_class`, or ``None`` for its defaults.
        **overrides: field values replacing those of ``config``.

    Shape:
        - Input: ``(B, 3, H, W)`` float in [0, 1].
        - Output: ``(B, 3, H, W)``, same dtype and device, in [0, 1].
    """

    name: ClassVar[str] = ""
    config_class: ClassVar[type]

    def __init__(self, config: Any = None, **overrides: Any):
        if config is None:
            config = self.config_class()
        elif isinstance(config, dict):
            config = from_dict(self.config_class, config, where=self.name)
        elif not isinstance(config, self.config_class):
            raise ConfigError(
                f"{type(self).__name__} needs a {self.config_class.__name__}, got {type(config).__name__}."
            )
        if overrides:
            names = {f.name for f in dataclasses.fields(config)}
            unknown = sorted(set(overrides) - names)
            if unknown:
                raise ConfigError(f"{self.name}: unknown option(s) {unknown}; valid: {sorted(names)}.")
            config = dataclasses.replace(config, **overrides)
        self.config = config
        self.validate()

    @property
    def label(self) -> str:
        """The degradation word this generator produces (the universal-layout folder name)."""
        return self.name

    def validate(self) -> None:
        """Raise :class:`~daclip_kit.errors.ConfigError` for impossible settings."""
        for f in dataclasses.fields(self.config):
            value = getattr(self.config, f.name)
            is_range = isinstance(value, tuple) and len(value) == 2 and all(isinstance(v, (int, float)) for v in value)
            if is_range and value[0] > value[1]:
                raise ConfigError(f"{self.name}.{f.name}: range {value} has low > high.")

    def __call__(self, images: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        check_image(images, "images")
        if generator is None:
            generator = torch.Generator()
            generator.seed()
        draw = Draw(generator)
        x = images.detach().to(torch.float32).clamp(0, 1)
        outs = [self.apply_one(x[i:i + 1], draw).clamp(0, 1) for i in range(x.shape[0])]
        if not outs:
            return images.clone()
        return torch.cat(outs).to(images.dtype)

    def apply_one(self, image: torch.Tensor, draw: Draw) -> torch.Tensor:  # pragma: no cover
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.config!r})"

