"""Folder snapshots: compare a folder before and after a command that must change nothing."""

from __future__ import annotations

import hashlib
from pathlib import Path


def snapshot(root: Path) -> dict[str, str]:
    """Every entry under ``root`` (itself included) with a digest of its content: files by
    SHA-256, links by target, folders as such. Equal snapshots: nothing was added, removed or
    changed."""
    root = Path(root)
    if not root.exists() and not root.is_symlink():
        return {}
    found: dict[str, str] = {}
    for path in sorted([root, *root.rglob("*")]):
        rel = str(path.relative_to(root))
        if path.is_symlink():
            found[rel] = "link:" + str(path.readlink())
        elif path.is_dir():
            found[rel] = "dir"
        else:
            found[rel] = hashlib.sha256(path.read_bytes()).hexdigest()
    return found
