"""Loading the official DA-CLIP / IR-SDE release files (and the peers') into daclip-kit models.

:func:`load_official` is the public name from before :func:`daclip_kit.load_network` existed; it
is the same loading path: the network's spec names its converter, which reads with
``weights_only=True`` and loads strictly.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ..pretrained import load_network


def load_official(kind: str, checkpoint: str | Path | Mapping[str, Any], *,
                  config: Mapping[str, Any] | str | None = None) -> Any:
    """Build the network ``kind`` for an official checkpoint and load it strictly.

    Same as :func:`daclip_kit.load_network`: ``kind`` is a registry name (``"daclip"``,
    ``"irsde-unet"``, ``"irsde-unet-wild"``, ``"nafnet-gopro-w64"``, ``"restormer"``,
    ``"promptir"``, ``"airnet"``, or a plugin's network).

    Args:
        kind: the network's registry name (``daclip-kit ls backbones``; ``daclip`` for DA-CLIP).
        checkpoint: a file path, native folder or an already loaded (possibly wrapped) state dict.
        config: settings over the spec's defaults in the network's or its authors' spelling
            (open_clip model JSON or a bundled config name for ``daclip``; ``network_G.setting``
            for ``irsde-unet``).

    Raises:
        UnknownComponentError: unknown ``kind``.
        CheckpointError: the file cannot be read or its keys do not match (all listed).
    """
    return load_network(kind, checkpoint, config=config)
