"""Tiny random models for trying the demo's page offline and for its tests (a few MB, no download).

Their "restorations" are noise: they exercise every part of the page, not the paper's results.
"""

from __future__ import annotations

from pathlib import Path

from ..embedders.plugin import TINY_CLIP_CONFIG
from ..factory import create_backbone
from ..pretrained import save_network


def write_tiny_models(folder: str | Path, *, seed: int = 0) -> tuple[Path, Path]:
    """Write a tiny random IR-SDE U-Net and a tiny random DA-CLIP as native folders.

    Args:
        folder: where to write ``unet/`` and ``daclip/`` (created).
        seed: torch seed of the random weights.

    Returns:
        ``(unet folder, DA-CLIP folder)``, for ``daclip-kit demo --weights UNET --daclip-weights DACLIP``
        or :class:`~daclip_kit.demo.core.DemoSettings`.
    """
    import torch

    from ..embedders.daclip.convert import save_daclip
    from ..embedders.daclip.model import DaCLIP

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(seed)
    save_daclip(DaCLIP.from_config(TINY_CLIP_CONFIG), folder / "daclip")
    net = create_backbone("irsde-unet", nf=32, ch_mult=(1, 1), context_dim=32)
    save_network(net, folder / "unet", name="irsde-unet")
    return folder / "unet", folder / "daclip"
