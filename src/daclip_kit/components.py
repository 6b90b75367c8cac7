"""Building a registered component from its spec: the config dataclass checks the settings.

:func:`build_config` validates keyword settings against a spec's ``config`` dataclass (unknown
keys are errors with a suggestion, values are typed), :func:`instantiate` builds the component,
and :func:`check_component` validates a run file's component section before anything runs.
The public ``create_*`` functions (:mod:`daclip_kit.factory`) and :func:`daclip_kit.load_network`
build through here.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

from .config import Component, from_dict, to_dict
from .errors import ConfigError, DaclipKitError, PluginLoadError
from .plugins import get_registry
from .specs import ComponentSpec, load_target


def config_fields(kind: str, name: str) -> set[str] | None:
    """Field names of the config dataclass of the registered component ``name`` (``None``: it
    takes plain keywords)."""
    spec = get_registry(kind).get(name)
    if spec.config is None:
        return None
    return {f.name for f in dataclasses.fields(load_target(spec.config)) if f.init}


def load_spec_target(spec: ComponentSpec, target: str) -> Any:
    """Import ``target`` of ``spec``; an import failure names the component and the fix.

    Raises:
        PluginLoadError: the module or attribute cannot be imported.
    """
    try:
        return load_target(target)
    except (ImportError, AttributeError) as exc:
        raise PluginLoadError(
            f"{spec.name!r} points at {target!r}, which cannot be imported: "
            f"{type(exc).__name__}: {exc}. Install the extra it needs or fix the plugin."
        ) from exc


def build_config(spec: ComponentSpec, overrides: dict[str, Any] | None = None) -> Any:
    """The config of ``spec``: its defaults merged with ``overrides``.

    Returns the config dataclass instance when the spec names one, else the merged kwargs dict.
    """
    merged = {**dict(spec.defaults), **(overrides or {})}
    if spec.config is None:
        return merged
    return from_dict(load_spec_target(spec, spec.config), merged, where=spec.name)


def instantiate(spec: ComponentSpec, config: dict[str, Any] | None = None) -> Any:
    """Build the component described by ``spec`` with ``config`` keyword values."""
    cfg = build_config(spec, config)
    factory = load_spec_target(spec, spec.target)
    if spec.config is None:
        try:
            return factory(**cfg)
        except TypeError as exc:
            raise ConfigError(f"Cannot build {spec.name!r} with {cfg}: {exc}") from exc
    return factory(cfg)


def check_component(kind: str, section: Component, where: str, *, extra: Mapping[str, Any] | None = None) -> Component:
    """Validate ``section`` against the config of the registered ``kind`` component it names and
    return it with typed options (every field of the config, so saved runs are explicit).

    Raises:
        ConfigError: unknown name (with suggestions) or invalid settings, naming ``where``.
    """
    try:
        spec = get_registry(kind).get(section.name)
        cfg = build_config(spec, {**dict(section.options), **dict(extra or {})})
    except ConfigError as exc:
        raise ConfigError(f"[{where}] {exc}") from None
    except DaclipKitError as exc:
        raise ConfigError(f"[{where}] name = {section.name!r}: {exc}") from None
    if dataclasses.is_dataclass(cfg):
        values = to_dict(cfg)
        for key in extra or {}:
            values.pop(key, None)
        return Component(section.name, values)
    return section
