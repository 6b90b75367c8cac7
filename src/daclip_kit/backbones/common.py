"""Small blocks shared by the peer backbones (NAFNet, Restormer, PromptIR).

Plain tensor ops only (no custom autograd functions), so every block traces and exports.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
from torch import nn

from ..errors import ShapeError
from ..plugins import get_registry


def channel_layer_norm(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None,
                       eps: float, *, subtract_mean: bool = True) -> torch.Tensor:
    """Normalise every pixel of ``x`` ``(B, C, H, W)`` over its ``C`` channels.

    Uses the biased variance. With ``subtract_mean=False`` the variance is still taken about the
    mean but the mean is not removed from ``x`` (Restormer's "BiasFree" norm).
    """
    mu = x.mean(1, keepdim=True)
    var = (x - mu).pow(2).mean(1, keepdim=True)
    y = ((x - mu) if subtract_mean else x) / torch.sqrt(var + eps)
    y = y * weight.view(1, -1, 1, 1)
    if bias is not None:
        y = y + bias.view(1, -1, 1, 1)
    return y


class LayerNorm2d(nn.Module):
    """Channel-wise LayerNorm of ``(B, C, H, W)`` maps with affine ``weight``/``bias`` (``C``,).

    NAFNet uses ``eps=1e-6``; Restormer's "WithBias" norm is the same with ``eps=1e-5``.
    """

    def __init__(self, channels: int, eps: float = 1e-6):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(channels))
        self.bias = nn.Parameter(torch.zeros(channels))
        self.eps = eps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return channel_layer_norm(x, self.weight, self.bias, self.eps)


class BiasFreeLayerNorm2d(nn.Module):
    """Restormer's "BiasFree" norm: ``x / sqrt(var + eps) * weight`` over channels (no centring)."""

    def __init__(self, channels: int, eps: float = 1e-5):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(channels))
        self.eps = eps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return channel_layer_norm(x, self.weight, None, self.eps, subtract_mean=False)


class SimpleGate(nn.Module):
    """Split the channels (dim 1) in half and multiply the halves: ``(B, 2C, ...) -> (B, C, ...)``."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        a, b = x.chunk(2, dim=1)
        return a * b


def check_multiple(x: torch.Tensor, divisor: int, who: str) -> None:
    """Raise :class:`ShapeError` unless H and W of ``x`` are multiples of ``divisor``."""
    h, w = x.shape[-2:]
    if h % divisor or w % divisor:
        raise ShapeError(
            f"{who} needs H and W that are multiples of {divisor}, got {h}x{w}. Networks never pad: use "
            f"RestorationPipeline or daclip_kit.sample (they pad and crop), or "
            f"daclip_kit.ops.padding.padded_call(fn, inputs, {divisor}, net.pad_mode)."
        )


def config_mapping(config: Mapping[str, Any] | str | None) -> dict[str, Any]:
    """A converter's ``config`` argument as a fresh dict: a registry name gives that backbone's
    defaults (``"nafnet-gopro-w64"``), a mapping is copied, ``None`` is empty."""
    if isinstance(config, str):

        return dict(get_registry("backbones").get(config).defaults)
    return dict(config or {})
