"""Build a :class:`~daclip_kit.core.pipeline.RestorationPipeline` from a recipe: the one path by
which ``restore``, ``bench``, the demo and :func:`daclip_kit.pipelines` make models.

Weights come from an explicit path (always preferred) or the recipe's named weights, found by
:func:`daclip_kit.weights.fetch.find_weights` (``--weights-dir`` folders, the cache); what is missing
is downloaded together on first use, or, offline (decided in seconds), named in one error with
the ways to provide it (:func:`~daclip_kit.weights.fetch.provide_weights`). The network is loaded
by :func:`daclip_kit.load_network`.
"""

from __future__ import annotations

import dataclasses
import json
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from ..core.device import pick_device
from ..core.pipeline import RestorationPipeline, RestoreOptions
from ..errors import WeightsNotFoundError
from ..factory import create_embedder, create_sampler
from ..pretrained import is_native_folder, load_network, native_info
from ..specs import PipelineSpec
from ..weights.fetch import find_weights, provide_weights
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


def trained_sampler(recipe: PipelineSpec, weights: Path) -> PipelineSpec:
    """Use the sampler a native network folder was trained with, when it records one."""
    if not (recipe.sampler and is_native_folder(weights)):
        return recipe
    trained = native_info(weights).sampler
    if not trained:
        return recipe
    log.info("using the sampler settings %s stored with %s", trained, weights)
    return dataclasses.replace(recipe, sampler=trained["name"], sampler_config=dict(trained.get("config", {})))


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


def _load_network(recipe: PipelineSpec, path: Path, overrides: Mapping[str, Any] | None,
                  device: torch.device) -> tuple[PipelineSpec, torch.nn.Module]:
    """The recipe with the sampler ``path`` was trained with and ``overrides``, and its network on
    ``device``."""
    recipe = with_overrides(trained_sampler(recipe, path), overrides or {})
    return recipe, load_network(recipe.backbone, path, config=dict(recipe.backbone_config) or None).to(device)


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
        weights: the network's weights (file, native folder or registered name); default the
            recipe's. A native folder trained by ``daclip-kit train`` brings its sampler settings.
        embedder_weights: the embedder's weights; default the recipe's.
        device: ``"cpu"``, ``"cuda"``, ``"cuda:1"``; ``None``/``"auto"`` picks CUDA when available.
        download: fetch missing named weights into the cache (first use); with ``False`` a missing
            file is a :class:`~daclip_kit.errors.WeightsNotFoundError` saying where to put it.
        search_dirs: folders searched first for named weights (``--weights-dir``).
        overrides: recipe settings (:func:`~daclip_kit.pipelines.recipe.with_overrides` keys such as
            ``{"sampler": "mrs", "steps": 10, "sampler.order": 3}``).
        embedder_cache: embedders already built, reused and filled (:func:`load_embedder`).

    Raises:
        UnknownComponentError, ConfigError, WeightsNotFoundError, CheckpointError.
    """
    recipe = get_recipe(model)
    dev = pick_device(device)
    net_ref = weights if weights is not None else recipe.weights
    if not net_ref:
        raise WeightsNotFoundError(f"{recipe.name!r} has no released weights; pass the network's weights "
                                   "(--weights FILE_OR_FOLDER), e.g. a run folder's checkpoints/step-N/network.")
    # Everything missing is found first and then downloaded together, or named in one error.
    net_found = find_weights(net_ref, search_dirs=search_dirs)
    network = None
    if isinstance(net_found, Path):
        recipe, network = _load_network(recipe, net_found, overrides, dev)
        wants_embedder = bool(recipe.embedder) and bool(getattr(network, "accepts", None))
    planned = recipe if network is not None else with_overrides(recipe, overrides or {})
    if network is None:  # not loaded yet: a recipe with an embedder needs its weights too
        wants_embedder = bool(planned.embedder)
    emb_ref = embedder_weights if embedder_weights is not None else planned.embedder_weights
    needed: list[tuple[Path | Any, str]] = [(net_found, "--weights")]
    if wants_embedder and emb_ref:
        needed.append((find_weights(emb_ref, search_dirs=search_dirs), "--daclip-weights"))
    paths = provide_weights(needed, download=download, search_dirs=search_dirs)
    net_path = paths[0]
    emb_path = paths[1] if len(paths) > 1 else None
    if network is None:
        recipe, network = _load_network(recipe, net_path, overrides, dev)
    embedder = None
    if recipe.embedder and getattr(network, "accepts", None):
        embedder = load_embedder(recipe.embedder, emb_path, dev, recipe.embedder_config, cache=embedder_cache)
    elif recipe.embedder:
        log.info("%s takes no conditioning; no embedder is built", recipe.backbone)
        recipe = dataclasses.replace(recipe, embedder="", embedder_weights="")
    options = RestoreOptions(steps=recipe.steps)
    if recipe.sampler:
        sampler = create_sampler(recipe.sampler, **dict(recipe.sampler_config))
        pipe = RestorationPipeline(embedder=embedder, denoiser=network, sampler=sampler, options=options)
    else:
        pipe = RestorationPipeline(embedder=embedder, backbone=network, options=options)
    log.info("built %s on %s (network %s, embedder %s)", recipe.name, dev, net_path, emb_path)
    return BuiltPipeline(pipe, recipe, net_path, emb_path, dev)
