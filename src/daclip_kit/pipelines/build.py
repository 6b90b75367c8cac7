"""Build a :class:`~daclip_kit.core.pipeline.RestorationPipeline` from a recipe: the one path by
which ``restore``, ``bench``, the demo and :func:`daclip_kit.pipelines` make models.

The model comes from :func:`daclip_kit.model.resolve_model` (any reference; default the recipe's
named weights): a trained model brings its sampler and the DA-CLIP it was trained with. What is
missing is downloaded together on first use, or, offline (decided in seconds), named in one error
with the ways to provide it (:func:`daclip_kit.model.provide`). The network is loaded by
:func:`daclip_kit.load_network`.
"""

from __future__ import annotations

import dataclasses
import json
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

import torch

from ..core.backbone import Denoiser, RestorationBackbone
from ..core.device import pick_device
from ..core.pipeline import RestorationPipeline, RestoreOptions
from ..errors import ConfigError, WeightsNotFoundError
from ..factory import create_embedder, create_sampler
from ..model import ModelUnit, PairedDaclip, pair, provide, resolve_model
from ..model.resolve import GIVE_DACLIP
from ..options import option
from ..pretrained import load_network
from ..specs import PipelineSpec
from ..weights.fetch import resolve_weights
from .recipe import get_recipe, with_overrides

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class BuiltPipeline:
    """A ready pipeline and how it was made (for provenance).

    Attributes:
        pipeline: the pipeline (its ``options.steps`` is the recipe's).
        recipe: the recipe after overrides, with the sampler actually used.
        network_weights, embedder_weights: the files or folders loaded.
        device: where the models live.
    """

    pipeline: RestorationPipeline
    recipe: PipelineSpec
    network_weights: Path
    embedder_weights: Path | None
    device: torch.device
    #: the model as resolved (:func:`daclip_kit.model.resolve_model`) and the DA-CLIP it runs with
    unit: ModelUnit | None = field(default=None, repr=False, compare=False)
    daclip: PairedDaclip | None = field(default=None, repr=False, compare=False)
    #: pipelines on these networks with other sampler settings, made on demand (``daclip_kit.restore``)
    variants: dict[str, RestorationPipeline] = field(default_factory=dict, repr=False, compare=False)

    @property
    def about(self) -> str | None:
        """What the network is when the registry name does not say it (a spandrel network's
        architecture and license), else ``None``."""
        describe = getattr(self.pipeline.network, "describe", None)
        return describe() if callable(describe) else None

    @property
    def spec(self) -> PipelineSpec:
        """Alias of :attr:`recipe`."""
        return self.recipe


def trained_sampler(recipe: PipelineSpec, sampler: Mapping[str, Any] | None, where: object = "") -> PipelineSpec:
    """Use the sampler a network was trained (or distilled) with, when it records one."""
    if not (recipe.sampler and sampler):
        return recipe
    log.info("using the sampler settings %s stored with %s", dict(sampler), where)
    return dataclasses.replace(recipe, sampler=sampler["name"], sampler_config=dict(sampler.get("config", {})))


def load_embedder(name: str, weights: Path | None, device: torch.device, config: Mapping[str, Any] | None = None,
                  *, cache: dict[str, Any] | None = None) -> Any:
    """The embedding provider ``name`` with ``weights`` on ``device`` (in eval mode).

    Args:
        config: the provider's settings besides ``device`` and ``weights`` (e.g. a bundled
            ``model`` config).
        cache: embedders built before, by name, weights, device and settings: one built for the
            same ones is reused (not built again), a new one is added.
    """
    settings = dict(config or {})
    key = json.dumps([name, str(weights), str(device), settings], sort_keys=True, default=str)
    if cache is not None and key in cache:
        return cache[key]
    settings["device"] = str(device)
    if weights is not None:
        settings["weights"] = str(weights)
    embedder = create_embedder(name, **settings).eval()
    if cache is not None:
        cache[key] = embedder
    return embedder


def _load_network(recipe: PipelineSpec, unit: ModelUnit, overrides: Mapping[str, Any] | None,
                  device: torch.device) -> tuple[PipelineSpec, torch.nn.Module]:
    """The recipe with the sampler the model restores with and ``overrides``, and its network on
    ``device``."""
    assert unit.network is not None
    recipe = with_overrides(trained_sampler(recipe, unit.sampler, unit.network), overrides or {})
    return recipe, load_network(recipe.backbone, unit.network, config=dict(recipe.backbone_config) or None).to(device)


def build_pipeline(model: str = "irsde-universal", *, weights: str | Path | None = None,
                   embedder_weights: str | Path | None = None, device: str | torch.device | None = None,
                   download: bool = True, search_dirs: Sequence[str | Path] = (),
                   overrides: Mapping[str, Any] | None = None,
                   embedder_cache: dict[str, Any] | None = None) -> BuiltPipeline:
    """Build the model ``model`` for inference.

    Args:
        model: a pipeline name (``"irsde-universal"``, ``"wild-ir"``, ``daclip-kit ls pipelines``)
            or a backbone name (``"nafnet-gopro-w64"``; its recipe, see
            :func:`~daclip_kit.pipelines.recipe.get_recipe`).
        weights: the model, as any reference :func:`daclip_kit.model.resolve_model` takes (weights
            name, file, native or model folder, run or checkpoint folder, ``hf://``); default the
            recipe's. A trained model brings its sampler settings and the DA-CLIP it was trained with.
        embedder_weights: the DA-CLIP to run with instead (any reference); checked against the one the
            model records (embedding width, words). Default: the model's own, else the recipe's.
        device: ``"cpu"``, ``"cuda"``, ``"cuda:1"``; ``None``/``"auto"`` picks CUDA when available.
        download: fetch missing named weights into the cache (first use); with ``False`` a missing
            file is a :class:`~daclip_kit.errors.WeightsNotFoundError` saying where to put it.
        search_dirs: folders searched first for named weights (``--weights-dir``).
        overrides: recipe settings (:func:`~daclip_kit.pipelines.recipe.with_overrides` keys such as
            ``{"sampler": "mrs", "steps": 10, "sampler.order": 3}``).
        embedder_cache: embedders already built, reused and filled (:func:`load_embedder`).

    Raises:
        UnknownComponentError: ``model`` or one of its components is not registered.
        ConfigError: a setting or override the recipe's components refuse.
        WeightsNotFoundError: weights that are neither on disk nor downloadable (offline, or ``download=False``).
        CheckpointError: a weights file that does not load strictly into its network.
    """
    recipe = get_recipe(model)
    dev = pick_device(device)
    net_ref = weights if weights is not None else recipe.weights
    if not net_ref:
        raise WeightsNotFoundError(f"{recipe.name!r} has no released weights; pass the network's weights "
                                   f"({option('weights', 'FILE_OR_FOLDER')}), e.g. a run folder's "
                                   "checkpoints/step-N/network.")
    unit = resolve_model(net_ref, search_dirs=search_dirs)
    if unit.is_daclip:
        raise ConfigError(f"{net_ref} is a DA-CLIP, not a restoration network; classify with it, or pass it as "
                          f"{option('daclip_weights', 'PATH', python=GIVE_DACLIP)} with a restorer's "
                          f"{option('weights', 'PATH')}.")
    network = None
    if unit.network is not None:  # loaded first: whether it takes conditioning decides if DA-CLIP is needed
        recipe, network = _load_network(recipe, unit, overrides, dev)
        wants_embedder = bool(recipe.embedder) and bool(getattr(network, "accepts", None))
    else:
        wants_embedder = bool(with_overrides(recipe, overrides or {}).embedder)
    planned = recipe if network is not None else with_overrides(recipe, overrides or {})
    daclip = other = None
    if wants_embedder and planned.embedder == "daclip":  # the model's own DA-CLIP, checked against a given one
        daclip = pair(unit, embedder_weights, planned.embedder_weights or None, search_dirs=search_dirs)
    elif wants_embedder:  # another embedder (a plugin's, CLIP): its weights file as given
        ref = embedder_weights if embedder_weights is not None else planned.embedder_weights
        other = resolve_weights(ref, download=download, search_dirs=search_dirs) if ref else None
    unit, daclip = provide(unit, daclip, download=download, search_dirs=search_dirs)
    if network is None:
        recipe, network = _load_network(recipe, unit, overrides, dev)
    embedder = None
    emb_path = daclip.path if daclip is not None else other
    if recipe.embedder and getattr(network, "accepts", None):
        embedder = load_embedder(recipe.embedder, emb_path, dev, recipe.embedder_config, cache=embedder_cache)
        check_widths(network, embedder, unit, daclip)
    elif recipe.embedder:
        log.info("%s takes no conditioning; no embedder is built", recipe.backbone)
        recipe = dataclasses.replace(recipe, embedder="", embedder_weights="")
    options = RestoreOptions(steps=recipe.steps)
    if recipe.sampler:
        sampler = create_sampler(recipe.sampler, **dict(recipe.sampler_config))
        pipe = RestorationPipeline(embedder=embedder, denoiser=cast(Denoiser, network), sampler=sampler,
                                   options=options)
    else:
        pipe = RestorationPipeline(embedder=embedder, backbone=cast(RestorationBackbone, network), options=options)
    assert unit.network is not None
    log.info("built %s on %s (network %s, embedder %s)", recipe.name, dev, unit.network, emb_path)
    return BuiltPipeline(pipe, recipe, unit.network, emb_path, dev, unit=unit, daclip=daclip)


def check_widths(network: torch.nn.Module, embedder: Any, unit: ModelUnit, daclip: PairedDaclip | None) -> None:
    """Refuse an embedder whose embeddings do not have the width the network takes, naming both.

    Raises:
        ConfigError: the widths differ.
    """
    want = int(getattr(network, "context_dim", 0) or getattr(getattr(network, "config", None), "context_dim", 0) or 0)
    have = int(getattr(embedder, "embed_dim", 0) or 0)
    if want and have and want != have:
        name = daclip.describe() if daclip is not None else "the embedder"
        raise ConfigError(f"{unit.ref} takes {want}-d embeddings, but the DA-CLIP {name} gives {have}-d ones; "
                          "give the DA-CLIP the model was trained with "
                          f"({option('daclip_weights', 'PATH', python=GIVE_DACLIP)}).")
