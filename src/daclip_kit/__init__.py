"""daclip-kit: DA-CLIP (Luo et al., ICLR 2024) as a plugin-style restoration toolkit.

``import daclip_kit`` is cheap: torch and every model are imported only when used. The public
functions below are resolved lazily through module ``__getattr__``, and so is ``__version__``: the
installed distribution's version (pyproject.toml's), or ``"0+unknown"`` for a source tree on
``sys.path`` that was never installed.

Example:
    >>> import daclip_kit
    >>> "irsde-unet" in daclip_kit.list_components("backbones")
    True
"""

from __future__ import annotations

from ._lazy import lazy_exports
from .errors import (
    CheckpointError,
    ConfigError,
    DaclipKitError,
    DuplicateComponentError,
    InputError,
    NonFiniteError,
    PluginLoadError,
    ShapeError,
    UnknownComponentError,
    WeightsNotFoundError,
)
from .hookspecs import hookimpl
from .types import DEGRADATIONS, Conditioning, ImageEmbedding

_LAZY = {
    "__version__": "daclip_kit._version",  # the installed distribution's metadata, "0+unknown" if none
    "create_embedder": "daclip_kit.factory",
    "create_backbone": "daclip_kit.factory",
    "create_adapter": "daclip_kit.factory",
    "create_sampler": "daclip_kit.factory",
    "create_degradation": "daclip_kit.factory",
    "get_metric": "daclip_kit.factory",
    "list_components": "daclip_kit.factory",
    "get_plugin_manager": "daclip_kit.plugins",
    "get_registry": "daclip_kit.plugins",
    "register_plugin": "daclip_kit.plugins",
    "sample": "daclip_kit.core.sampling",
    "load_network": "daclip_kit.pretrained",
    "save_network": "daclip_kit.pretrained",
    "load_official": "daclip_kit.compat",
    "restore": "daclip_kit.api",
    "load": "daclip_kit.api",
    "classify": "daclip_kit.api",
    "network_about": "daclip_kit.api",
    "build_pipeline": "daclip_kit.pipelines.build",
}

__all__ = [
    "hookimpl",
    "DEGRADATIONS",
    "Conditioning",
    "ImageEmbedding",
    "CheckpointError",
    "ConfigError",
    "DaclipKitError",
    "DuplicateComponentError",
    "InputError",
    "NonFiniteError",
    "PluginLoadError",
    "ShapeError",
    "UnknownComponentError",
    "WeightsNotFoundError",
] + list(_LAZY)

__getattr__ = lazy_exports(__name__, _LAZY, globals())


def __dir__() -> list[str]:
    return sorted(__all__)
