"""Choosing a torch device from a user's setting."""

from __future__ import annotations

import torch


def pick_device(device: str | torch.device | None) -> torch.device:
    """``None``, ``""`` or ``"auto"`` -> CUDA when available, else CPU; anything else as given."""
    if device is None or (isinstance(device, str) and device.strip().lower() in ("", "auto")):
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)
