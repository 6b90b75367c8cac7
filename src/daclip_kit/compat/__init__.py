"""Loading the official DA-CLIP / IR-SDE release files into daclip-kit models.

:func:`load_official` dispatches on ``kind`` to the converter of each model family; every
converter reads with ``weights_only=True`` and loads strictly.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ..errors import UnknownComponentError
from ..specs import load_target

#: kind -> "module:function(checkpoint, *, config=None)" of the converter.
OFFICIAL_LOADERS: dict[str, str] = {
    "daclip": "daclip_kit.embedders.daclip.convert:load_official_daclip",
    "irsde-unet": "daclip_kit.backbones.irsde_unet.convert:load_official_unet",
    "nafnet": "daclip_kit.backbones.nafnet.convert:load_official_nafnet",
    "nafnet-gopro-w64": "daclip_kit.backbones.nafnet.convert:load_official_nafnet_gopro_w64",
    "nafnet-sidd-w64": "daclip_kit.backbones.nafnet.convert:load_official_nafnet_sidd_w64",
    "restormer": "daclip_kit.backbones.restormer.convert:load_official_restormer",
    "restormer-biasfree": "daclip_kit.backbones.restormer.convert:load_official_restormer_biasfree",
    "promptir": "daclip_kit.backbones.promptir.convert:load_official_promptir",
    "airnet": "daclip_kit.backbones.airnet.convert:load_official_airnet",
}


def load_official(kind: str, checkpoint: str | Path | Mapping[str, Any], *,
                  config: Mapping[str, Any] | None = None) -> Any:
    """Build the model for an official checkpoint and load it strictly.

    Args:
        kind: ``"daclip"`` (open_clip training checkpoint of DA-CLIP), ``"irsde-unet"``
            (IR-SDE ConditionalUNet state dict), or a peer backbone: ``"nafnet"`` (also
            ``"nafnet-gopro-w64"``/``"nafnet-sidd-w64"``), ``"restormer"`` (``"restormer-biasfree"``),
            ``"promptir"``, ``"airnet"`` (see ``docs/backbones.md``).
        checkpoint: a file path or an already loaded (possibly wrapped) state dict.
        config: the official config dict (open_clip model JSON for ``daclip``; the option
            file's ``network_G.setting`` for ``irsde-unet``); ``None`` uses the universal model's.

    Raises:
        UnknownComponentError: unknown ``kind``.
        CheckpointError: the file cannot be read or its keys do not match (all listed).
    """
    target = OFFICIAL_LOADERS.get(kind)
    if target is None:
        raise UnknownComponentError("official model kind", kind, OFFICIAL_LOADERS)
    return load_target(target)(checkpoint, config=config)
