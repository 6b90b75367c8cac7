"""Create components by registry name: ``create_backbone("irsde-unet", nf=32)``.

Each factory looks the name up in the plugin registries, imports the lazy target, validates the
keyword config against the component's config dataclass (unknown keys are an error with a
suggestion) and builds the component.
"""

from __future__ import annotations

from typing import Any

from .components import build_config, instantiate, load_spec_target
from .errors import DaclipKitError
from .plugins import get_registry
from .pretrained import load_network

__all__ = ["build_config", "instantiate", "create_embedder", "create_backbone", "create_adapter",
           "create_sampler", "create_degradation", "get_metric", "list_components"]


def _create(kind: str, name: str, config: dict[str, Any]) -> Any:
    if not isinstance(name, str):
        raise DaclipKitError(f"A {kind[:-1]} name must be a string, got {name!r}.")
    return instantiate(get_registry(kind).get(name), config)


def create_embedder(name: str, **config: Any) -> Any:
    """Build the embedding provider ``name`` (``"clip"``, ``"daclip"``, ``"text"``)."""
    return _create("embedders", name, config)


def create_backbone(name: str, *, pretrained: bool | str = False, **config: Any) -> Any:
    """Build the restoration backbone or denoiser ``name`` (``"irsde-unet"``, ...).

    Args:
        name: registry name (``daclip-kit ls backbones``).
        pretrained: ``True`` loads the backbone's first registered weights (downloaded into the
            cache on first use when they have a download location); a weights name or a path
            loads those; ``False`` (default) gives random initialisation.
        **config: settings over the spec's defaults (checked against its config dataclass).

    Example:
        >>> net = create_backbone("irsde-unet", pretrained=True)  # doctest: +SKIP
        >>> nafnet = create_backbone("nafnet-gopro-w64", pretrained="NAFNet-GoPro-width64.pth")  # doctest: +SKIP
    """
    if not pretrained:
        return _create("backbones", name, config)
    spec = get_registry("backbones").get(name)
    if pretrained is True:
        if not spec.weights:
            raise DaclipKitError(f"Backbone {name!r} has no registered weights; pass pretrained=PATH to a file "
                                 "or folder, or pretrained=False.")
        ref: str = spec.weights[0]
    else:
        ref = pretrained
    from .model import provide, resolve_model

    unit, _ = provide(resolve_model(ref))  # any model reference; named weights downloaded on first use
    if unit.network is None:
        raise DaclipKitError(f"pretrained={ref!r} is a DA-CLIP, not a {name} network; use create_embedder('daclip', "
                             "weights=...) for it.")
    return load_network(name, unit.network, config=config or None)


def create_adapter(name: str, **config: Any) -> Any:
    """Build the conditioning adapter ``name`` (``"cross-attention"``, ``"prompt"``)."""
    return _create("adapters", name, config)


def create_sampler(name: str, **config: Any) -> Any:
    """Build the sampler ``name`` (``"irsde"``)."""
    return _create("samplers", name, config)


def create_degradation(name: str, **config: Any) -> Any:
    """Build the degradation generator ``name`` (``"noisy"``, ``"hazy"``, ...)."""
    return _create("degradations", name, config)


def get_metric(name: str) -> Any:
    """Return the metric function/factory registered as ``name``."""
    spec = get_registry("metrics").get(name)
    return load_spec_target(spec, spec.target)


def list_components(kind: str) -> list[str]:
    """Sorted names registered for ``kind`` (``"backbones"``, ``"embedders"``, ...)."""
    return get_registry(kind).names()
