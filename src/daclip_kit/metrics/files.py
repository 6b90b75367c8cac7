"""Finding the pretrained networks that LPIPS and FID need, without ever downloading them.

A file is looked up, in order, in ``weights_dir`` (``--weights-dir``), in the daclip-kit cache
(``$DACLIP_KIT_CACHE``, default ``~/.cache/daclip-kit``) and in the torch hub cache
(``$TORCH_HOME/hub/checkpoints``, where torchvision and pytorch-fid store their downloads).
"""

from __future__ import annotations

import os
from pathlib import Path

from ..errors import WeightsNotFoundError


def cache_dir() -> Path:
    """The daclip-kit cache folder (``$DACLIP_KIT_CACHE`` or ``~/.cache/daclip-kit``)."""
    env = os.environ.get("DACLIP_KIT_CACHE")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "daclip-kit"


def torch_hub_checkpoints() -> Path:
    """``$TORCH_HOME/hub/checkpoints`` (torch's default ``~/.cache/torch/hub/checkpoints``)."""
    torch_home = os.environ.get("TORCH_HOME")
    if torch_home:
        base = Path(torch_home).expanduser()
    else:
        xdg = os.environ.get("XDG_CACHE_HOME")
        base = (Path(xdg).expanduser() if xdg else Path.home() / ".cache") / "torch"
    return base / "hub" / "checkpoints"


def search_dirs(weights_dir: str | Path | None = None) -> list[Path]:
    """Folders searched for metric weights, in order."""
    dirs = [Path(weights_dir).expanduser()] if weights_dir else []
    return dirs + [cache_dir(), torch_hub_checkpoints()]


def find_weights_file(filename: str, *, url: str, purpose: str,
                      weights_dir: str | Path | None = None) -> Path:
    """Return the path of ``filename`` in the first folder of :func:`search_dirs` that has it.

    Raises:
        WeightsNotFoundError: naming the file, every folder searched, where to download it and
            where to put it. Nothing is downloaded.
    """
    dirs = search_dirs(weights_dir)
    for d in dirs:
        candidate = d / filename
        if candidate.is_file():
            return candidate
    searched = ", ".join(str(d) for d in dirs)
    target = dirs[0]
    raise WeightsNotFoundError(
        f"{purpose} needs the file {filename!r}, which was not found (searched: {searched}). "
        f"Download it from {url} and put it into {target} (or pass --weights-dir DIR / "
        f"weights_dir= pointing at the folder that holds it). daclip-kit never downloads it "
        f"silently and never substitutes another network."
    )
