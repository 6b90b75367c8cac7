"""Small blocks shared by the peer backbones (NAFNet, Restormer, PromptIR).

Plain tensor ops only (no custom autograd functions), so every block traces and exports.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
from torch import nn

from ..components import config_fields
from ..errors import ConfigError, ShapeError
from ..factory import create_adapter
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


class AdapterSlots(nn.Module):
    """The adapters an :class:`~daclip_kit.backbones.conditioning_config.AdapterSlotsConfig` asks for,
    attached at named points of a backbone.

    Args:
        config: the backbone config (its ``*_adapter`` fields).
        degradation_points: ``{point: channels}`` where the degradation adapter is applied.
        content_points: ``{point: channels}`` where the content adapter is applied.

    Each point holds its own adapter, built as ``create_adapter(name, dim=channels,
    context_dim=config.context_dim, **options)``; keys are ``<point>.*`` inside this module.
    ``slots(point, x, cond)`` applies the adapter of ``point`` (``x`` unchanged where none is
    attached or ``cond`` lacks its embedding).
    """

    def __init__(self, config: Any, degradation_points: Mapping[str, int], content_points: Mapping[str, int]):
        super().__init__()
        self.points = nn.ModuleDict()
        roles = set()
        for role, points in (("degradation", degradation_points), ("content", content_points)):
            name = getattr(config, f"{role}_adapter")
            if name is None:
                continue
            options = dict(getattr(config, f"{role}_adapter_config"))
            # an adapter that can serve either embedding (cross-attention, say) is told which one it serves
            if "role" not in options and "role" in (config_fields("adapters", name) or ()):
                options["role"] = role
            for point, channels in points.items():
                adapter = create_adapter(name, dim=channels, context_dim=config.context_dim, **options)
                if getattr(adapter, "role", role) != role:
                    raise ConfigError(
                        f"The {name!r} adapter reads the {adapter.role!r} embedding, so it cannot be the "
                        f"{role}_adapter; pick an adapter for the {role} embedding (daclip-kit ls adapters)."
                    )
                self.points[point] = adapter
            roles.add(role)
        self.roles = frozenset(roles)

    def forward(self, point: str, x: torch.Tensor, cond: Any) -> torch.Tensor:
        if cond is None or point not in self.points:
            return x
        return self.points[point](x, cond)
