"""The official DA-CLIP model configs (open_clip model JSON), shipped as package data.

``daclip_ViT-B-32`` is the universal model of the paper; ``daclip_ViT-L-14`` is the Wild-IR one.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Mapping
from functools import cache
from pathlib import Path
from typing import Any

from ...errors import ConfigError, UnknownComponentError

CONFIG_DIR = Path(__file__).with_name("model_configs")

#: Keys of an open_clip model JSON that ``open_clip.CLIP`` does not take as arguments.
IGNORED_KEYS = ("custom_text",)


def config_names() -> list[str]:
    """Names of the bundled configs (``["daclip_ViT-B-32", "daclip_ViT-L-14"]``)."""
    return sorted(p.stem for p in CONFIG_DIR.glob("*.json"))


@cache
def _read(name: str) -> dict[str, Any]:
    return json.loads((CONFIG_DIR / f"{name}.json").read_text())


def model_config(name: str) -> dict[str, Any]:
    """Return a copy of the bundled open_clip config ``name``.

    Raises:
        UnknownComponentError: ``name`` is not bundled.
    """
    if name not in config_names():
        raise UnknownComponentError("DA-CLIP model config", name, config_names())
    return copy.deepcopy(_read(name))


def clip_kwargs(config: Mapping[str, Any]) -> dict[str, Any]:
    """Keyword arguments for ``open_clip.CLIP`` from an open_clip model JSON dict.

    Raises:
        ConfigError: ``embed_dim``, ``vision_cfg`` or ``text_cfg`` is missing.
    """
    missing = [k for k in ("embed_dim", "vision_cfg", "text_cfg") if k not in config]
    if missing:
        raise ConfigError(
            f"DA-CLIP config lacks {missing}; expected an open_clip model JSON such as "
            f"{CONFIG_DIR / 'daclip_ViT-B-32.json'}."
        )
    return {k: copy.deepcopy(v) for k, v in config.items() if k not in IGNORED_KEYS}
