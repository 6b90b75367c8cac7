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
from ...errors import ConfigError, suggest
from .arch import ConditionalUNet
from .config import UNetConfig
from .settings import PLAIN_SETTING, UNIVERSAL_SETTING, WILD_SETTING  # noqa: F401 - re-exported

#: Defaults of the official constructor for keys an option file leaves out.
_CONSTRUCTOR_DEFAULTS: dict[str, Any] = {
    "ch_mult": [1, 2, 4, 4], "context_dim": 512, "use_degra_context": True, "use_image_context": False,
}
_REQUIRED = ("in_nc", "out_nc", "nf")


#: Setting names accepted where a ``network_G.setting`` dict is expected (``convert --model``).
NAMED_SETTINGS: dict[str, dict[str, Any]] = {
    "universal": UNIVERSAL_SETTING, "irsde-universal": UNIVERSAL_SETTING, "irsde-unet": UNIVERSAL_SETTING,
    "wild": WILD_SETTING, "wild-ir": WILD_SETTING,
    "plain": PLAIN_SETTING, "irsde-plain": PLAIN_SETTING,
}


def named_setting(name: str) -> dict[str, Any]:
    """The official setting called ``name`` (``"universal"``, ``"wild-ir"``, ...)."""
    try:
        return dict(NAMED_SETTINGS[name])
    except KeyError:
        raise ConfigError(
            f"Unknown U-Net setting {name!r}.{suggest(name, NAMED_SETTINGS)} Known: {', '.join(NAMED_SETTINGS)}; "
            "or give the option file's network_G.setting as a JSON file (--config FILE)."
        ) from None


def config_from_setting(setting: Mapping[str, Any] | str | None = None) -> UNetConfig:
    """Turn an official ``network_G.setting`` dict into a :class:`UNetConfig`.

    Accepts the whole ``network_G`` section too (its ``setting`` is used). ``upscale`` (universal
    spelling) and ``scale`` (Wild-IR spelling) both set :attr:`UNetConfig.scale`. Keys left out
    take the official constructor's defaults (``ch_mult [1,2,4,4]``, ``context_dim 512``,
    ``use_degra_context true``, ``use_image_context false``); ``context_dim: null`` (or <= 0)
    disables both contexts, as in the official constructor.

    Raises:
        ConfigError: missing ``in_nc``/``out_nc``/``nf``, unknown keys or invalid values.
    """
    if isinstance(setting, str):
        setting = named_setting(setting)
    data = dict(UNIVERSAL_SETTING if setting is None else setting)
    if isinstance(data.get("setting"), Mapping):
        data = dict(data["setting"])
    missing = [k for k in _REQUIRED if k not in data]
    if missing:
        raise ConfigError(f"network_G.setting lacks {', '.join(missing)}; the official network requires them.")
    if "upscale" in data:
        upscale = data.pop("upscale")
        data.setdefault("scale", upscale)
    data = {**_CONSTRUCTOR_DEFAULTS, **data}
    if data["context_dim"] is None or data["context_dim"] <= 0:
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
        config: the option file's ``network_G.setting`` (default: the universal model; use
            :data:`WILD_SETTING` for ``wild-ir.pth``).

    Returns:
        The network in eval mode, on CPU, float32.

    Raises:
        CheckpointError: unreadable file, or keys/shapes that do not match the config (every
            offending key is listed, with the setting the checkpoint appears to have).

    Example:
        >>> from daclip_kit.compat import load_official  # doctest: +SKIP
        >>> net = load_official("irsde-unet", "wild-ir.pth", config=WILD_SETTING)  # doctest: +SKIP
    """
    cfg = config_from_setting(config)
    state_dict = read_state_dict(checkpoint)

    def hint() -> str:
        try:
            return f"The checkpoint looks like network_G.setting={infer_setting(state_dict)}; pass it as config=."
        except (KeyError, IndexError, ZeroDivisionError):
            return ""

    return build_and_load(lambda: ConditionalUNet(cfg), state_dict, source=describe_source(checkpoint), hint=hint)
