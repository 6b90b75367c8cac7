"""Networks from checkpoints: the one loading path of daclip-kit.

:func:`load_network` builds a registered network and loads weights into it strictly, whatever
the file: a native folder (``config.json`` + ``model.safetensors``, :func:`save_network`), a
released checkpoint in its authors' layout (through the component's ``convert`` function on its
spec, so a plugin ships the converter for its own weights), or a plain state dict. ``restore``,
``bench``, ``convert``, training's ``init_from`` and :func:`daclip_kit.load_official` all load here.

Native ``config.json`` records what the folder holds::

    {"format": "daclip-kit/1", "component": "backbones", "name": "irsde-unet",
     "config": {...}, "sampler": {"name": "irsde", "config": {...}}}

``sampler`` is optional: the settings a diffusion network was trained with, used by ``restore``.
``daclip`` (optional) records the DA-CLIP a conditioned restorer was trained with, ``null`` for one
trained without an embedder (:mod:`daclip_kit.model.unit`); ``provenance`` (optional) says where the
weights came from (run, step, base model, data, daclip-kit version). Any other key is an error (a
typo must not be ignored). Folders written before this format (a flat config, ``kind`` for
DA-CLIP) still load.

Loading is guarded: a config that describes a network far larger than the file holds is refused
before anything is allocated, and weights holding NaN or Inf are refused unless the caller passes
``allow_nonfinite=True``.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .checkpoint import (
    CONFIG_NAME,
    WEIGHTS_NAME,
    build_and_load,
    describe_source,
    network_config,
    nonfinite_allowed,
    nonfinite_message,
    nonfinite_weights_allowed,
    read_checkpoint,
    read_json_config,
    read_pretrained_weights,
    read_state_dict,
    recording_nonfinite_checks,
    save_pretrained,
    state_dict_keys,
)
from .components import instantiate
from .errors import CheckpointError, UnknownComponentError
from .plugins import get_registry
from .specs import ComponentSpec, load_target

if TYPE_CHECKING:
    from torch import nn

FORMAT = "daclip-kit/1"
#: The keys of a native ``config.json``; any other is an error.
NATIVE_KEYS = ("format", "component", "name", "config", "sampler", "daclip", "provenance")
#: Registry kinds that hold networks loadable from checkpoints, searched in this order.
NETWORK_KINDS = ("backbones", "embedders")


@dataclass(frozen=True)
class NativeInfo:
    """What a native folder's ``config.json`` says.

    Attributes:
        name: registry name of the network (``""`` in folders of the old flat format).
        component: its registry kind (``"backbones"``, ``"embedders"``).
        config: keyword config of the network.
        sampler: ``{"name": ..., "config": {...}}`` the network was trained with, or ``None``.
        provenance: where the weights came from, as recorded (``{}``: not recorded).
    """

    name: str
    component: str
    config: dict[str, Any] = field(default_factory=dict)
    sampler: dict[str, Any] | None = None
    provenance: dict[str, Any] = field(default_factory=dict)


def find_network_spec(name: str) -> tuple[str, ComponentSpec]:
    """``(kind, spec)`` of the network ``name`` (a backbone, or an embedder such as ``daclip``).

    Raises:
        UnknownComponentError: with the names of both kinds.
    """
    available: list[str] = []
    for kind in NETWORK_KINDS:
        registry = get_registry(kind)
        if name in registry:
            return kind, registry.get(name)
        available += registry.names()
    raise UnknownComponentError("network", name, available, list_command="daclip-kit ls backbones")


def native_info(directory: str | Path) -> NativeInfo:
    """Read the ``config.json`` of a native folder (either format), strictly.

    Raises:
        CheckpointError: not a folder with ``config.json`` and ``model.safetensors``; a
            ``config.json`` that is not a JSON object; an unknown format or key (named); or an
            entry of the wrong type.
    """
    path = Path(directory) / CONFIG_NAME
    data = read_json_config(Path(directory))

    def bad(message: str) -> CheckpointError:
        return CheckpointError(f"{path}: {message}. Fix the file or write the folder again with "
                               "save_network() / `daclip-kit convert`.")

    if "format" in data:
        if data["format"] != FORMAT:
            raise CheckpointError(f"{path} has format {data['format']!r}, but this daclip-kit reads {FORMAT!r}; "
                                  "upgrade daclip-kit or write the folder again with this version.")
        unknown = sorted(str(k) for k in data if k not in NATIVE_KEYS)
        if unknown:
            raise bad(f"unknown key {unknown[0]!r}" + (f" (and {len(unknown) - 1} more)" if len(unknown) > 1 else "")
                      + f"; the keys are {', '.join(NATIVE_KEYS)}")
        name, component = data.get("name", ""), data.get("component", "backbones")
        config, sampler = data.get("config", {}), data.get("sampler")
        if not isinstance(name, str):
            raise bad(f"'name' must be a registry name (text), not {type(name).__name__}")
        if component not in NETWORK_KINDS:
            raise bad(f"'component' is {component!r}, expected one of {', '.join(NETWORK_KINDS)}")
        if not isinstance(config, Mapping):
            raise bad(f"'config' must be an object of settings, not {type(config).__name__}")
        if sampler is not None:
            if not isinstance(sampler, Mapping):
                raise bad(f"'sampler' must be an object {{\"name\": ..., \"config\": {{...}}}}, "
                          f"not {type(sampler).__name__}")
            extra = sorted(str(k) for k in sampler if k not in ("name", "config"))
            if extra:
                raise bad(f"unknown key {extra[0]!r} in 'sampler'; its keys are name, config")
            if not isinstance(sampler.get("name"), str) or not sampler.get("name"):
                raise bad("'sampler' needs a 'name' (a registry name such as 'irsde')")
            if not isinstance(sampler.get("config", {}), Mapping):
                raise bad("'sampler.config' must be an object of settings")
        provenance = data.get("provenance") or {}
        if not isinstance(provenance, Mapping):
            raise bad(f"'provenance' must be an object, not {type(provenance).__name__}")
        if data.get("daclip") is not None:
            from .model.unit import read_record

            read_record(data["daclip"], str(path))
        return NativeInfo(name, component, dict(config), dict(sampler) if sampler else None, dict(provenance))
    if data.get("kind") == "daclip":
        unknown = sorted(str(k) for k in data if k not in ("kind", "model_config"))
        if unknown:
            raise bad(f"unknown key {unknown[0]!r} in a DA-CLIP config; the keys are kind, model_config")
        return NativeInfo("daclip", "embedders", {"model_config": data.get("model_config")})
    return NativeInfo("", "backbones", {k: v for k, v in data.items() if k != "kind"})


def is_native_folder(path: str | Path) -> bool:
    """Whether ``path`` is a native model folder: ``config.json`` and ``model.safetensors`` (a training
    run folder also holds a ``config.json``, its run config, but no weights)."""
    p = Path(path)
    return p.is_dir() and (p / CONFIG_NAME).is_file() and (p / WEIGHTS_NAME).is_file()


def recorded_degradations(path: str | Path) -> tuple[str, ...] | None:
    """The degradation words a native DA-CLIP folder records (``config.degradations``: its
    training data's, in label order); ``None`` for anything else (a file, an older folder)."""
    if not is_native_folder(path):
        return None
    words = native_info(path).config.get("degradations")
    return tuple(words) if isinstance(words, list) and words else None


def load_network(name: str | None, checkpoint: str | Path | Mapping[str, Any], *,
                 config: Mapping[str, Any] | str | None = None, allow_nonfinite: bool | None = None) -> nn.Module:
    """Build the network ``name`` and load ``checkpoint`` into it strictly.

    Args:
        name: registry name of the network (``"irsde-unet"``, ``"nafnet-gopro-w64"``, ``"daclip"``,
            or a plugin's). ``None`` takes the name recorded in a native folder.
        checkpoint: a native folder, a released file (``.pth``/``.pt``/``.ckpt``/``.safetensors``)
            or an in-memory state dict (possibly wrapped, with a ``module.`` prefix).
        config: for released files, settings over the spec's defaults (the converter also accepts
            its authors' spellings, e.g. an official ``network_G.setting``) or another registry
            name whose defaults to use; ignored for native folders, which record their config.
        allow_nonfinite: load weights holding NaN or Inf (``False``: refuse them). ``None``
            (default) follows an enclosing :func:`daclip_kit.checkpoint.nonfinite_weights_allowed`
            block, which is how callers above the factory (``classify --allow-nonfinite``) pass
            it; outside one, non-finite weights are refused.

    Returns:
        The network in eval mode, on the CPU.

    Raises:
        UnknownComponentError: ``name`` is not registered.
        CheckpointError: unreadable checkpoint, a folder holding another architecture, a config
            far larger than the checkpoint, keys that do not match (counted, the first few named),
            or non-finite weights (unless allowed).

    Example:
        >>> import daclip_kit  # doctest: +SKIP
        >>> unet = daclip_kit.load_network("irsde-unet", "universal-ir.pth")  # doctest: +SKIP
        >>> wild = daclip_kit.load_network("irsde-unet-wild", "wild-ir.pth")  # doctest: +SKIP
    """
    scope = contextlib.nullcontext() if allow_nonfinite is None else nonfinite_weights_allowed(allow_nonfinite)
    with scope, recording_nonfinite_checks() as checked:
        net = _load_network(name, checkpoint, config)
        if not checked and not nonfinite_allowed():
            # converters that load without load_strict (a plugin's own code) are checked here too
            problem = nonfinite_message(net.state_dict(), source=describe_source(checkpoint))
            if problem:
                raise CheckpointError(problem)
    return net


def _load_network(name: str | None, checkpoint: str | Path | Mapping[str, Any],
                  config: Mapping[str, Any] | str | None) -> nn.Module:
    if isinstance(checkpoint, (str, Path)) and Path(checkpoint).is_dir():
        return _load_native(name, Path(checkpoint))
    if name is None:
        raise CheckpointError(f"{describe_source(checkpoint)} is not a native folder, so it does not say which "
                              "network it holds; name the network (e.g. load_network('irsde-unet', path)).")
    _, spec = find_network_spec(name)
    if isinstance(config, str):
        settings: Mapping[str, Any] | str | None = config
    else:
        settings = {**dict(spec.defaults), **dict(config or {})} or None
    if spec.convert is not None:
        convert: Callable[..., nn.Module] = load_target(spec.convert)
        return convert(checkpoint, config=settings).eval()
    if isinstance(settings, str):
        settings = find_network_spec(settings)[1].defaults
    state = read_state_dict(checkpoint)
    net: nn.Module = build_and_load(lambda: instantiate(spec, dict(settings or {})), state,
                                    source=describe_source(checkpoint), config=dict(settings or {}))
    return net


def _load_native(name: str | None, folder: Path) -> nn.Module:
    info = native_info(folder)
    wanted = name or info.name
    if not wanted:
        raise CheckpointError(f"{folder} does not record which network it holds (an older folder); name it, "
                              "e.g. load_network('irsde-unet', folder).")
    kind, spec = find_network_spec(wanted)
    if info.name and info.name != wanted:
        _, recorded = find_network_spec(info.name)
        if recorded.target != spec.target:
            raise CheckpointError(f"{folder} holds a {info.name!r} network, not {wanted!r}; load it as "
                                  f"{info.name!r} or pick the matching weights.")
        spec = recorded
    if kind == "embedders" or getattr(spec, "architecture_from_weights", False):
        if spec.convert is None:
            raise CheckpointError(f"{spec.name!r} cannot load network folders (its spec has no convert).")
        convert: Callable[..., nn.Module] = load_target(spec.convert)
        return convert(folder).eval()
    state = read_pretrained_weights(folder)
    net: nn.Module = build_and_load(lambda: instantiate(spec, info.config), state, source=str(folder),
                                    config=info.config)
    return net


def save_network(module: nn.Module, directory: str | Path, *, name: str, config: Mapping[str, Any] | None = None,
                 component: str = "backbones", sampler: Mapping[str, Any] | None = None,
                 daclip: Mapping[str, Any] | bool | None = False, provenance: Mapping[str, Any] | None = None,
                 overwrite: bool = False) -> Path:
    """Write ``module`` as a native folder that :func:`load_network` reads back.

    Args:
        module: the network.
        directory: the folder to create (written atomically).
        name: its registry name (``"irsde-unet"``).
        config: its keyword config (default :func:`~daclip_kit.checkpoint.network_config`).
        component: registry kind of ``name``.
        sampler: ``{"name": ..., "config": {...}}`` of the sampler it was trained with.
        daclip: the DA-CLIP a conditioned restorer was trained with
            (:func:`daclip_kit.model.unit.daclip_record`), ``None`` for a restorer trained without an
            embedder, ``False`` (default) to record nothing.
        provenance: where the weights came from (run, step, base model, data, version).
        overwrite: replace an existing model folder.
    """
    cfg = dict(network_config(module) if config is None else config)
    cfg.pop("kind", None)  # older export_config() spelling of the network's identity
    meta: dict[str, Any] = {"format": FORMAT, "component": component, "name": name, "config": cfg}
    if sampler is not None:
        meta["sampler"] = {"name": sampler["name"], "config": dict(sampler.get("config", {}))}
    if daclip is not False:
        meta["daclip"] = dict(daclip) if isinstance(daclip, Mapping) else None
    if provenance:
        meta["provenance"] = dict(provenance)
    return save_pretrained(module, directory, meta, overwrite=overwrite)


def detect_network(checkpoint: str | Path | Mapping[str, Any]) -> list[str]:
    """Registry names of the networks whose release layout ``checkpoint`` matches, best first.

    A native folder gives its recorded name. Otherwise every spec's ``fingerprint`` (state-dict
    keys only that layout has) is checked; more matching keys rank first, and among equals the
    family spec (no ``defaults``) comes first.
    """
    if isinstance(checkpoint, (str, Path)) and is_native_folder(checkpoint):
        info = native_info(checkpoint)
        return [info.name] if info.name else []
    obj = read_checkpoint(checkpoint) if isinstance(checkpoint, (str, Path)) else checkpoint
    keys = state_dict_keys(obj) if isinstance(obj, Mapping) else set()
    found = [(-len(spec.fingerprint), bool(spec.defaults), spec.name)
             for kind in NETWORK_KINDS for spec in get_registry(kind)
             if spec.fingerprint and all(k in keys for k in spec.fingerprint)]
    if found or not isinstance(obj, Mapping):
        return [name for *_, name in sorted(found)]
    return [spec.name for kind in NETWORK_KINDS for spec in get_registry(kind)
            if spec.recognise and load_target(spec.recognise)(obj)]
