"""Hook specifications of daclip-kit.

Every hook name starts with ``daclip_kit_`` so a module can host pytest hooks beside ours.
Registration hooks return lists of specs; the host merges them, so the order in which plugins are
called never matters. Implement a hook with :data:`daclip_kit.hookimpl`::

    from daclip_kit import hookimpl
    from daclip_kit.specs import BackboneSpec

    @hookimpl
    def daclip_kit_register_backbones():
        return [BackboneSpec(name="my-unet", target="my_pkg.arch:MyUNet")]

and declare the module in your distribution's entry points, group ``daclip_kit``::

    [project.entry-points.daclip_kit]
    my_pkg = "my_pkg.plugin"

Hooks grow by gaining keyword arguments; an implementation may accept fewer arguments than the
spec (pluggy's opt-in arguments), so existing plugins keep working.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import pluggy

if TYPE_CHECKING:
    from .bench.spec import TableSpec
    from .specs import (
        AdapterSpec,
        BackboneSpec,
        CommandSpec,
        DatasetSpec,
        DegradationSpec,
        EmbedderSpec,
        MetricSpec,
        PipelineSpec,
        SamplerSpec,
        WeightSpec,
    )

PROJECT = "daclip_kit"
hookspec = pluggy.HookspecMarker(PROJECT)
hookimpl = pluggy.HookimplMarker(PROJECT)


# --- components -------------------------------------------------------------------------------


@hookspec
def daclip_kit_register_embedders() -> list[EmbedderSpec]:
    """Return :class:`~daclip_kit.specs.EmbedderSpec` objects for embedding providers.

    Called once per process when the ``embedders`` registry is first used.
    """


@hookspec
def daclip_kit_register_backbones() -> list[BackboneSpec]:
    """Return :class:`~daclip_kit.specs.BackboneSpec` objects for restoration networks
    (one-shot backbones and diffusion denoisers)."""


@hookspec
def daclip_kit_register_adapters() -> list[AdapterSpec]:
    """Return :class:`~daclip_kit.specs.AdapterSpec` objects for conditioning adapters
    (cross-attention, prompt modules) that backbones build by name."""


@hookspec
def daclip_kit_register_samplers() -> list[SamplerSpec]:
    """Return :class:`~daclip_kit.specs.SamplerSpec` objects for diffusion samplers."""


@hookspec
def daclip_kit_register_metrics() -> list[MetricSpec]:
    """Return :class:`~daclip_kit.specs.MetricSpec` objects for image-quality metrics."""


@hookspec
def daclip_kit_register_tables() -> list[TableSpec]:
    """Return benchmark table specs (``daclip_kit.bench.spec.TableSpec``); ``name`` is the
    table id used by ``--table``."""


@hookspec
def daclip_kit_register_weights() -> list[WeightSpec]:
    """Return :class:`~daclip_kit.specs.WeightSpec` objects: named, downloadable weights."""


@hookspec
def daclip_kit_register_degradations() -> list[DegradationSpec]:
    """Return :class:`~daclip_kit.specs.DegradationSpec` objects: synthetic degradations."""


@hookspec
def daclip_kit_register_datasets() -> list[DatasetSpec]:
    """Return :class:`~daclip_kit.specs.DatasetSpec` objects: readers of published data sets."""


@hookspec
def daclip_kit_register_pipelines() -> list[PipelineSpec]:
    """Return :class:`~daclip_kit.specs.PipelineSpec` objects: named restoration models
    (embedder + network + sampler + weights) used by ``daclip-kit restore --model``."""


@hookspec
def daclip_kit_register_commands() -> list[CommandSpec]:
    """Return :class:`~daclip_kit.specs.CommandSpec` objects: ``daclip-kit`` CLI verbs."""


# --- services ---------------------------------------------------------------------------------


@hookspec(firstresult=True)
def daclip_kit_resolve_weights(spec: WeightSpec, cache_dir: Path, search_dirs: tuple[Path, ...]) -> Path | None:
    """Return a local path for the :class:`~daclip_kit.specs.WeightSpec` ``spec``, or ``None``.

    The first non-``None`` answer wins. Implement it to serve weights from a mirror or an offline
    store; the built-in lookup (``search_dirs``, the cache, torch's hub cache) is registered
    ``trylast``. Downloads happen after the hook, and only when the caller asks for them.

    :param spec: the weights wanted.
    :param cache_dir: the daclip-kit cache directory (``$DACLIP_KIT_CACHE``).
    :param search_dirs: folders the caller asked to search first (``--weights-dir``).
    """


@hookspec
def daclip_kit_update_provenance(info: dict[str, Any]) -> None:
    """Add or change entries of ``info``, the provenance record written with benchmark results
    (versions, device, git hash). Called once per run; mutate in place."""
