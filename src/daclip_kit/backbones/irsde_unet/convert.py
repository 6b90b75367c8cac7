"""Load the official ``universal-ir.pth`` / ``wild-ir.pth`` (IR-SDE ``ConditionalUNet`` state dicts).

The key names are the official ones, so conversion is a strict load; the only work is turning
the option file's ``network_G.setting`` into a :class:`UNetConfig`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

from ...checkpoint import build_and_load, describe_source, read_state_dict
from ...config import from_dict
from ..common import config_mapping
from .arch import ConditionalUNet
from .config import UNetConfig


def config_from_setting(setting: Mapping[str, Any] | str | None = None) -> UNetConfig:
    """Turn an official ``network_G.setting`` dict (or a backbone name) into a :class:`UNetConfig`.

    Accepts the whole ``network_G`` section too (its ``setting`` is used), or a registry name
    (``"irsde-unet"``, ``"irsde-unet-wild"``, ``"irsde-unet-plain"``). ``upscale`` (universal
    spelling) and ``scale`` (Wild-IR spelling) both set :attr:`UNetConfig.scale`;
    ``context_dim: null`` (or <= 0) disables both contexts, as in the official constructor. Keys
    left out take the :class:`UNetConfig` defaults, which are the universal model's (the released
    option files list every key).

    Raises:
        ConfigError: unknown keys or invalid values.
    """
    data = config_mapping(setting)
    if isinstance(data.get("setting"), Mapping):
        data = dict(data["setting"])
    if "upscale" in data:
        upscale = data.pop("upscale")
        data.setdefault("scale", upscale)
    if "context_dim" in data and (data["context_dim"] is None or data["context_dim"] <= 0):
        data.update(context_dim=0, use_degra_context=False, use_image_context=False)
    return from_dict(UNetConfig, data, where="network_G.setting")


def infer_setting(state_dict: Mapping[str, torch.Tensor]) -> dict[str, Any]:
    """Guess the ``network_G.setting`` that produced ``state_dict`` from its keys and shapes."""
    init = state_dict["init_conv.weight"]
    nf = int(init.shape[0])
    levels = sorted({int(m.group(1)) for k in state_dict if (m := re.match(r"downs\.(\d+)\.", k))})
    ch_mult = [int(state_dict[f"downs.{i}.3.weight"].shape[0]) // nf for i in levels]
    to_k = [v for k, v in state_dict.items() if k.endswith("attn2.to_k.weight")]
    text = state_dict.get("text_mlp.0.weight")
    context_dim = int(text.shape[1]) if text is not None else (int(to_k[0].shape[1]) if to_k else 0)
    setting: dict[str, Any] = {
        "in_nc": int(init.shape[1]) // 2, "out_nc": int(state_dict["final_conv.weight"].shape[0]),
        "nf": nf, "ch_mult": ch_mult, "context_dim": context_dim,
        "use_degra_context": "prompt" in state_dict, "use_image_context": bool(to_k),
    }
    if "downsample.weight" in state_dict:
        setting["scale"] = 0.5
    return setting


def load_official_unet(checkpoint: str | Path | Mapping[str, Any], *,
                       config: Mapping[str, Any] | None = None) -> ConditionalUNet:
    """Build :class:`ConditionalUNet` and load an official checkpoint strictly.

    Args:
        checkpoint: path of ``universal-ir.pth`` / ``wild-ir.pth`` (or a safetensors file), or a
            state dict; a ``module.`` prefix on every key and a ``{"state_dict": ...}`` wrapper
            are removed.
        config: the option file's ``network_G.setting`` or a backbone name (default: the
            universal model; ``"irsde-unet-wild"`` for ``wild-ir.pth``).

    Returns:
        The network in eval mode, on CPU, float32.

    Raises:
        CheckpointError: unreadable file, or keys/shapes that do not match the config (every
            offending key is listed, with the setting the checkpoint appears to have).

    Example:
        >>> import daclip_kit  # doctest: +SKIP
        >>> net = daclip_kit.load_network("irsde-unet-wild", "wild-ir.pth")  # doctest: +SKIP
    """
    cfg = config_from_setting(config)
    state_dict = read_state_dict(checkpoint)

    def hint() -> str:
        try:
            return f"The checkpoint looks like network_G.setting={infer_setting(state_dict)}; pass it as config=."
        except (KeyError, IndexError, ZeroDivisionError):
            return ""

    return build_and_load(lambda: ConditionalUNet(cfg), state_dict,
                          source=describe_source(checkpoint), config=cfg, hint=hint)
