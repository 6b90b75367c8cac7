"""Finding and downloading named weights.

Resolution order of :func:`resolve_weights`: an explicit ``path``; then the
``daclip_kit_resolve_weights`` hook (plugins first, the built-in cache lookup last); then, only
with ``download=True``, a download into the cache. Nothing is downloaded implicitly.
"""

from __future__ import annotations

import hashlib
import logging
import os
from pathlib import Path

from ..errors import WeightsNotFoundError
from ..specs import WeightSpec

log = logging.getLogger(__name__)

ENV_CACHE = "DACLIP_KIT_CACHE"


def default_cache_dir() -> Path:
    """``$DACLIP_KIT_CACHE`` or ``~/.cache/daclip-kit``."""
    env = os.environ.get(ENV_CACHE, "").strip()
    return Path(env).expanduser() if env else Path.home() / ".cache" / "daclip-kit"


def get_weight_spec(name: str) -> WeightSpec:
    """The registered :class:`~daclip_kit.specs.WeightSpec` called ``name``.

    Raises:
        UnknownComponentError: with close matches and the available names.
    """
    from ..plugins import get_registry

    return get_registry("weights").get(name)


def _size_problem(spec: WeightSpec, path: Path) -> str:
    size = path.stat().st_size
    if spec.size and size != spec.size:
        return f"{path} has {size:,} bytes but {spec.name} has {spec.size:,}; it is incomplete or a different file"
    return ""


def find_cached(spec: WeightSpec, cache_dir: str | Path) -> Path | None:
    """``cache_dir/spec.filename`` when it exists, else ``None``.

    Raises:
        WeightsNotFoundError: the cached file has the wrong size.
    """
    path = Path(cache_dir) / spec.filename
    if not path.is_file():
        return None
    problem = _size_problem(spec, path)
    if problem:
        raise WeightsNotFoundError(f"{problem}. Delete it and run `daclip-kit weights fetch {spec.name}`.")
    return path


def where_to_get(spec: WeightSpec, cache_dir: Path) -> str:
    """A sentence telling the user which file to put where."""
    source = ""
    if spec.hf_repo:
        source = f" (https://huggingface.co/{spec.hf_repo}/resolve/main/{spec.hf_filename or spec.filename})"
    elif spec.url:
        source = f" ({spec.url})"
    return (
        f"Weights {spec.name!r} are not available locally. Download {spec.filename}{source} and put it "
        f"at {cache_dir / spec.filename}, run `daclip-kit weights fetch {spec.name}` while online, "
        f"or pass the file directly (--weights PATH)."
    )


def resolve_weights(name: str, path: str | Path | None = None, cache_dir: str | Path | None = None,
                    download: bool = False) -> Path:
    """Local path of the weights ``name``.

    Args:
        name: registered weights name (``daclip-kit weights list``).
        path: an explicit file; when given it is returned (it must exist) and nothing is looked up.
        cache_dir: cache folder (default :func:`default_cache_dir`).
        download: fetch a missing file from its hub location into ``cache_dir``.

    Raises:
        UnknownComponentError: unknown ``name``.
        WeightsNotFoundError: not found locally (and not downloaded), saying which file to put where.
    """
    if path is not None:
        p = Path(path).expanduser()
        if not p.exists():
            raise WeightsNotFoundError(f"Weights file {str(p)!r} does not exist.")
        return p
    spec = get_weight_spec(name)
    cache = Path(cache_dir).expanduser() if cache_dir is not None else default_cache_dir()
    from ..plugins import get_plugin_manager

    found = get_plugin_manager().hook.daclip_kit_resolve_weights(spec=spec, cache_dir=cache)
    if found is not None:
        return Path(found)
    if not download:
        raise WeightsNotFoundError(where_to_get(spec, cache))
    return download_weights(spec, cache)


def _offline() -> bool:
    return os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in ("1", "true", "yes", "on")


def download_weights(spec: WeightSpec, cache_dir: str | Path, *, progress: bool = True) -> Path:
    """Download ``spec`` into ``cache_dir/spec.filename`` (Hugging Face hub or direct URL) and
    check its size (and SHA-256 when the spec has one).

    Raises:
        WeightsNotFoundError: offline, no known location, network failure or a bad file.
    """
    cache = Path(cache_dir).expanduser()
    if not (spec.hf_repo or spec.url):
        raise WeightsNotFoundError(f"{spec.name} has no known download location. " + where_to_get(spec, cache))
    if _offline():
        raise WeightsNotFoundError("HF_HUB_OFFLINE is set, so nothing is downloaded. " + where_to_get(spec, cache))
    cache.mkdir(parents=True, exist_ok=True)
    target = cache / spec.filename
    try:
        if spec.hf_repo:
            from huggingface_hub import hf_hub_download
            from huggingface_hub.utils import (
                disable_progress_bars,
                enable_progress_bars,
            )

            (enable_progress_bars if progress else disable_progress_bars)()
            got = Path(hf_hub_download(spec.hf_repo, spec.hf_filename or spec.filename, local_dir=cache))
            if got != target:
                os.replace(got, target)
        else:
            from torch.hub import download_url_to_file

            download_url_to_file(spec.url, str(target), progress=progress)
    except Exception as exc:  # noqa: BLE001 - every transport failure gets the same advice
        raise WeightsNotFoundError(f"Downloading {spec.name} failed: {type(exc).__name__}: {exc}. "
                                   + where_to_get(spec, cache)) from exc
    problem = _size_problem(spec, target)
    if not problem and spec.sha256:
        digest = _sha256(target)
        if digest != spec.sha256.lower():
            problem = f"{target} has SHA-256 {digest}, expected {spec.sha256}"
    if problem:
        raise WeightsNotFoundError(f"{problem}. Delete it and fetch again.")
    log.info("%s saved to %s", spec.name, target)
    return target


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()
