"""Boundary validation of tensors (raises :class:`~daclip_kit.errors.ShapeError`)."""

from __future__ import annotations

import torch

from ..errors import ShapeError


def check_image(x: torch.Tensor, name: str = "images", *, channels: int | None = 3,
                check_range: bool = False) -> torch.Tensor:
    """Check that ``x`` is a float ``(B, C, H, W)`` image batch and return it.

    Args:
        x: the tensor to check.
        name: how the argument is called in the message.
        channels: required channel count, or ``None`` for any.
        check_range: also require values in [0, 1] (costs a reduction).
    """
    if not isinstance(x, torch.Tensor):
        raise ShapeError(f"{name} must be a torch.Tensor of shape (B,3,H,W), got {type(x).__name__}.")
    if x.ndim != 4:
        hint = " Add a batch dimension with x.unsqueeze(0)." if x.ndim == 3 else ""
        raise ShapeError(f"{name} must have 4 dimensions (B,C,H,W), got shape {tuple(x.shape)}.{hint}")
    if channels is not None and x.shape[1] != channels:
        raise ShapeError(
            f"{name} must have {channels} channels (RGB, channel-first), got shape {tuple(x.shape)}."
        )
    if not x.is_floating_point():
        raise ShapeError(f"{name} must be a float tensor in [0,1], got dtype {x.dtype}; use x.float() / 255.")
    if check_range and x.numel() and (x.min() < -1e-4 or x.max() > 1 + 1e-4):
        raise ShapeError(
            f"{name} must lie in [0, 1], got values in [{x.min().item():.3g}, {x.max().item():.3g}]."
        )
    return x


def check_embedding(x: torch.Tensor | None, name: str, batch: int, dim: int | None = None) -> None:
    """Check that ``x`` is ``None`` or a ``(batch, dim)`` tensor."""
    if x is None:
        return
    if x.ndim != 2 or x.shape[0] not in (1, batch) or (dim is not None and x.shape[1] != dim):
        want = f"({batch}, {dim if dim is not None else 'D'})"
        raise ShapeError(f"{name} embedding must have shape {want}, got {tuple(x.shape)}.")
