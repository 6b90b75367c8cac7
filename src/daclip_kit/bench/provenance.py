"""Provenance recorded with benchmark results: versions, device, git commit, time."""

from __future__ import annotations

import datetime as _dt
import platform
import subprocess
import sys
from importlib import metadata
from pathlib import Path
from typing import Any

from ..plugins import call_hook

_PACKAGES = ("daclip-kit", "torch", "torchvision", "open_clip_torch", "lpips", "numpy", "pillow",
             "scikit-image")


def _version(dist: str) -> str | None:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return None


def _git_commit() -> str | None:
    here = Path(__file__).resolve().parent
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=here, capture_output=True, text=True,
                             timeout=5, check=False)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None if out.returncode == 0 else None


def device_info(device: str) -> dict[str, Any]:
    """Name and properties of ``device`` (``"cpu"``, ``"cuda:0"``, ...)."""
    import torch

    dev = torch.device(device)
    info: dict[str, Any] = {"device": str(dev), "threads": torch.get_num_threads()}
    if dev.type == "cuda" and torch.cuda.is_available():
        idx = dev.index if dev.index is not None else torch.cuda.current_device()
        props = torch.cuda.get_device_properties(idx)
        info.update(name=props.name, memory_gib=round(props.total_memory / 2**30, 1),
                    cuda=torch.version.cuda)
    else:
        info["name"] = platform.processor() or platform.machine()
    return info


def collect(device: str) -> dict[str, Any]:
    """The provenance record, after every ``daclip_kit_update_provenance`` hook has edited it."""
    info: dict[str, Any] = {
        "versions": {name: _version(name) for name in _PACKAGES},
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "device": device_info(device),
        "git_commit": _git_commit(),
        "time_utc": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "argv": list(sys.argv),
    }

    call_hook("daclip_kit_update_provenance", info=info)
    return info
