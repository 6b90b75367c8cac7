"""``motion-blurry``: camera-shake blur with random trajectory kernels (as GoPro's averaged frames)."""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from .base import Degradation, Draw, kernel_limit, odd


@dataclass(frozen=True, kw_only=True)
class MotionBlurConfig:
    """Parameters of :class:`MotionBlur`.

    Attributes:
        kernel_size: side of the square kernel in pixels (odd; clipped for small images).
        length: trajectory length as a fraction of ``kernel_size``, drawn uniformly.
        curvature: standard deviation (radians) of the direction change per step; 0 gives a
            straight (linear) blur, larger values shaky curved paths.
        steps: points sampled along the trajectory.
    """

    kernel_size: int = 25
    length: tuple[float, float] = (0.3, 0.9)
    curvature: float = 0.25
    steps: int = 64


def trajectory_kernel(draw: Draw, size: int, length: float, curvature: float, steps: int,
                      like: torch.Tensor) -> torch.Tensor:
    """A ``(size, size)`` blur kernel (sums to 1) from a random camera path.

    The path is a random walk of ``steps`` unit moves whose heading changes by
    ``N(0, curvature)`` each step, scaled to ``length`` pixels, centred, and splatted
    bilinearly onto the grid.
    """
    heading = draw.uniform(0.0, 2 * math.pi)
    turns = draw.randn(steps, like=like) * curvature
    angles = heading + torch.cumsum(turns, 0)
    moves = torch.stack([torch.sin(angles), torch.cos(angles)], 1)
    path = torch.cumsum(moves, 0)
    extent = (path.amax(0) - path.amin(0)).max().clamp_min(1e-6)
    path = path * (length / extent)
    path = path - (path.amax(0) + path.amin(0)) / 2 + (size - 1) / 2
    path = path.clamp(0, size - 1 - 1e-4)
    y0 = path[:, 0].floor()
    x0 = path[:, 1].floor()
    fy = path[:, 0] - y0
    fx = path[:, 1] - x0
    kernel = torch.zeros(size * size, device=like.device, dtype=like.dtype)
    for dy, wy in ((0, 1 - fy), (1, fy)):
        for dx, wx in ((0, 1 - fx), (1, fx)):
            yy = (y0 + dy).clamp(max=size - 1).long()
            xx = (x0 + dx).clamp(max=size - 1).long()
            kernel.index_add_(0, yy * size + xx, wy * wx)
    return (kernel / kernel.sum()).view(size, size)


class MotionBlur(Degradation):
    """Blur each image with its own random motion kernel (kornia ``filter2d``, reflect border).

    Example:
        >>> import torch
        >>> from daclip_kit.degradations.blur import MotionBlur
        >>> MotionBlur()(torch.rand(2, 3, 64, 64), torch.Generator().manual_seed(0)).shape
        torch.Size([2, 3, 64, 64])
    """

    name = "motion-blurry"
    config_class = MotionBlurConfig

    def apply_one(self, image: torch.Tensor, draw: Draw) -> torch.Tensor:
        import kornia

        cfg = self.config
        limit = kernel_limit(*image.shape[-2:])
        if limit < 3:  # too small for a reflect-padded kernel, as gaussian_blur
            return image
        size = min(odd(cfg.kernel_size), limit)
        length = max(2.0, draw.range(cfg.length) * (size - 1))
        kernel = trajectory_kernel(draw, size, length, cfg.curvature, cfg.steps, image)
        return kornia.filters.filter2d(image, kernel[None], border_type="reflect")
