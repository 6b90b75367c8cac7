"""Where weights live and what a weights file is called: the pieces :mod:`.fetch` (named weights)
and :mod:`.hub` (``hf://`` references) both use. It imports nothing of daclip-kit, so both import
it and neither imports the other for these."""

from __future__ import annotations

import os
from pathlib import Path

#: File suffixes that mark a weights reference as a path rather than a registered name (and the
#: last part of an ``hf://`` reference as one file rather than a folder).
WEIGHT_SUFFIXES = (".pt", ".pth", ".bin", ".ckpt", ".safetensors")

#: The environment variable naming the daclip-kit cache folder.
ENV_CACHE = "DACLIP_KIT_CACHE"


def default_cache_dir() -> Path:
    """``$DACLIP_KIT_CACHE`` or ``~/.cache/daclip-kit``."""
    env = os.environ.get(ENV_CACHE, "").strip()
    return Path(env).expanduser() if env else Path.home() / ".cache" / "daclip-kit"


def hub_offline() -> bool:
    """Whether ``HF_HUB_OFFLINE`` is set (read now: ``huggingface_hub`` reads it once, at import)."""
    return os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in ("1", "true", "yes", "on")
