"""Finding and downloading weights: the one resolution path of daclip-kit.

:func:`resolve_weights` takes a file or folder path, or the name of registered weights
(``daclip-kit weights list``). A name is looked up through the ``daclip_kit_resolve_weights``
hook: plugins first (mirrors, offline stores), then the built-in lookup, which searches the
caller's folders (``--weights-dir``), the daclip-kit cache (``$DACLIP_KIT_CACHE``) and torch's hub
cache. Only with ``download=True`` is a missing file fetched into the cache. Restore, bench,
training, the embedders and the metrics all resolve weights here.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from pathlib import Path

from ..errors import WeightsNotFoundError
from ..plugins import call_hook, get_registry
from ..specs import WeightSpec
from .hub import download_hub, file_sha256, is_hub_ref

#: File suffixes that mark a weights reference as a path rather than a registered name.
WEIGHT_SUFFIXES = (".pt", ".pth", ".bin", ".ckpt", ".safetensors")

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

    return get_registry("weights").get(name)


def _size_problem(spec: WeightSpec, path: Path) -> str:
    size = path.stat().st_size
    if spec.size and size != spec.size:
        return f"{path} has {size:,} bytes but {spec.name} has {spec.size:,}; it is incomplete or a different file"
    return ""


def torch_hub_checkpoints() -> Path:
    """``$TORCH_HOME/hub/checkpoints`` (torch's default ``~/.cache/torch/hub/checkpoints``), where
    torchvision and pytorch-fid keep their downloads."""
    torch_home = os.environ.get("TORCH_HOME")
    if torch_home:
        base = Path(torch_home).expanduser()
    else:
        xdg = os.environ.get("XDG_CACHE_HOME")
        base = (Path(xdg).expanduser() if xdg else Path.home() / ".cache") / "torch"
    return base / "hub" / "checkpoints"


def find_local(spec: WeightSpec, cache_dir: str | Path, search_dirs: Sequence[str | Path] = ()) -> Path | None:
    """``spec.filename`` in the first of ``search_dirs``, ``cache_dir`` and torch's hub cache that
    has it, else ``None``.

    Raises:
        WeightsNotFoundError: the file found has the wrong size.
    """
    for folder in (*search_dirs, cache_dir, torch_hub_checkpoints()):
        path = Path(folder).expanduser() / spec.filename
        if path.is_file():
            problem = _size_problem(spec, path)
            if problem:
                raise WeightsNotFoundError(f"{problem}. Delete it and run `daclip-kit weights fetch {spec.name}`.")
            return path
    return None


def where_to_get(spec: WeightSpec, cache_dir: Path, search_dirs: Sequence[str | Path] = ()) -> str:
    """A sentence telling the user which file to put where."""
    source = ""
    if spec.hf_repo:
        source = f" from https://huggingface.co/{spec.hf_repo}/resolve/main/{spec.hf_filename or spec.filename}"
    elif spec.url:
        source = f" from {spec.url}"
    elif spec.description:
        source = f" ({spec.description})"
    searched = ", ".join(str(Path(d)) for d in (*search_dirs, cache_dir))
    fetch = (f", run `daclip-kit weights fetch {spec.name}` while online"
             if spec.hf_repo or spec.url else "")
    return (f"Weights {spec.name!r} ({spec.filename}) are not available locally (searched: {searched}). "
            f"Download {spec.filename}{source} and put it at {cache_dir / spec.filename}{fetch}, or pass "
            "the file itself (--weights PATH / --weights-dir DIR).")


def is_path_like(ref: str | Path) -> bool:
    """Whether ``ref`` names a file or folder rather than registered weights (an ``hf://``
    reference names a folder or file on the Hub, so it is path-like too)."""
    if isinstance(ref, Path):
        return True
    text = str(ref)
    return os.sep in text or "/" in text or text.endswith(WEIGHT_SUFFIXES) or Path(text).exists()


def as_search_dirs(folders: str | Path | Sequence[str | Path] | None) -> list[Path]:
    """``folders`` as a list: one folder, several, or none (``None``)."""
    if folders is None:
        return []
    if isinstance(folders, (str, Path)):
        return [Path(folders)]
    return [Path(f) for f in folders]


def resolve_weights(ref: str | Path, *, download: bool = False, search_dirs: Sequence[str | Path] = (),
                    cache_dir: str | Path | None = None) -> Path:
    """Local path of the weights ``ref``.

    Args:
        ref: a file or folder (returned as it is; it must exist), a Hub reference
            ``hf://OWNER/NAME[@REV][/SUBFOLDER]`` (its cached folder, downloaded on first use
            whatever ``download`` says, since the reference asks for it; see
            :func:`daclip_kit.weights.hub.download_hub`) or a registered weights name
            (``daclip-kit weights list``).
        download: fetch a missing named file from its hub location into the cache.
        search_dirs: folders searched first for the named file (``--weights-dir``).
        cache_dir: cache folder (default :func:`default_cache_dir`).

    Raises:
        UnknownComponentError: ``ref`` is neither an existing path nor a registered name.
        WeightsNotFoundError: a missing path, or named weights not found locally (and not
            downloaded), saying which file to put where; a Hub reference that cannot be fetched
            (offline and not cached, or a file that does not match its hash).
    """
    if is_hub_ref(ref):
        return download_hub(str(ref), cache_dir)
    if is_path_like(ref):
        path = Path(ref).expanduser()
        if not path.exists():
            raise WeightsNotFoundError(f"Weights file {str(path)!r} does not exist.")
        return path
    spec = get_weight_spec(str(ref))
    cache = Path(cache_dir).expanduser() if cache_dir is not None else default_cache_dir()

    found = call_hook("daclip_kit_resolve_weights", firstresult=True, spec=spec, cache_dir=cache,
                      search_dirs=tuple(Path(d).expanduser() for d in search_dirs))
    if found is not None:
        return Path(found)
    if not download:
        raise WeightsNotFoundError(where_to_get(spec, cache, search_dirs))
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
        raise WeightsNotFoundError(f"{spec.name} has no direct download location. " + where_to_get(spec, cache))
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
    except Exception as exc:
        raise WeightsNotFoundError(f"Downloading {spec.name} failed: {type(exc).__name__}: {exc}. "
                                   + where_to_get(spec, cache)) from exc
    problem = _size_problem(spec, target)
    if not problem and spec.sha256:
        digest = file_sha256(target)
        if digest != spec.sha256.lower():
            problem = f"{target} has SHA-256 {digest}, expected {spec.sha256}"
    if problem:
        raise WeightsNotFoundError(f"{problem}. Delete it and fetch again.")
    log.info("%s saved to %s", spec.name, target)
    return target

