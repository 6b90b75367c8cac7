"""Specs: the frozen records that plugin hooks return.

A hook never returns an instance; it returns specs whose ``target`` is a lazy ``"module:attr"``
string. Nothing is imported until a component is created, so listing components is instant and a
broken optional dependency only breaks the component that needs it.

This module imports nothing heavy and may be imported by any ``plugin.py``.
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from .errors import ConfigError


def load_target(target: str) -> Any:
    """Import ``"package.module:attr.sub"`` and return the attribute.

    Raises:
        ConfigError: if the string is not of that form.
        ImportError / AttributeError: from the import itself (callers wrap them).
    """
    module_name, sep, attr = target.partition(":")
    if not sep or not module_name or not attr:
        raise ConfigError(f"Target {target!r} must look like 'package.module:attribute'.")
    obj: Any = importlib.import_module(module_name)
    for part in attr.split("."):
        obj = getattr(obj, part)
    return obj


@dataclass(frozen=True, kw_only=True)
class ComponentSpec:
    """Fields every registered component has.

    Attributes:
        name: registry name, lowercase-kebab (``"irsde-unet"``); unique within its kind.
        target: ``"module:attr"`` of the class or factory that builds the component.
        config: ``"module:attr"`` of the component's config dataclass, or ``None`` when the
            target takes plain keyword arguments.
        defaults: keyword values applied before the user's (named variants of one architecture).
        summary: one line shown by ``daclip-kit ls``.
        tiny_config: keyword values for a small instance, used by the contract tests.
        convert: ``"module:attr"`` of ``fn(checkpoint, *, config=None) -> nn.Module`` that builds
            the network for a *released* checkpoint (its authors' file layout) and loads it
            strictly; ``None`` when released files are plain state dicts of this module.
            :func:`daclip_kit.load_network` calls it, so a plugin ships the converter for its
            own weights.
        fingerprint: state-dict keys that only a release file of this component has (after
            removing ``module.`` and wrappers); ``daclip-kit convert`` uses them to recognise a
            file. The most specific match (most keys) wins.
        recognise: ``"module:attr"`` of ``fn(checkpoint) -> bool`` (the mapping read from the file,
            wrappers included) for components that recognise their files by other means than fixed
            keys (spandrel's many architectures); tried after every ``fingerprint``.
        license: licence of the architecture's reference code (``"MIT"``, or a sentence); shown
            in the model card ``daclip-kit push`` writes.
        citation: BibTeX of the paper that introduced the architecture (model cards).
    """

    name: str
    target: str
    config: str | None = None
    defaults: Mapping[str, Any] = field(default_factory=dict)
    summary: str = ""
    tiny_config: Mapping[str, Any] = field(default_factory=dict)
    convert: str | None = None
    fingerprint: tuple[str, ...] = ()
    recognise: str | None = None
    license: str = ""
    citation: str = ""


@dataclass(frozen=True, kw_only=True)
class EmbedderSpec(ComponentSpec):
    """An embedding provider (``clip``, ``daclip``, ``text``)."""


@dataclass(frozen=True, kw_only=True)
class BackboneSpec(ComponentSpec):
    """A restoration network.

    Attributes:
        kind: ``"direct"`` for one-shot models (``forward(lq, cond) -> image``) or ``"denoiser"``
            for diffusion networks (``forward(x_t, lq, t, degradation=, content=) -> noise``).
        accepts: conditioning roles the network can use (``"degradation"``, ``"content"``).
        weights: names of :class:`WeightSpec` entries that fit this backbone; the first is the
            default of ``create_backbone(name, pretrained=True)`` and ``restore --model NAME``.
        sampler: the sampler a denoiser is restored with when no pipeline names one
            (``"irsde"``); ignored for one-shot backbones.
        architecture_from_weights: the network's shape is read from its weights, not from a
            config (spandrel): native folders are loaded through ``convert`` as well.
    """

    kind: Literal["direct", "denoiser"] = "direct"
    accepts: tuple[str, ...] = ()
    weights: tuple[str, ...] = ()
    sampler: str = "irsde"
    architecture_from_weights: bool = False


@dataclass(frozen=True, kw_only=True)
class AdapterSpec(ComponentSpec):
    """A conditioning adapter (cross-attention, prompt module) attachable to a backbone."""

    role: Literal["degradation", "content", "tokens"] = "content"


@dataclass(frozen=True, kw_only=True)
class SamplerSpec(ComponentSpec):
    """A stateless sampler for denoisers (e.g. the IR-SDE mean-reverting SDE)."""


@dataclass(frozen=True, kw_only=True)
class MetricSpec(ComponentSpec):
    """An image-quality metric. ``target`` is a function or a module factory.

    Attributes:
        higher_is_better: direction used by reports.
        paired: ``True`` for full-reference per-image metrics ``f(pred, ref) -> (B,)``;
            ``False`` for set metrics such as FID.
        meter: ``"module:attr"`` of a class built as ``cls(context)`` that accumulates the metric
            over a data set (:mod:`daclip_kit.metrics.meters`); ``None``: the mean of ``target``
            applied per image, with the table protocol's settings it accepts.
        needs_reference: ``False`` for a no-reference metric (NIQE, CLIP-IQA): ``target`` is
            ``f(pred) -> (B,)`` and it is computed without ground truth (``daclip-kit score`` without ``--gt``).
    """

    higher_is_better: bool = True
    paired: bool = True
    meter: str | None = None
    needs_reference: bool = True


@dataclass(frozen=True, kw_only=True)
class DegradationSpec(ComponentSpec):
    """A synthetic degradation generator acting on ``(B,3,H,W)`` images in [0, 1]."""

    label: str = ""  # the degradation word it produces (defaults to ``name``)


@dataclass(frozen=True, kw_only=True)
class DatasetSpec(ComponentSpec):
    """A reader for a published data set layout (used by ``daclip-kit data prepare``)."""

    degradation: str = ""


@dataclass(frozen=True, kw_only=True)
class CommandSpec:
    """A CLI verb. ``target`` is ``"module:attr"`` of ``configure(parser)``, which adds the
    verb's arguments and sets ``parser.set_defaults(func=run)``; the module must not import torch
    at import time so ``daclip-kit --help`` stays fast."""

    name: str
    target: str
    summary: str = ""


@dataclass(frozen=True, kw_only=True)
class WeightSpec:
    """A named, downloadable weights file.

    Attributes:
        name: registry name (``"daclip-vit-b-32"``).
        filename: file name on disk and in the repository (``"daclip_ViT-B-32.pt"``).
        hf_repo: Hugging Face repository id, or ``""`` when the file is not on the hub.
        hf_filename: path of the file inside ``hf_repo`` (defaults to ``filename``).
        url: alternative direct URL.
        sha256: expected checksum (hex) or ``""`` when unknown.
        size: size in bytes, 0 when unknown.
        model: ``"kind:name"`` of the component it loads into (``"embedder:daclip"``).
        config: keyword config for that component.
        description: what the file holds.
        license: licence of the weights.
    """

    name: str
    filename: str
    hf_repo: str = ""
    hf_filename: str = ""
    url: str = ""
    sha256: str = ""
    size: int = 0
    model: str = ""
    config: Mapping[str, Any] = field(default_factory=dict)
    description: str = ""
    license: str = ""


@dataclass(frozen=True, kw_only=True)
class PipelineSpec:
    """A named restoration model (a recipe): which network, weights, embedder and sampler work
    together. It is the one place a released model is described; ``restore --model NAME``, the
    benchmark rows, the demo and :func:`daclip_kit.pipelines` all build from it.

    Attributes:
        name: ``"irsde-universal"``, ``"wild-ir"``, ...
        backbone: registry name of the network (``"irsde-unet"``); ``backbone_config`` overrides
            its defaults (empty for released presets: the backbone spec holds them).
        weights: :class:`WeightSpec` name of the network's weights (``""``: none released).
        embedder: registry name of the embedding provider (``"daclip"``) or ``""`` for none;
            ``embedder_config`` its config; ``embedder_weights`` its weights name.
        sampler: registry name of the sampler for denoisers (``"irsde"``), ``""`` for one-shot
            backbones; ``sampler_config`` its config (e.g. ``{"mode": "posterior"}``).
        steps: network evaluations of a run (``None``: the sampler's default).
        summary: one line for ``daclip-kit ls pipelines``.
    """

    name: str
    backbone: str
    backbone_config: Mapping[str, Any] = field(default_factory=dict)
    weights: str = ""
    embedder: str = ""
    embedder_config: Mapping[str, Any] = field(default_factory=dict)
    embedder_weights: str = ""
    sampler: str = ""
    sampler_config: Mapping[str, Any] = field(default_factory=dict)
    steps: int | None = None
    summary: str = ""


#: The kinds of registry, in the order ``daclip-kit ls`` shows them. Each has a hook
#: ``daclip_kit_register_<kind>`` returning a list of specs.
KINDS: tuple[str, ...] = (
    "embedders",
    "backbones",
    "adapters",
    "samplers",
    "metrics",
    "tables",
    "weights",
    "degradations",
    "datasets",
    "pipelines",
    "commands",
)
