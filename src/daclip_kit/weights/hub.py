"""Weights on the Hugging Face Hub: ``hf://OWNER/NAME[@REV][/SUBFOLDER]`` references.

``REV`` is a branch, tag or commit (default ``main``). A revision that starts with ``refs/`` takes
three parts (``@refs/pr/1``: a pull request, ``@refs/convert/parquet``); any other revision is one
part, and a ``/`` inside it is written ``%2F`` (``@feature%2Fx`` is the branch ``feature/x``; the
revision is percent-decoded, the subfolder is not). So ``hf://me/x@refs/pr/1/sub`` is revision
``refs/pr/1``, subfolder ``sub``. :meth:`HubRef.to_ref` writes a parsed reference back in this
form.

A reference names a native model folder in a Hub repository (``config.json`` +
``model.safetensors``, at the root or in ``SUBFOLDER``), or one weights file when its last part
ends with a weights suffix (``hf://OWNER/NAME/universal-ir.pth``). :func:`download_hub` fetches it
with ``huggingface_hub.hf_hub_download`` into ``$DACLIP_KIT_CACHE/hub`` (the Hub's own cache
layout: ``models--OWNER--NAME/snapshots/COMMIT/...``), so a second use reads the cache, and with
``HF_HUB_OFFLINE=1`` the cached copy is used without any request. Both files of a folder come
from the same commit.

Every file is checked, each time it is resolved, against the hash the Hub sent with it (the
ETag, or ``X-Linked-Etag`` of an LFS file: the SHA-256 of an LFS file, the git blob SHA-1 of a
small one); a file that does not match is deleted from the cache and refused. This module imports
neither torch nor ``huggingface_hub`` at import time.
"""

from __future__ import annotations

import hashlib
import os
import re
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote

from ..errors import WeightsNotFoundError
from .paths import WEIGHT_SUFFIXES, default_cache_dir
from .paths import hub_offline as hub_offline  # re-exported: daclip_kit.hub.push imports it from here

SCHEME = "hf://"
#: The files of a native folder, downloaded in this order.
NATIVE_FILES = ("config.json", "model.safetensors")
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
_SHA256 = re.compile(r"^[0-9a-f]{64}$")
_HEX40 = re.compile(r"^[0-9a-f]{40}$")  # a git blob id or a commit id
HUB_CACHE = "hub"
#: The written form of a reference, for messages.
REF_FORM = "hf://OWNER/NAME[@REVISION][/SUBFOLDER]"
#: How a revision is written, for messages.
REVISION_RULE = ("REVISION is a branch, tag or commit; one starting with refs/ takes three parts (refs/pr/1, "
                 "refs/convert/parquet); a '/' in any other revision is written %2F (@feature%2Fx)")
#: What git refuses in a ref name (control characters, space, ``~^:?*[\``, ``..``, ``@{``).
_BAD_REVISION = re.compile(r"[\x00-\x20\x7f~^:?*\[\\]|\.\.|@\{")


class HubRefError(WeightsNotFoundError):
    """A malformed ``hf://`` reference."""


class HubDownloadError(WeightsNotFoundError):
    """A Hub download that failed, is not cached while offline, or did not match its hash."""


@dataclass(frozen=True)
class HubRef:
    """A parsed ``hf://OWNER/NAME[@REV][/PATH]``; ``str()`` (:meth:`to_ref`) writes it back.

    Attributes:
        repo_id: ``"OWNER/NAME"``.
        revision: branch, tag, commit or ref, decoded (``"main"`` when not given; ``"refs/pr/1"``,
            ``"feature/x"``).
        path: folder or file inside the repository (``""`` for its root).
    """

    repo_id: str
    revision: str = "main"
    path: str = ""

    @property
    def is_file(self) -> bool:
        """Whether :attr:`path` names one weights file (a weights suffix) rather than a folder."""
        return self.path.lower().endswith(WEIGHT_SUFFIXES)

    def to_ref(self) -> str:
        """The canonical reference: ``hf://OWNER/NAME[@REV][/PATH]``, ``@main`` left out, the
        revision written as :func:`parse_hub_ref` reads it (``parse_hub_ref(r.to_ref()) == r``)."""
        rev = "" if self.revision == "main" else f"@{_revision_text(self.revision)}"
        return f"{SCHEME}{self.repo_id}{rev}" + (f"/{self.path}" if self.path else "")

    def __str__(self) -> str:
        return self.to_ref()


def _escape(part: str) -> str:
    """``part`` with ``%`` and ``/`` percent-encoded, so it reads back as one part."""
    return part.replace("%", "%25").replace("/", "%2F")


def _revision_text(revision: str) -> str:
    """``revision`` as written in a reference: ``refs/A/B`` in three parts (a ``/`` in ``B``
    encoded), anything else as one part (``feature%2Fx``)."""
    parts = revision.split("/")
    if parts[0] == "refs" and len(parts) >= 3:
        return f"refs/{_escape(parts[1])}/{_escape('/'.join(parts[2:]))}"
    text = _escape(revision)
    return "%72efs" if text == "refs" else text  # a revision called "refs" must not start the three-part form


def is_hub_ref(ref: object) -> bool:
    """Whether ``ref`` is an ``hf://`` reference (text, not a :class:`~pathlib.Path`)."""
    return isinstance(ref, str) and ref.startswith(SCHEME)


def parse_hub_ref(ref: str) -> HubRef:
    """Split ``hf://OWNER/NAME[@REV][/PATH]``.

    ``REV`` ends at the first ``/`` unless it starts with ``refs/``: then it is three parts
    (``hf://me/x@refs/pr/1/sub``: revision ``refs/pr/1``, path ``sub``). The revision is
    percent-decoded (``@feature%2Fx``: branch ``feature/x``); the path is taken as written.

    Raises:
        HubRefError: not of that form (the message shows the form and how a revision is written).
    """
    form = REF_FORM
    if not is_hub_ref(ref):
        raise HubRefError(f"{ref!r} is not a Hub reference; write {form}.")
    parts = ref[len(SCHEME):].strip("/").split("/")
    if len(parts) < 2:
        raise HubRefError(f"{ref!r} names no repository; write {form}, e.g. hf://me/my-nafnet.")
    owner, name = parts[0], parts[1]
    path_parts = parts[2:]
    revision = "main"
    if "@" in name:
        name, written = name.split("@", 1)
        if written == "refs":
            if len(path_parts) < 2 or not all(path_parts[:2]):
                raise HubRefError(f"{ref!r} has a revision starting with refs/ but not three parts; write e.g. "
                                  f"hf://{owner}/{name}@refs/pr/1 ({REVISION_RULE}).")
            written, path_parts = "/".join([written, *path_parts[:2]]), path_parts[2:]
        revision = unquote(written)
        if not revision:
            raise HubRefError(f"{ref!r} is not a valid Hub reference: the revision after '@' is empty; write {form} "
                              "(leave out '@' for main).")
        if _BAD_REVISION.search(revision) or any(not p or p.startswith(".") for p in revision.split("/")):
            raise HubRefError(f"{ref!r} has an invalid revision {revision!r} (an empty part, a part starting with "
                              f"'.', '..', a space or one of ~^:?*[\\); {REVISION_RULE}.")
    if any(p in ("", ".", "..") for p in path_parts):
        raise HubRefError(f"{ref!r} has an empty, '.' or '..' part in its subfolder; write {form}.")
    if not (_NAME.match(owner) and _NAME.match(name)):
        raise HubRefError(f"{ref!r} is not a valid Hub reference; write {form} (letters, digits, '-', '_', '.').")
    return HubRef(repo_id=f"{owner}/{name}", revision=revision, path="/".join(path_parts))


def hub_cache_dir(cache_dir: str | Path | None = None) -> Path:
    """``CACHE/hub`` (``CACHE`` = ``cache_dir`` or ``$DACLIP_KIT_CACHE``): where Hub files are kept."""
    return (Path(cache_dir).expanduser() if cache_dir is not None else default_cache_dir()) / HUB_CACHE


def hub_endpoint() -> str | None:
    """``$HF_ENDPOINT`` read now (``huggingface_hub`` reads it once, at import)."""
    return os.environ.get("HF_ENDPOINT", "").strip().rstrip("/") or None


def _digest(h, path: Path) -> str:
    """``h`` (a hashlib object) updated with the file's bytes, read in 1 MiB chunks, as hex."""
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def git_blob_sha1(path: Path) -> str:
    """The git object id of the file (``sha1("blob SIZE\\0" + bytes)``), the Hub's ETag of a small file."""
    return _digest(hashlib.sha1(f"blob {path.stat().st_size}\0".encode()), path)


def file_sha256(path: Path) -> str:
    """SHA-256 of the file's bytes (hex)."""
    return _digest(hashlib.sha256(), path)


def verify_cached_file(pointer: Path, label: str) -> None:
    """Check a file of the Hub cache against the hash it is stored under (its blob's name: the
    ETag the Hub sent). On a mismatch the blob and its snapshot entry are deleted.

    Raises:
        HubDownloadError: the bytes do not hash to the ETag.
    """
    blob = pointer.resolve()
    etag = blob.name
    if _SHA256.match(etag):
        kind, digest = "SHA-256", file_sha256(blob)
    elif _HEX40.match(etag):
        kind, digest = "git SHA-1", git_blob_sha1(blob)
    else:  # not a hash the Hub documents; nothing to compare with
        return
    if digest != etag:
        pointer.unlink(missing_ok=True)
        blob.unlink(missing_ok=True)
        raise HubDownloadError(f"{label} does not match its Hub hash ({kind} {digest[:12]}..., expected "
                               f"{etag[:12]}...); the download was corrupted or tampered with and was deleted. "
                               "Try again; if it persists, do not use this repository.")


def _download(repo_id: str, filename: str, revision: str, cache: Path, offline: bool) -> Path:
    from huggingface_hub import hf_hub_download
    from huggingface_hub.utils import (  # also where huggingface_hub < 0.24 has them
        EntryNotFoundError,
        LocalEntryNotFoundError,
        RepositoryNotFoundError,
        RevisionNotFoundError,
    )

    where = HubRef(repo_id, revision, filename).to_ref()
    try:
        got = hf_hub_download(repo_id, filename, revision=revision, cache_dir=cache, endpoint=hub_endpoint(),
                              local_files_only=offline)
    except LocalEntryNotFoundError as exc:
        if offline:
            raise HubDownloadError(f"{where} is not in the cache ({cache}) and HF_HUB_OFFLINE is set, so nothing "
                                   "is downloaded; run once online (unset HF_HUB_OFFLINE) to cache it.") from None
        raise HubDownloadError(f"Cannot download {where}: {exc}. Check the connection (and HF_ENDPOINT), "
                               "or run once online to cache it.") from None
    except RepositoryNotFoundError:
        raise HubDownloadError(f"Repository {repo_id!r} is not on the Hub or is private; check the name, or log "
                               "in (HF_TOKEN or `huggingface-cli login`) for a private one.") from None
    except RevisionNotFoundError:
        raise HubDownloadError(f"Repository {repo_id!r} has no revision {revision!r}; check the @REVISION "
                               f"({REVISION_RULE}).") from None
    except EntryNotFoundError:
        raise HubDownloadError(f"{where} does not exist; a native folder holds {' and '.join(NATIVE_FILES)} "
                               "(push one with `daclip-kit push`).") from None
    except (OSError, ValueError) as exc:
        raise HubDownloadError(f"Downloading {where} failed: {type(exc).__name__}: {exc}") from None
    path = Path(got)
    verify_cached_file(path, where)
    return path


def _commit_of(path: Path) -> str:
    """The commit of a file in the Hub cache (``.../snapshots/COMMIT/...``)."""
    parts = path.parts
    i = parts.index("snapshots")
    return parts[i + 1]


def download_hub(ref: str, cache_dir: str | Path | None = None) -> Path:
    """Local path of the Hub reference ``ref``: the cached native folder (or file), downloaded on
    first use unless ``HF_HUB_OFFLINE`` is set.

    Raises:
        HubRefError: a malformed reference.
        HubDownloadError: not found, offline and not cached, a network failure, or a file whose hash
            does not match.
    """
    hub = parse_hub_ref(ref)
    cache = hub_cache_dir(cache_dir)
    offline = hub_offline()
    if hub.is_file:
        return _download(hub.repo_id, hub.path, hub.revision, cache, offline)
    prefix = f"{hub.path}/" if hub.path else ""
    first = _download(hub.repo_id, prefix + NATIVE_FILES[0], hub.revision, cache, offline)
    commit = _commit_of(first) if _HEX40.match(_commit_of(first)) else hub.revision
    for name in NATIVE_FILES[1:]:
        _download(hub.repo_id, prefix + name, commit, cache, offline)
    return first.parent


def download_hub_file(repo_id: str, filename: str, revision: str, cache_dir: str | Path | None = None) -> Path:
    """Local path of one file of a Hub repository at ``revision`` (cached; checked against its hash).

    Raises:
        HubDownloadError: not found, offline and not cached, a network failure or a hash mismatch.
    """
    return _download(repo_id, filename, revision, hub_cache_dir(cache_dir), hub_offline())


def commit_of(path: Path) -> str | None:
    """The commit id of a file in the Hub cache (``.../snapshots/COMMIT/...``), else ``None``."""
    try:
        commit = _commit_of(path)
    except (ValueError, IndexError):
        return None
    return commit if _HEX40.match(commit) else None


def weights_arg(text: str) -> str | Path:
    """argparse ``type`` of weights options: an ``hf://`` reference stays text (a
    :class:`~pathlib.Path` would fold its ``//``), anything else becomes a path."""
    return text if is_hub_ref(text) else Path(text)
