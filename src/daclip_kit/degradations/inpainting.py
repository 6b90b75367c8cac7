"""``uncompleted``: inpainting inputs, holes filled white as in the official data.

By default the holes are thin random brush strokes (like the "thin" masks RePaint evaluates on).
With ``mask_dir`` the masks are read from files in the official convention: white (1) keeps a
pixel, black (0) is a hole, and ``LQ = mask·image + (1 − mask)``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache

import torch
import torch.nn.functional as F

from ..errors import InputError
from ..io import IMAGE_SUFFIXES, read_image
from .base import Degradation, Draw, pixel_grid


@dataclass(frozen=True, kw_only=True)
class InpaintingConfig:
    """Parameters of :class:`InpaintingMask`.

    Attributes:
        coverage: fraction of the image covered by holes (strokes are added until reached).
        width: stroke width as a fraction of the shorter image side.
        vertices: vertices of each stroke (a polyline).
        step: length of one stroke segment as a fraction of the shorter side.
        max_strokes: cap on strokes per image.
        mask_dir: folder of mask images (official ``scripts/inpainting_masks`` layout) used instead
            of random strokes; one is drawn per image and resized to it.
    """

    coverage: tuple[float, float] = (0.1, 0.25)
    width: tuple[float, float] = (0.01, 0.03)
    vertices: tuple[int, int] = (4, 10)
    step: tuple[float, float] = (0.05, 0.25)
    max_strokes: int = 100
    mask_dir: str | None = None


def stroke_mask(draw: Draw, height: int, width: int, cfg: InpaintingConfig, like: torch.Tensor) -> torch.Tensor:
    """``(H, W)`` hole mask (1 = hole) made of random thick polylines."""
    short = min(height, width)
    y, x = pixel_grid(height, width, like)
    mask = torch.zeros(height, width, device=like.device, dtype=torch.bool)
    target = draw.range(cfg.coverage)
    for _ in range(cfg.max_strokes):
        half = max(0.75, draw.range(cfg.width) * short / 2)
        py, px = draw.uniform(0, height - 1), draw.uniform(0, width - 1)
        heading = draw.uniform(0, 2 * math.pi)
        for _ in range(draw.integer(*cfg.vertices) - 1):
            heading += draw.uniform(-math.pi / 2, math.pi / 2)
            step = draw.range(cfg.step) * short
            qy = min(max(py + step * math.sin(heading), 0.0), height - 1.0)
            qx = min(max(px + step * math.cos(heading), 0.0), width - 1.0)
            dy, dx = qy - py, qx - px
            t = (((y - py) * dy + (x - px) * dx) / max(dy * dy + dx * dx, 1e-6)).clamp(0, 1)
            dist2 = (y - py - t * dy) ** 2 + (x - px - t * dx) ** 2
            mask |= dist2 <= half * half
            py, px = qy, qx
        if mask.float().mean().item() >= target:
            break
    return mask.to(like.dtype)


@lru_cache(maxsize=4)
def _mask_files(folder: str) -> tuple[str, ...]:
    from pathlib import Path


    root = Path(folder)
    if not root.is_dir():
        raise InputError(f"Mask folder {folder!r} does not exist; pass the folder of mask images "
                         "(e.g. the official scripts/inpainting_masks) or leave mask_dir unset.")
    files = tuple(str(p) for p in sorted(root.iterdir()) if p.suffix.lower() in IMAGE_SUFFIXES)
    if not files:
        raise InputError(f"Mask folder {folder!r} holds no images.")
    return files


def load_keep_mask(path: str, height: int, width: int, like: torch.Tensor) -> torch.Tensor:
    """Read a mask file as a ``(1,3,H,W)`` keep-map in [0, 1] (1 keeps, 0 is a hole), resized with
    area averaging when shrinking."""

    keep = read_image(path).to(device=like.device, dtype=like.dtype)
    if keep.shape[-2:] != (height, width):
        shrink = keep.shape[-2] >= height and keep.shape[-1] >= width
        keep = F.interpolate(keep, size=(height, width), mode="area" if shrink else "bilinear",
                             align_corners=None if shrink else False)
    return keep.clamp(0, 1)


class InpaintingMask(Degradation):
    """Cut holes into each image and fill them with white (value 1.0)."""

    name = "uncompleted"
    config_class = InpaintingConfig

    def apply_one(self, image: torch.Tensor, draw: Draw) -> torch.Tensor:
        h, w = image.shape[-2:]
        if self.config.mask_dir:
            keep = load_keep_mask(draw.choice(_mask_files(self.config.mask_dir)), h, w, image)
            return keep * image + (1 - keep)
        hole = stroke_mask(draw, h, w, self.config, image)[None, None]
        return image * (1 - hole) + hole
