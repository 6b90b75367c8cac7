"""Finding and downloading weights files: the file level of daclip-kit's one model resolver
(:func:`daclip_kit.model.resolve_model`).

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
from ..options import option
from ..plugins import call_hook, get_registry
from ..specs import WeightSpec
from .hub import download_hub, file_sha256, is_hub_ref
from .paths import ENV_CACHE as ENV_CACHE  # re-exported: it lives in .paths, shared with .hub
from .paths import WEIGHT_SUFFIXES, default_cache_dir, hub_offline

log = logging.getLogger(__name__)


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
            f"Download {spec.filename}{source} and put it at {cache_dir / spec.filename}{fetch}, or give "
            f"the file's path instead of the name {spec.name!r}.")


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
    """Local path of the weights file or folder ``ref``: the file level under the one model resolver,
    :func:`daclip_kit.model.resolve_model`, which is what verbs call (it knows run, checkpoint and model
    folders and the DA-CLIP a restorer goes with).

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
    cache = _cache(cache_dir)
    found = find_weights(ref, search_dirs=search_dirs, cache_dir=cache)
    if isinstance(found, Path):
        return found
    if not download:
        raise WeightsNotFoundError(where_to_get(found, cache, search_dirs))
    return download_weights(found, cache)


def _cache(cache_dir: str | Path | None) -> Path:
    return Path(cache_dir).expanduser() if cache_dir is not None else default_cache_dir()


def find_weights(ref: str | Path, *, search_dirs: Sequence[str | Path] = (),
                 cache_dir: str | Path | None = None) -> Path | WeightSpec:
    """The local path of ``ref`` (see :func:`resolve_weights`), or, for named weights found
    nowhere locally, their :class:`~daclip_kit.specs.WeightSpec` (nothing is downloaded, except
    what a Hub reference ``hf://...`` asks for).

    Raises:
        UnknownComponentError: ``ref`` is neither an existing path nor a registered name.
        WeightsNotFoundError: ``ref`` is a path that does not exist, or a Hub reference that cannot
            be fetched.
    """
    if is_hub_ref(ref):
        return download_hub(str(ref), cache_dir)
    if is_path_like(ref):
        path = Path(ref).expanduser()
        if not path.exists():
            raise WeightsNotFoundError(f"Weights file {str(path)!r} does not exist.")
        return path
    spec = get_weight_spec(str(ref))
    found = call_hook("daclip_kit_resolve_weights", firstresult=True, spec=spec, cache_dir=_cache(cache_dir),
                      search_dirs=tuple(Path(d).expanduser() for d in search_dirs))
    return Path(found) if found is not None else spec


#: Seconds the one connectivity probe waits for the hub before judging it unreachable.
PROBE_TIMEOUT = 2.0
#: ``(host, port)`` -> why it cannot be reached (``""``: it answered), probed once per process.
_PROBED: dict[tuple[str, int], str] = {}


def _hub_address(spec: WeightSpec) -> tuple[str, int]:
    """Where a download of ``spec`` connects first: the hub (``$HF_ENDPOINT``) or the URL's host,
    or the proxy that ``$https_proxy`` & co. name for it."""
    import urllib.parse
    import urllib.request

    url = (os.environ.get("HF_ENDPOINT", "").strip() or "https://huggingface.co") if spec.hf_repo else spec.url
    parts = urllib.parse.urlsplit(url)
    host, port = parts.hostname or "", parts.port or (443 if parts.scheme == "https" else 80)
    proxy = urllib.request.getproxies().get(parts.scheme)
    if proxy and not urllib.request.proxy_bypass(host):
        via = urllib.parse.urlsplit(proxy if "://" in proxy else f"http://{proxy}")
        host, port = via.hostname or host, via.port or 80
    return host, port


def _probe(address: tuple[str, int], timeout: float) -> str:
    """``""`` when a TCP connection to ``address`` opens within ``timeout`` seconds (name look-up
    included), else why not."""
    import socket
    import threading

    outcome: list[str] = []

    def connect() -> None:
        try:
            socket.create_connection(address, timeout=timeout).close()
            outcome.append("")
        except OSError as exc:
            outcome.append(exc.strerror or str(exc) or type(exc).__name__)

    worker = threading.Thread(target=connect, daemon=True, name="daclip-kit-hub-probe")
    worker.start()
    worker.join(timeout)
    return outcome[0] if outcome else f"no answer within {timeout:g} s"


def hub_unreachable(specs: Sequence[WeightSpec], *, timeout: float = PROBE_TIMEOUT) -> str:
    """Why the download locations of ``specs`` cannot be reached (``""`` when they can): decided up
    front, without retries: ``HF_HUB_OFFLINE`` set, or one TCP probe per host (cached for the
    process) that gets no connection within ``timeout`` seconds."""
    if hub_offline():
        return "HF_HUB_OFFLINE is set, so nothing is downloaded"
    for spec in specs:
        if not (spec.hf_repo or spec.url):
            continue
        address = _hub_address(spec)
        if address not in _PROBED:
            _PROBED[address] = _probe(address, timeout)
        if _PROBED[address]:
            return f"{address[0]}:{address[1]} cannot be reached ({_PROBED[address]})"
    return ""


def missing_weights_message(missing: Sequence[tuple[WeightSpec, str]], reason: str, *, cache_dir: Path,
                            search_dirs: Sequence[str | Path] = ()) -> str:
    """One line naming every missing file (``(spec, how to pass it)``, an
    :func:`~daclip_kit.options.option` text), why it is not downloaded, and the three ways to provide them."""
    def source(spec: WeightSpec) -> str:
        if spec.hf_repo:
            return f"https://huggingface.co/{spec.hf_repo}/resolve/main/{spec.hf_filename or spec.filename}"
        return spec.url or spec.description or "no download location"

    files = "; ".join(f"{spec.filename} ({spec.name}, from {source(spec)})" for spec, _ in missing)
    searched = ", ".join(str(Path(d)) for d in (*search_dirs, cache_dir))
    flags = " ".join(hint for _, hint in missing)
    names = " ".join(spec.name for spec, _ in missing if spec.hf_repo or spec.url)
    online = f"run `daclip-kit weights fetch {names}` while online" if names else "download them yourself"
    return (f"{reason}, and {'this file is' if len(missing) == 1 else f'these {len(missing)} files are'} missing "
            f"(searched: {searched}): {files}. Provide {'it' if len(missing) == 1 else 'them'} in one of three ways: "
            f"pass the file{'s' if len(missing) > 1 else ''} ({flags}); put {'it' if len(missing) == 1 else 'them'} "
            f"in a folder given by {option('weights_dir', 'DIR', python='search_dirs=[DIR]')} or in the cache "
            f"{cache_dir}; or {online} "
            "(or rerun this command online: it downloads them once).")


def provide_weights(found: Sequence[tuple[Path | WeightSpec, str]], *, download: bool = True,
                    search_dirs: Sequence[str | Path] = (), cache_dir: str | Path | None = None) -> list[Path]:
    """Paths for :func:`find_weights` results: the missing ones (``(spec, how to pass it)``, an
    :func:`~daclip_kit.options.option` text) are downloaded together, or, when they cannot be
    (``download=False``, ``HF_HUB_OFFLINE``, the hub unreachable: :func:`hub_unreachable`, decided in
    seconds), one error names them all.

    Raises:
        WeightsNotFoundError: something is missing and cannot be downloaded, or a download failed.
    """
    cache = _cache(cache_dir)
    missing = [(item, flag) for item, flag in found if not isinstance(item, Path)]
    if missing:
        specs = [spec for spec, _ in missing]
        nowhere = [spec.name for spec in specs if not (spec.hf_repo or spec.url)]
        reason = (f"downloads are off ({option('no_download', python='download=False')})" if not download
                  else f"{', '.join(nowhere)} cannot be downloaded" if nowhere else hub_unreachable(specs))
        if reason:
            raise WeightsNotFoundError(missing_weights_message(missing, reason, cache_dir=cache,
                                                               search_dirs=search_dirs))
    return [item if isinstance(item, Path) else download_weights(item, cache) for item, _ in found]


def download_weights(spec: WeightSpec, cache_dir: str | Path, *, progress: bool = True) -> Path:
    """Download ``spec`` into ``cache_dir/spec.filename`` (Hugging Face hub or direct URL) and
    check its size (and SHA-256 when the spec has one). Offline (``HF_HUB_OFFLINE``, or the host
    does not answer a probe within :data:`PROBE_TIMEOUT` seconds) it fails at once, without retries.

    Raises:
        WeightsNotFoundError: offline, no known location, network failure or a bad file.
    """
    cache = Path(cache_dir).expanduser()
    if not (spec.hf_repo or spec.url):
        raise WeightsNotFoundError(f"{spec.name} has no direct download location. " + where_to_get(spec, cache))
    unreachable = hub_unreachable([spec])
    if unreachable:
        raise WeightsNotFoundError(f"{unreachable}. " + where_to_get(spec, cache))
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
            _one_handler_for_hub_records()
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


def _one_handler_for_hub_records() -> None:
    """huggingface_hub gives its logger a handler of its own and lets records propagate: where the
    application has configured logging (the CLI), each hub warning would be printed twice."""
    if not logging.getLogger().handlers:
        return
    hub = logging.getLogger("huggingface_hub")
    for handler in list(hub.handlers):
        if type(handler) is logging.StreamHandler:
            hub.removeHandler(handler)

