"""Load the official PromptIR release ``model.ckpt`` (a PyTorch Lightning checkpoint).

The weights sit in ``ckpt["state_dict"]`` under the LightningModule attribute ``net.``; both are
removed here, so Lightning is never needed (and no code from the file is run).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ...checkpoint import build_and_load, describe_source, read_state_dict
from ...config import from_dict
from ...errors import ConfigError
from ..common import config_mapping
from .arch import PromptIR
from .config import PromptIRConfig


def promptir_kwargs(config: Mapping[str, Any] | str | None) -> dict[str, Any]:
    """Official constructor kwargs (or a registry name) -> :class:`PromptIRConfig` keys.

    ``LayerNorm_type`` becomes ``layer_norm_type``; ``decoder`` must be true (the released model;
    the official class cannot run with ``decoder=False``).
    """
    data = config_mapping(config)
    if "LayerNorm_type" in data:
        data["layer_norm_type"] = data.pop("LayerNorm_type")
    if not data.pop("decoder", True):
        raise ConfigError("decoder=false is not supported: the official PromptIR only runs with its decoder "
                          "prompts (decoder=true), which the released model.ckpt uses.")
    return data


def load_official_promptir(checkpoint: str | Path | Mapping[str, Any], *,
                           config: Mapping[str, Any] | str | None = None) -> PromptIR:
    """Build :class:`PromptIR` for the official ``model.ckpt`` and load it strictly.

    Args:
        checkpoint: ``model.ckpt`` path (read with ``weights_only=True``), a safetensors file, or
            a state dict; the Lightning ``state_dict`` wrapper and the ``net.`` (or ``module.``)
            prefix are removed; Lightning's bookkeeping entries are ignored.
        config: official constructor kwargs or a registry name; default: the released model.

    Returns:
        The network in eval mode, float32 on CPU.

    Raises:
        CheckpointError: unreadable file or mismatching keys (every key listed).

    Example:
        >>> from daclip_kit.compat import load_official  # doctest: +SKIP
        >>> net = load_official("promptir", "model.ckpt")  # doctest: +SKIP
    """
    cfg = from_dict(PromptIRConfig, promptir_kwargs(config), where="promptir")
    state_dict = read_state_dict(checkpoint, wrappers=("state_dict",), strip=("net.", "module."))
    state_dict = {k: v.contiguous() for k, v in state_dict.items()}
    return build_and_load(lambda: PromptIR(cfg), state_dict, source=describe_source(checkpoint), config=cfg)
