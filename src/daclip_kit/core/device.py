"""Choosing a torch device from a user's setting."""

from __future__ import annotations

import torch

from ..errors import ConfigError


def pick_device(device: str | torch.device | None) -> torch.device:
    """``None``, ``""`` or ``"auto"`` -> CUDA when available, else CPU; anything else as given.

    Raises:
        ConfigError: the name is not a torch device, or CUDA is asked for but not available.
    """
    if device is None or (isinstance(device, str) and device.strip().lower() in ("", "auto")):
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(device)
    except RuntimeError as exc:
        raise ConfigError(f"device={device!r} is not a torch device ({exc}); use auto, cpu, cuda or cuda:N.") from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError(f"device={device!r} but CUDA is not available; use --device cpu.")
    return dev
