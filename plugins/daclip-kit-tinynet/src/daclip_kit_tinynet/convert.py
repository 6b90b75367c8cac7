"""Loading TinyNet's released checkpoints.

TinyNet's authors publish ``tinynet_demo.pt``, a training checkpoint in their own layout::

    {"generator": {"conv_in.weight": ..., "down_conv.weight": ..., "encoder.0.conv_a.weight": ...},
     "iteration": 20000, "config": {"width": 16, "blocks": 1, "context_dim": 32}}

Their module names differ from this package's TinyNet, so the converter renames the keys and loads
them strictly. daclip-kit calls it through the backbone spec's ``convert``; nothing in daclip-kit
knows this layout.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from daclip_kit.checkpoint import build_and_load, describe_source, read_state_dict
from daclip_kit.config import from_dict

from .arch import TinyNet, TinyNetConfig

#: (released key prefix, TinyNet key prefix); ``{i}`` stands for a block index.
PREFIXES: tuple[tuple[str, str], ...] = (
    ("conv_in.", "head."),
    ("down_conv.", "down."),
    ("encoder.{i}.conv_a.", "enc.{i}.body.0."),
    ("encoder.{i}.conv_b.", "enc.{i}.body.2."),
    ("film.", "adapter."),
    ("decoder.{i}.conv_a.", "dec.{i}.body.0."),
    ("decoder.{i}.conv_b.", "dec.{i}.body.2."),
    ("up_conv.", "up."),
    ("conv_out.", "tail."),
)


def _rename(key: str, pairs) -> str:
    for src, dst in pairs:
        match = re.match(re.escape(src).replace(re.escape("{i}"), r"(\d+)"), key)
        if match:
            index = match.group(1) if match.groups() else ""
            return dst.replace("{i}", index) + key[match.end():]
    return key


def to_tinynet_keys(released: Mapping[str, Any]) -> dict[str, Any]:
    """Rename the keys of a released state dict to TinyNet's."""
    return {_rename(k, PREFIXES): v for k, v in released.items()}


def to_released_keys(state_dict: Mapping[str, Any]) -> dict[str, Any]:
    """TinyNet's keys in the released layout (the inverse of :func:`to_tinynet_keys`)."""
    inverse = [(ours, released) for released, ours in PREFIXES]
    return {_rename(k, inverse): v for k, v in state_dict.items()}


def load_released(checkpoint: str | Path | Mapping[str, Any], *, config: Mapping[str, Any] | None = None) -> TinyNet:
    """Build TinyNet for a released checkpoint and load it strictly.

    Args:
        checkpoint: ``tinynet_demo.pt`` (read with ``weights_only=True``) or its dict.
        config: TinyNet settings over the ``config`` stored in the checkpoint.
    """
    if isinstance(checkpoint, (str, Path)):
        import torch

        checkpoint = torch.load(checkpoint, map_location="cpu", weights_only=True)
    stored = checkpoint.get("config", {}) if isinstance(checkpoint, Mapping) else {}
    cfg = from_dict(TinyNetConfig, {**dict(stored), **dict(config or {})}, where="tinynet")
    state = to_tinynet_keys(read_state_dict(checkpoint, wrappers=("generator",)))
    return build_and_load(lambda: TinyNet(cfg), state, source=describe_source(checkpoint))
