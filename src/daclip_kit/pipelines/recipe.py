"""Recipes: what a named model is made of (torch-free).

A recipe is a :class:`~daclip_kit.specs.PipelineSpec`. :func:`get_recipe` finds one by name: a
registered pipeline (``irsde-universal``, ``wild-ir``), or any registered backbone, which gives
the recipe of that network alone (its first registered weights; DA-CLIP when it takes
conditioning; its sampler when it is a denoiser). :func:`with_overrides` changes parts of a recipe
by dotted keys, as ``restore --set`` and the benchmark rows do.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

from ..components import config_fields
from ..config import coerce_value, split_setting
from ..errors import ConfigError, UnknownComponentError, suggest
from ..plugins import get_registry
from ..specs import BackboneSpec, PipelineSpec

#: Weights of the DA-CLIP that conditions a backbone used without a pipeline.
DEFAULT_EMBEDDER_WEIGHTS = "daclip-vit-b-32"

#: Keys :func:`with_overrides` accepts besides ``backbone.*``, ``embedder.*`` and ``sampler.*``.
TOP_LEVEL_KEYS = ("backbone", "weights", "embedder", "embedder_weights", "sampler", "steps")


def get_recipe(name: str) -> PipelineSpec:
    """The recipe called ``name``: a pipeline, else the recipe of the backbone ``name``.

    Raises:
        UnknownComponentError: neither a pipeline nor a backbone; lists both.
    """
    pipelines = get_registry("pipelines")
    if name in pipelines:
        return pipelines.get(name)
    backbones = get_registry("backbones")
    if name in backbones:
        return backbone_recipe(backbones.get(name))
    raise UnknownComponentError("model", name, [*pipelines.names(), *backbones.names()],
                                list_command="daclip-kit ls pipelines")


def backbone_recipe(spec: BackboneSpec) -> PipelineSpec:
    """The recipe of one network: its first weights, DA-CLIP when it accepts conditioning, its
    sampler when it is a denoiser."""
    embedder = "daclip" if spec.accepts else ""
    return PipelineSpec(
        name=spec.name, backbone=spec.name, weights=spec.weights[0] if spec.weights else "",
        embedder=embedder, embedder_weights=DEFAULT_EMBEDDER_WEIGHTS if embedder else "",
        sampler=spec.sampler if spec.kind == "denoiser" else "", summary=spec.summary,
    )


def with_sampler(recipe: PipelineSpec, sampler: str) -> PipelineSpec:
    """``recipe`` restored with another sampler; settings the new sampler also has (the SDE's
    ``max_sigma``, ``T``, ``schedule``, ``eps``) carry over, the others are dropped."""
    if sampler == recipe.sampler:
        return recipe
    if not recipe.sampler:
        raise ConfigError(f"{recipe.name!r} restores in one shot ({recipe.backbone}); it takes no sampler.")
    fields = config_fields("samplers", sampler)
    kept = {k: v for k, v in recipe.sampler_config.items() if fields is None or k in fields}
    return dataclasses.replace(recipe, sampler=sampler, sampler_config=kept)


def with_overrides(recipe: PipelineSpec, overrides: Mapping[str, Any]) -> PipelineSpec:
    """Apply ``{"sampler": "mrs", "sampler.order": 3, "steps": 10, "backbone.tlc": True, ...}``.

    Keys: ``backbone``, ``weights``, ``embedder``, ``embedder_weights``, ``sampler``, ``steps``
    and ``backbone.<key>``, ``embedder.<key>``, ``sampler.<key>`` for component settings (checked
    against the component's config when it is built). A new ``sampler`` is applied first.

    Raises:
        ConfigError: an unknown key, with a suggestion.
    """
    items = dict(overrides)
    if "sampler" in items:
        recipe = with_sampler(recipe, str(items.pop("sampler")))
    changes: dict[str, Any] = {}
    sections: dict[str, dict[str, Any]] = {}
    for key, value in items.items():
        section, dot, field = key.partition(".")
        if dot and section in ("backbone", "embedder", "sampler") and field:
            sections.setdefault(section, {})[field] = value
        elif key == "steps":
            changes["steps"] = None if value is None else coerce_value(value, int, "steps")
        elif key in TOP_LEVEL_KEYS:
            changes[key] = "" if value is None else str(value)
        else:
            raise ConfigError(f"Unknown model setting {key!r}.{suggest(key, TOP_LEVEL_KEYS)} Use one of "
                              f"{', '.join(TOP_LEVEL_KEYS)} or backbone.KEY / embedder.KEY / sampler.KEY.")
    for section, values in sections.items():
        current = getattr(recipe, f"{section}_config")
        changes[f"{section}_config"] = {**dict(current), **values}
    if "sampler_config" in changes and not (changes.get("sampler", recipe.sampler)):
        raise ConfigError(f"{recipe.name!r} restores in one shot; sampler settings do not apply.")
    return dataclasses.replace(recipe, **changes)


def layer_overrides(*layers: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """One mapping of :func:`with_overrides` settings that has the effect of applying ``layers`` one
    after the other (a bench row's settings, then the user's ``--sampler``/``--steps``/``--set``).

    :func:`with_overrides` applies a ``sampler`` before every ``sampler.KEY``, so merging the layers
    into one dict would give a layer's new sampler the settings an earlier layer made for its own (an
    IR-SDE row's ``sampler.mode = "sde"`` given to ``mrs``). Here a layer that names a ``sampler``
    drops the earlier layers' ``sampler.KEY`` settings the new sampler does not have, as
    :func:`with_sampler` does with a recipe's; those it shares (the SDE's ``max_sigma``, ``T``,
    ``schedule``, ``eps``) carry over, and a later layer's own settings always win.

    Returns:
        ``(settings, left out)``: the merged settings and the earlier layers' settings that were
        dropped (key -> value).

    Raises:
        UnknownComponentError: a layer names a sampler that is not registered.
    """
    merged: dict[str, Any] = {}
    dropped: dict[str, Any] = {}
    for layer in layers:
        if "sampler" in layer:
            fields = config_fields("samplers", str(layer["sampler"]))
            for key in list(merged):
                section, dot, field = key.partition(".")
                if section == "sampler" and dot and fields is not None and field not in fields:
                    dropped[key] = merged.pop(key)
        merged.update(layer)
    return merged, dropped


def parse_settings(pairs: list[str]) -> dict[str, str]:
    """``["sampler.order=3", "steps=10"]`` -> ``{"sampler.order": "3", "steps": "10"}`` (values are
    typed later, by the component's config)."""
    return dict(split_setting(text, "Setting", "KEY=VALUE, e.g. sampler.order=3") for text in pairs)
