"""Named weights: the official release files, a local cache and the Hugging Face downloader.

``resolve_weights("daclip-vit-b-32")`` returns the local path of a registered file (plugins may
serve it through the ``daclip_kit_resolve_weights`` hook); ``download=True`` fetches a missing
file into the cache (``$DACLIP_KIT_CACHE``, default ``~/.cache/daclip-kit``). An
``hf://OWNER/NAME[@REV][/SUBFOLDER]`` reference is fetched from the Hugging Face Hub into the same
cache (:mod:`daclip_kit.weights.hub`).
"""

from __future__ import annotations

from .fetch import (
    ENV_CACHE,
    as_search_dirs,
    default_cache_dir,
    download_weights,
    find_local,
    get_weight_spec,
    is_path_like,
    resolve_weights,
)
from .hub import download_hub, is_hub_ref, parse_hub_ref, weights_arg

__all__ = [
    "ENV_CACHE",
    "as_search_dirs",
    "default_cache_dir",
    "download_hub",
    "download_weights",
    "find_local",
    "is_hub_ref",
    "is_path_like",
    "parse_hub_ref",
    "get_weight_spec",
    "resolve_weights",
    "weights_arg",
]
