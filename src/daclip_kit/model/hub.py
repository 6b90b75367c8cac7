"""Models on the Hugging Face Hub (torch-free).

``hf://OWNER/NAME[@REV][/SUB]`` names a model folder (``model_index.json`` and its component
folders, as ``daclip-kit push`` writes a run), a native folder, or one weights file. Every file of a
model comes from the same commit as the first one fetched, so a component found beside the restorer
(``../daclip``) is the one pushed with it.
"""

from __future__ import annotations

import json
import posixpath
from pathlib import Path

from ..checkpoint import CONFIG_NAME, WEIGHTS_NAME
from ..core.ood import MAX_PROB, STATE_FILE
from ..errors import WeightsNotFoundError
from ..weights.hub import HubDownloadError, HubRef, commit_of, download_hub_file, parse_hub_ref
from .unit import MODEL_INDEX

#: The files of one native component folder.
NATIVE_FILES = (CONFIG_NAME, WEIGHTS_NAME)


def _folder(repo_id: str, folder: str, revision: str, cache_dir: str | Path | None) -> Path:
    """The cached native folder ``folder`` of the repository at ``revision``."""
    prefix = f"{folder}/" if folder else ""
    first = download_hub_file(repo_id, prefix + NATIVE_FILES[0], revision, cache_dir)
    for name in NATIVE_FILES[1:]:
        download_hub_file(repo_id, prefix + name, commit_of(first) or revision, cache_dir)
    if _needs_state(first):
        download_hub_file(repo_id, prefix + STATE_FILE, commit_of(first) or revision, cache_dir)
    return first.parent


def _needs_state(config_path: Path) -> bool:
    """Whether the folder of this ``config.json`` is a DA-CLIP whose calibration keeps reference
    state in :data:`~daclip_kit.core.ood.STATE_FILE` (any statistic but the maximum probability)."""
    try:
        data = json.loads(config_path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    config = data.get("config") if isinstance(data, dict) else None
    ood = config.get("ood") if isinstance(config, dict) else None
    return isinstance(ood, dict) and ood.get("statistic", MAX_PROB) != MAX_PROB


def _base(repo_id: str, commit: str, path: str) -> str:
    return HubRef(repo_id, commit, path).to_ref()


def hub_model(ref: str, cache_dir: str | Path | None = None) -> tuple[Path, str]:
    """``(local path, base reference)`` of the Hub model ``ref``: the cached model folder, native
    folder or file; the base (``hf://OWNER/NAME@COMMIT/SUB``) is where relative component references
    are resolved from (:func:`hub_sibling`).

    Raises:
        HubRefError: a malformed reference.
        HubDownloadError: not found, offline and not cached, a network failure or a hash mismatch.
    """
    hub = parse_hub_ref(ref)
    if hub.is_file:
        path = download_hub_file(hub.repo_id, hub.path, hub.revision, cache_dir)
        return path, _base(hub.repo_id, commit_of(path) or hub.revision, posixpath.dirname(hub.path))
    prefix = f"{hub.path}/" if hub.path else ""
    try:
        index = download_hub_file(hub.repo_id, prefix + MODEL_INDEX, hub.revision, cache_dir)
    except HubDownloadError:
        index = None  # a native folder (or nothing: its own error below says so)
    if index is None:
        folder = _folder(hub.repo_id, hub.path, hub.revision, cache_dir)
        return folder, _base(hub.repo_id, commit_of(folder / CONFIG_NAME) or hub.revision, hub.path)
    commit = commit_of(index) or hub.revision
    data = json.loads(index.read_text(encoding="utf-8"))
    for key in ("restorer", "daclip"):
        name = data.get(key) if isinstance(data, dict) else None
        if isinstance(name, str) and name and "/" not in name.strip("/") and not name.startswith(".."):
            _folder(hub.repo_id, prefix + name, commit, cache_dir)
    return index.parent, _base(hub.repo_id, commit, hub.path)


def hub_sibling(base: str, relative: str, cache_dir: str | Path | None = None) -> Path:
    """The cached native folder ``relative`` (e.g. ``../daclip``) seen from the folder of the Hub
    reference ``base`` (same repository and commit).

    Raises:
        WeightsNotFoundError: it leaves the repository, or cannot be fetched.
    """
    hub = parse_hub_ref(base)
    joined = posixpath.normpath(posixpath.join(hub.path or ".", relative))
    if joined.startswith(("..", "/")):
        raise WeightsNotFoundError(f"{relative!r} seen from {base} leaves the repository; push the model again with "
                                   "`daclip-kit push`.")
    return _folder(hub.repo_id, "" if joined == "." else joined, hub.revision, cache_dir)
