"""Load the official Restormer releases (``motion_deblurring.pth``, ``deraining.pth``,
``real_denoising.pth``, ``gaussian_*_denoising_*.pth``, ...): BasicSR ``{"params": state_dict}``."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

from ...checkpoint import build_and_load, describe_source, read_state_dict
from ...config import from_dict
from ...errors import ConfigError
from ..common import config_mapping
from .arch import Restormer
from .config import RestormerConfig

BASICSR_WRAPPERS = ("params", "params_ema", "state_dict")


def restormer_kwargs(config: Mapping[str, Any] | str | None) -> dict[str, Any]:
    """Official constructor kwargs / option-file ``network_g`` (or a registry name) -> our keys.

    ``LayerNorm_type`` becomes ``layer_norm_type``; ``type`` must be ``Restormer`` if given.
    """
    data = config_mapping(config)
    kind = data.pop("type", "Restormer")
    if kind != "Restormer":
        raise ConfigError(f"network_g type {kind!r} is not Restormer.")
    if "LayerNorm_type" in data:
        data["layer_norm_type"] = data.pop("LayerNorm_type")
    return data


def infer_layer_norm(state_dict: Mapping[str, torch.Tensor]) -> str:
    """``"WithBias"`` when the norms have biases, else ``"BiasFree"``."""
    return "WithBias" if any(k.endswith("norm1.body.bias") for k in state_dict) else "BiasFree"


def load_official_restormer(checkpoint: str | Path | Mapping[str, Any], *,
                            config: Mapping[str, Any] | str | None = None) -> Restormer:
    """Build :class:`Restormer` for an official checkpoint and load it strictly.

    Args:
        checkpoint: a ``.pth`` path (or safetensors) or a state dict; the BasicSR ``params``
            wrapper and a ``module.`` prefix are removed.
        config: official constructor kwargs / ``network_g`` or a registry name
            (``"restormer-biasfree"``); default: the official defaults, with the LayerNorm type
            read from the checkpoint (``real_denoising.pth`` and Gaussian denoising are BiasFree).

    Returns:
        The network in eval mode, float32 on CPU.

    Raises:
        CheckpointError: unreadable file or mismatching keys (every key listed).

    Example:
        >>> from daclip_kit.compat import load_official  # doctest: +SKIP
        >>> net = load_official("restormer", "motion_deblurring.pth")  # doctest: +SKIP
    """
    state_dict = read_state_dict(checkpoint, wrappers=BASICSR_WRAPPERS)
    data = restormer_kwargs(config)
    data.setdefault("layer_norm_type", infer_layer_norm(state_dict))
    cfg = from_dict(RestormerConfig, data, where="restormer")
    return build_and_load(lambda: Restormer(cfg), state_dict, source=describe_source(checkpoint), config=cfg)
