"""Overlapping tiles for images too large to process at once.

A function is applied to tiles of equal size, several tiles per call, and the outputs are blended
with a smooth window (see :func:`tile_window`) and normalised by the summed weights. Peak memory
of the function is that of ``tile_batch`` tiles of ``tile x tile`` pixels per image, whatever
the image size.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch

from ..errors import ConfigError


@dataclass(frozen=True)
class Tile:
    """A window ``[top:top+height, left:left+width]`` of the image."""

    top: int
    left: int
    height: int
    width: int

    @property
    def index(self) -> tuple[slice, slice]:
        """Slices for ``x[..., tile.index[0], tile.index[1]]``."""
        return slice(self.top, self.top + self.height), slice(self.left, self.left + self.width)


def tile_starts(size: int, tile: int, overlap: int) -> list[int]:
    """Start offsets of tiles of length ``tile`` covering ``size`` with at least ``overlap``.

    The last tile is aligned with the end, so every tile has the same length.
    """
    if size <= tile:
        return [0]
    stride = tile - overlap
    starts = list(range(0, size - tile, stride))
    starts.append(size - tile)
    return starts


def tile_grid(height: int, width: int, tile: int, overlap: int) -> list[Tile]:
    """Row-major tiles of ``min(tile, side)`` pixels covering a ``height x width`` image."""
    if tile < 1 or overlap < 0 or overlap >= tile:
        raise ConfigError(f"tile={tile} must be positive and overlap={overlap} in [0, tile).")
    th, tw = min(tile, height), min(tile, width)
    return [Tile(top, left, th, tw)
            for top in tile_starts(height, tile, overlap)
            for left in tile_starts(width, tile, overlap)]


def _ramp(length: int, overlap: int, rise: bool, fall: bool, device, dtype) -> torch.Tensor:
    w = torch.ones(length, device=device, dtype=torch.float64)
    n = min(overlap, length // 2)
    if n > 0:
        margin = n // 4
        k = torch.arange(n, device=device, dtype=torch.float64)
        frac = ((k - margin + 0.5) / (n - 2 * margin)).clamp(0, 1)
        up = torch.sin(0.5 * math.pi * frac) ** 2
        if rise:
            w[:n] = up
        if fall:
            w[length - n:] = up.flip(0)
    return w.to(dtype)


def tile_window(tile: Tile, height: int, width: int, overlap: int, device=None,
                dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """Blending weights ``(1, 1, th, tw)`` of ``tile``.

    On each side that faces another tile the weight is 0 in the outer ``overlap // 4`` pixels
    (where the tile lacks context), then rises as ``sin^2`` to 1 across the rest of the overlap;
    ramps of neighbours overlapping by exactly ``overlap`` sum to 1. Sides on the image border
    keep weight 1. An operator whose receptive-field radius is at most ``overlap // 4`` is thus
    reproduced exactly by tiling.
    """
    rows = _ramp(tile.height, overlap, tile.top > 0, tile.top + tile.height < height, device, dtype)
    cols = _ramp(tile.width, overlap, tile.left > 0, tile.left + tile.width < width, device, dtype)
    return (rows[:, None] * cols[None, :])[None, None]


def tiled_apply(fn: Callable[..., torch.Tensor], images: Sequence[torch.Tensor], *, tile: int,
                overlap: int = 32, tile_batch: int = 1,
                context: Sequence[torch.Tensor | None] = ()) -> torch.Tensor:
    """Apply ``fn`` over overlapping tiles of ``images`` and blend the results.

    Args:
        fn: called as ``fn(*image_tiles, *context)`` with ``n * B`` samples (``n`` tiles of each
            of the ``B`` images, tile-major) and returning ``(n * B, C_out, th, tw)``.
        images: tensors ``(B, C_i, H, W)`` cut into the same tiles.
        tile: tile side in pixels (use a multiple of the network's ``size_divisor``).
        overlap: minimum overlap between neighbouring tiles.
        tile_batch: tiles per call of ``fn``; peak memory grows with it.
        context: per-image tensors ``(B, ...)`` (or ``None``) repeated for each tile.

    Returns:
        ``(B, C_out, H, W)``. When one tile covers the image, exactly ``fn(*images, *context)``.
    """
    b, _, height, width = images[0].shape
    tiles = tile_grid(height, width, tile, overlap)
    if len(tiles) == 1:
        return fn(*images, *context)
    if tile_batch < 1:
        raise ConfigError(f"tile_batch={tile_batch} must be at least 1.")
    out: torch.Tensor | None = None
    weight: torch.Tensor | None = None
    for i in range(0, len(tiles), tile_batch):
        chunk = tiles[i:i + tile_batch]
        n = len(chunk)
        crops = [torch.cat([x[..., t.index[0], t.index[1]] for t in chunk]) for x in images]
        extra = [None if c is None else c.repeat(n, *([1] * (c.ndim - 1))) for c in context]
        y = fn(*crops, *extra)
        if out is None or weight is None:
            out = y.new_zeros(b, y.shape[1], height, width)
            weight = y.new_zeros(1, 1, height, width)
        for j, t in enumerate(chunk):
            win = tile_window(t, height, width, overlap, y.device, y.dtype)
            rows, cols = t.index
            out[..., rows, cols] += y[j * b:(j + 1) * b] * win
            weight[..., rows, cols] += win
    assert out is not None and weight is not None  # more than one tile, so the loop ran
    return out / weight
