"""Build a :class:`~daclip_kit.core.pipeline.RestorationPipeline` from a named model.

A named model (:class:`~daclip_kit.specs.PipelineSpec`, ``daclip-kit ls pipelines``) says which
network, embedder, sampler and weights belong together. Weights come from an explicit path
(always preferred), the cache, or, on first use, a download through the named-weights table.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from ..checkpoint import load_pretrained_files, load_strict, read_state_dict
from ..compat import OFFICIAL_LOADERS, load_official
from ..core.device import pick_device
from ..core.pipeline import RestorationPipeline
from ..factory import create_backbone, create_embedder, create_sampler
from ..plugins import get_registry
from ..specs import PipelineSpec

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class BuiltPipeline:
    """A ready pipeline and how it was made (for provenance)."""

    pipeline: RestorationPipeline
    spec: PipelineSpec
    network_weights: Path
    embedder_weights: Path | None
    device: torch.device


def _weights_path(name: str, explicit: str | Path | None, download: bool) -> Path:
    from ..weights import resolve_weights

    return resolve_weights(name, path=explicit, download=download)


def load_network(spec: PipelineSpec, path: Path) -> torch.nn.Module:
    """The restoration network of ``spec`` with the weights at ``path`` (official file or native
    folder), loaded strictly."""
    if path.is_dir():
        config, state = load_pretrained_files(path)
        config = {k: v for k, v in config.items() if k != "kind"}
        net = create_backbone(spec.backbone, **config)
        load_strict(net, state, source=str(path))
    elif spec.backbone in OFFICIAL_LOADERS:
        net = load_official(spec.backbone, path, config=dict(spec.backbone_config))
    else:
        net = create_backbone(spec.backbone, **dict(spec.backbone_config))
        load_strict(net, read_state_dict(path), source=str(path))
    return net.eval()


def build_pipeline(model: str = "irsde-universal", *, weights: str | Path | None = None,
                   embedder_weights: str | Path | None = None, device: str | None = None,
                   download: bool = True, embedder_overrides: dict[str, Any] | None = None) -> BuiltPipeline:
    """Build the named model ``model`` for inference.

    Args:
        model: a registered pipeline name (``"irsde-universal"``, ``"wild-ir"``, ...).
        weights: the network's weights file or native folder; default: the named weights.
        embedder_weights: the embedder's weights; default: the named weights.
        device: ``"cpu"``, ``"cuda"``, ``"cuda:1"``; ``None`` picks CUDA when available.
        download: fetch missing named weights into the cache (first use); with ``False`` a
            missing file is a :class:`~daclip_kit.errors.WeightsNotFoundError` saying where to put it.

    Raises:
        UnknownComponentError, WeightsNotFoundError, CheckpointError.
    """
    spec = get_registry("pipelines").get(model)
    dev = pick_device(device)
    net_path = _weights_path(spec.backbone_weights, weights, download)
    emb_path = None
    embedder = None
    if spec.embedder:
        emb_path = _weights_path(spec.embedder_weights, embedder_weights, download)
        cfg = {**dict(spec.embedder_config), **(embedder_overrides or {}), "weights": str(emb_path),
               "device": str(dev)}
        embedder = create_embedder(spec.embedder, **cfg).eval()
    network = load_network(spec, net_path).to(dev)
    if spec.sampler:
        pipe = RestorationPipeline(embedder=embedder, denoiser=network,
                                   sampler=create_sampler(spec.sampler, **dict(spec.sampler_config)))
    else:
        pipe = RestorationPipeline(embedder=embedder, backbone=network)
    log.info("built %s on %s (network %s, embedder %s)", spec.name, dev, net_path, emb_path)
    return BuiltPipeline(pipe, spec, net_path, emb_path, dev)
