"""Load the official NAFNet releases (``NAFNet-{GoPro,REDS,SIDD}-width{32,64}.pth``).

The files are BasicSR containers ``{"params": state_dict}`` with the official key names, so the
conversion is a strict load. The architecture is read from the keys when the config leaves it out.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

from ...checkpoint import build_and_load, describe_source, read_state_dict
from ...config import from_dict
from ...errors import CheckpointError, ConfigError
from ..common import config_mapping
from .arch import NAFNet
from .config import NAFNetConfig

#: BasicSR keeps the weights under one of these keys (``params_ema`` in EMA-trained runs).
BASICSR_WRAPPERS = ("params", "params_ema", "state_dict")

_ARCH_KEYS = ("img_channel", "width", "middle_blk_num", "enc_blk_nums", "dec_blk_nums")


def infer_config(state_dict: Mapping[str, torch.Tensor]) -> dict[str, Any]:
    """The constructor arguments (``img_channel``, ``width``, block counts) that produced ``state_dict``."""
    try:
        intro = state_dict["intro.weight"]
    except KeyError:
        raise CheckpointError(
            "Not a NAFNet state dict: no 'intro.weight' key "
            f"(first keys: {list(state_dict)[:5]})."
        ) from None

    def counts(prefix: str) -> list[int]:
        found: dict[int, set[int]] = {}
        for key in state_dict:
            m = re.match(rf"{prefix}\.(\d+)\.(\d+)\.", key)
            if m:
                found.setdefault(int(m.group(1)), set()).add(int(m.group(2)))
        levels = max((int(m.group(1)) for k in state_dict if (m := re.match(r"downs\.(\d+)\.", k))), default=-1) + 1
        return [len(found.get(i, ())) for i in range(levels)]

    middle = {int(m.group(1)) for k in state_dict if (m := re.match(r"middle_blks\.(\d+)\.", k))}
    return {
        "img_channel": int(intro.shape[1]), "width": int(intro.shape[0]), "middle_blk_num": len(middle),
        "enc_blk_nums": counts("encoders"), "dec_blk_nums": counts("decoders"),
    }


def config_from_official(config: Mapping[str, Any] | str | None,
                         state_dict: Mapping[str, torch.Tensor] | None = None) -> NAFNetConfig:
    """Build a :class:`NAFNetConfig` from an official ``network_g`` dict, a registry name or ``None``.

    ``type: NAFNetLocal`` turns TLC on and ``train_size`` may be the official 4-tuple;
    ``fast_imp: true`` (a non-equivalent approximation) is refused. Architecture keys left out are
    read from ``state_dict``. ``pad_mode`` defaults to ``"zeros"``, the official behaviour.

    Raises:
        ConfigError: unknown keys, ``fast_imp: true``, or an unknown registry name.
    """
    data = config_mapping(config)
    kind = data.pop("type", None)
    if kind is not None:
        if kind not in ("NAFNet", "NAFNetLocal"):
            raise ConfigError(f"network_g type {kind!r} is not NAFNet or NAFNetLocal.")
        data.setdefault("tlc", kind == "NAFNetLocal")
    if data.pop("fast_imp", False):
        raise ConfigError("fast_imp=true (an approximate TLC) is not supported; use fast_imp=false, "
                          "the official default.")
    if state_dict is not None and any(k not in data for k in _ARCH_KEYS):
        data = {**infer_config(state_dict), **data}
    data.setdefault("pad_mode", "zeros")
    return from_dict(NAFNetConfig, data, where="nafnet")


def load_official_nafnet(checkpoint: str | Path | Mapping[str, Any], *,
                         config: Mapping[str, Any] | str | None = None) -> NAFNet:
    """Build :class:`NAFNet` for an official checkpoint and load it strictly.

    Args:
        checkpoint: ``NAFNet-*.pth`` path (or safetensors), or a state dict; the BasicSR
            ``params``/``params_ema`` wrapper and a ``module.`` prefix are removed.
        config: the option file's ``network_g`` (``type``, ``width``, block counts, ``train_size``),
            a registry name such as ``"nafnet-gopro-w64"``, or ``None`` (architecture from the
            keys, no TLC). GoPro/REDS are officially tested with TLC: pass ``{"tlc": True}``.

    Returns:
        The network in eval mode, float32 on CPU, with ``pad_mode="zeros"`` (official padding)
        unless the config says otherwise.

    Raises:
        CheckpointError: unreadable file, or keys/shapes that do not match (every key listed).

    Example:
        >>> from daclip_kit.compat import load_official  # doctest: +SKIP
        >>> net = load_official("nafnet", "NAFNet-GoPro-width64.pth", config={"tlc": True})  # doctest: +SKIP
    """
    state_dict = read_state_dict(checkpoint, wrappers=BASICSR_WRAPPERS)
    cfg = config_from_official(config, state_dict)

    def hint() -> str:
        try:
            return f"The checkpoint looks like {infer_config(state_dict)}; pass it as config=."
        except CheckpointError:
            return "The checkpoint does not look like a NAFNet (no 'intro.weight')."

    return build_and_load(lambda: NAFNet(cfg), state_dict, source=describe_source(checkpoint), config=cfg, hint=hint)
