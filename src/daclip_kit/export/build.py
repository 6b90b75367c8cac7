"""Which graph a model exports to, its inputs, and the one export entry point.

* one-shot backbones -> :class:`~.graphs.BackboneGraph` ``(lq[, degradation][, content]) -> restored``
* denoisers -> :class:`~.graphs.DenoiserGraph` ``(x_t, lq, t[, degradation][, content]) -> noise``
* ``daclip`` -> :class:`~.graphs.EncoderGraph` ``pixels -> (content, degradation)``
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import torch
from torch import nn

from .. import __version__
from ..core.sampler import prediction_of
from ..errors import ConfigError
from ..io import OutputExistsError
from .graphs import ROLES, BackboneGraph, DenoiserGraph, EncoderGraph
from .metadata import FORMAT, denoiser_sampling
from .writers import FORMATS, ONNX_EXPORTERS, SUFFIXES, write_exported, write_onnx, write_torchscript

if TYPE_CHECKING:
    from ..embedders.daclip.model import DaCLIP

log = logging.getLogger(__name__)

#: The embedder that exports as an image encoder.
ENCODER = "daclip"
_IMAGE = {0: "batch", 2: "height", 3: "width"}
_VECTOR = {0: "batch"}


@dataclass
class ExportPlan:
    """A wrapped network with example inputs and what the file says about it.

    Attributes:
        graph: the module that is exported (eval mode).
        args: example inputs, in graph order.
        names, outputs: input and output names, in graph order.
        dynamic: ``{input or output name: {axis: "batch" | "height" | "width"}}``.
        n_fixed: inputs before the ``*embeddings`` of the graph's ``forward`` (``None``: none).
        meta: metadata (see :mod:`daclip_kit.export.metadata`).
    """

    graph: nn.Module
    args: tuple
    names: tuple[str, ...]
    outputs: tuple[str, ...]
    dynamic: dict[str, dict[int, str]]
    n_fixed: int | None
    meta: dict[str, Any]


def _io(names, roles, shapes) -> list[dict[str, str]]:
    return [{"name": n, "role": r, "shape": s} for n, r, s in zip(names, roles, shapes, strict=True)]


def _roles(net: nn.Module) -> tuple[str, ...]:
    accepts = set(getattr(net, "accepts", ()) or ())
    return tuple(r for r in ROLES if r in accepts)


def _example_side(divisor: int, extra: int) -> int:
    # not a multiple of the divisor, so the traced graph pads
    return max(2 * divisor + extra, 24 + extra)


def plan_export(name: str, net: nn.Module, *, kind: str, sampler: dict[str, Any] | None = None,
                batch: int = 2) -> ExportPlan:
    """The :class:`ExportPlan` of network ``net`` registered as ``name``.

    Args:
        kind: ``"backbone"``, ``"denoiser"`` or ``"encoder"``.
        sampler: the sampler record (``{"name", "config"}``) of the native folder a denoiser was
            loaded from: the sampler its metadata names (``None``: the network's registered
            sampler with its defaults; :func:`~.metadata.denoiser_sampling`).
        batch: batch size of the example inputs.
    """
    net = net.eval()
    meta: dict[str, Any] = {"format": FORMAT, "model": name, "graph": kind, "version": __version__}
    if kind == "encoder":
        encoder = cast("DaCLIP", net)  # the encoder graph is DA-CLIP's
        size = int(encoder.image_size)
        dim = int(encoder.embed_dim)
        args: tuple[torch.Tensor, ...] = (torch.rand(batch, 3, size, size) * 2 - 1,)
        meta.update(
            inputs=_io(["pixels"], ["image"], [f"(B, 3, {size}, {size}) CLIP-preprocessed"]),
            outputs=_io(["content", "degradation"], ["content", "degradation"], [f"(B, {dim})"] * 2),
            context_dim=dim,
            preprocess={"image_size": size, "mean": list(_openai()[0]), "std": list(_openai()[1]),
                        "resize": "RGB uint8 (x * 255 truncated); shorter side to image_size with Pillow "
                                  "BICUBIC (longer side int(image_size * long / short)); centre crop "
                                  "(offset round((n - image_size) / 2)); / 255; (x - mean) / std"})
        return ExportPlan(EncoderGraph(encoder).eval(), args, ("pixels",), ("content", "degradation"),
                          {"pixels": {0: "batch"}, "content": _VECTOR, "degradation": _VECTOR}, None, meta)

    roles = _roles(net)
    divisor = max(1, int(getattr(net, "size_divisor", 1) or 1))
    dim = int(getattr(net, "context_dim", 0) or getattr(getattr(net, "config", None), "context_dim", 0) or 0)
    if roles and not dim:
        raise ConfigError(f"{name} accepts {', '.join(roles)} embeddings but has no context_dim; export the "
                          "network without conditioning or set context_dim.")
    h, w = _example_side(divisor, 3), _example_side(divisor, 7)
    embeddings = tuple(torch.randn(batch, dim) for _ in roles)
    meta.update(size_divisor=divisor, pad_mode=getattr(net, "pad_mode", "reflect"), padding="inside",
                context_dim=dim)
    image = "(B, 3, H, W) float RGB in [0, 1], any H and W"
    if kind == "denoiser":
        names = ("x_t", "lq", "t", *roles)
        args = (torch.rand(batch, 3, h, w), torch.rand(batch, 3, h, w), torch.full((batch,), 37.5), *embeddings)
        out = prediction_of(net)  # "noise", or "clean": the runner converts it (docs/export.md)
        meta.update(inputs=_io(names, ["state", "lq", "time", *roles],
                               ["(B, 3, H, W) diffusion state, any H and W", image, "(B,) float32 time",
                                *[f"(B, {dim})"] * len(roles)]),
                    outputs=_io([out], [out], [f"(B, 3, H, W) predicted {out}"]), prediction=out,
                    **denoiser_sampling(sampler, default=_registered_sampler(name)))
        graph: nn.Module = DenoiserGraph(net, roles)
        dynamic = {"x_t": _IMAGE, "lq": _IMAGE, "t": _VECTOR, **dict.fromkeys(roles, _VECTOR), out: _IMAGE}
        return ExportPlan(graph.eval(), args, names, (out,), dynamic, 3, meta)
    names = ("lq", *roles)
    args = (torch.rand(batch, 3, h, w), *embeddings)
    meta.update(inputs=_io(names, ["lq", *roles], [image, *[f"(B, {dim})"] * len(roles)]),
                outputs=_io(["restored"], ["restored"], ["(B, 3, H, W), not clamped"]))
    dynamic = {"lq": _IMAGE, **dict.fromkeys(roles, _VECTOR), "restored": _IMAGE}
    return ExportPlan(BackboneGraph(net, roles).eval(), args, names, ("restored",), dynamic, 1, meta)


def _registered_sampler(name: str) -> str:
    """The sampler a denoiser registered as ``name`` restores with when its folder records none."""
    from ..plugins import get_registry

    registry = get_registry("backbones")
    return registry.get(name).sampler if name in registry else "irsde"


def _openai():
    from ..embedders.preprocess import OPENAI_MEAN, OPENAI_STD

    return OPENAI_MEAN, OPENAI_STD


def check_output(path: str | Path, overwrite: bool) -> Path:
    """``path`` as a :class:`Path`, refused when it exists and ``overwrite`` is false.

    Raises:
        OutputExistsError: the file exists.
        ConfigError: ``path`` is a folder.
    """
    path = Path(path)
    if path.is_dir():
        raise ConfigError(f"{str(path)!r} is a folder; give a file name such as model.onnx.")
    if path.exists() and not overwrite:
        raise OutputExistsError(f"{str(path)!r} already exists; pass --overwrite (overwrite=True) to replace it.")
    return path


def export_network(name: str, net: nn.Module, path: str | Path, fmt: str = "onnx", *, kind: str,
                   sampler: dict[str, Any] | None = None, overwrite: bool = False,
                   onnx_exporter: str = "auto") -> ExportPlan:
    """Export ``net`` (registered as ``name``) to ``path`` in format ``fmt``.

    Args:
        fmt: ``onnx``, ``torchscript`` (traced, ``torch.jit.load``) or ``exported``
            (``torch.export``, ``torch.export.load``).
        kind: ``backbone``, ``denoiser`` or ``encoder`` (see :func:`plan_export`).
        overwrite: replace an existing file (refused otherwise).
        onnx_exporter: ``auto`` (TorchScript-based, then the dynamo exporter if that fails;
            the encoder always with dynamo), ``torchscript`` or ``dynamo``.

    Returns:
        The plan, with ``meta["exporter"]`` set to the exporter used.

    Example:
        >>> net = daclip_kit.create_backbone(  # doctest: +SKIP
        ...     "nafnet", width=8, enc_blk_nums=(1, 1), dec_blk_nums=(1, 1))
        >>> export_network("nafnet", net, "nafnet.onnx", kind="backbone")  # doctest: +SKIP
    """
    if fmt not in FORMATS:
        raise ConfigError(f"format {fmt!r} must be one of {', '.join(FORMATS)}.")
    if onnx_exporter not in ONNX_EXPORTERS:
        raise ConfigError(f"onnx_exporter {onnx_exporter!r} must be one of {', '.join(ONNX_EXPORTERS)}.")
    path = check_output(path, overwrite)
    if path.suffix.lower() != SUFFIXES[fmt]:
        log.warning("%s: the usual name of a %s file ends in %s (torch.export.load expects .pt2).", path, fmt,
                    SUFFIXES[fmt])
    if onnx_exporter == "auto" and kind == "encoder":
        onnx_exporter = "dynamo"  # open_clip's attention runs as _native_multi_head_attention: no opset-17 form
    plan = plan_export(name, net, kind=kind, sampler=sampler)
    # not under torch.no_grad(): traced there, the U-Net's attention takes a fused path that the
    # TorchScript-based ONNX exporter gets wrong (outputs off by ~1e-2)
    with torch.enable_grad():
        if fmt == "onnx":
            used = write_onnx(plan.graph, plan.args, plan.names, plan.outputs, plan.dynamic, plan.meta, path,
                              n_fixed=plan.n_fixed, exporter=onnx_exporter)
            plan.meta["exporter"] = f"torch.onnx ({used})"
        elif fmt == "torchscript":
            plan.meta["exporter"] = write_torchscript(plan.graph, plan.args, plan.meta, path)
        else:
            plan.meta["exporter"] = write_exported(plan.graph, plan.args, plan.names, plan.dynamic, plan.meta,
                                                   path, n_fixed=plan.n_fixed)
    return plan


def load_model(model: str, weights: str | Path | None = None) -> tuple[nn.Module, str, dict[str, Any] | None]:
    """The network to export: ``(network, kind, trained sampler record or None)``.

    Args:
        model: a backbone's registry name (``nafnet``, ``irsde-unet``, ...; ``daclip-kit ls
            backbones``) or ``daclip`` (DA-CLIP's image encoder).
        weights: what ``restore --weights`` takes: a weights name, a file, a native folder, a
            training run or checkpoint folder, ``hf://...``; ``None`` builds the network with
            random weights (its registered defaults), for trying the export. Resolved by
            :func:`daclip_kit.model.resolve_model`: the sampler record is the loaded network's own
            (a run folder's newest ``network-ema``, a student's K steps).

    Raises:
        UnknownComponentError: ``model`` is neither.
    """
    from ..factory import create_backbone
    from ..model import provide, resolve_model
    from ..plugins import get_registry
    from ..pretrained import load_network

    if model == ENCODER:
        from ..embedders.daclip.provider import build_network, daclip_weights

        path = daclip_weights(weights, download=True) if weights is not None else None  # a restorer gives its pair
        return build_network(str(path) if path is not None else None), "encoder", None
    spec = get_registry("backbones").get(model)
    kind = "denoiser" if spec.kind == "denoiser" else "backbone"
    if weights is None:
        log.warning("%s exported with random weights; pass --weights for a trained network.", model)
        return create_backbone(model).eval(), kind, None
    unit, _ = provide(resolve_model(weights))  # the one resolver: the folder loaded is the one whose sampler is read
    if unit.network is None:
        raise ConfigError(f"--weights {weights} is a DA-CLIP, not a {model} network; export it as `daclip`.")
    trained = dict(unit.sampler) if unit.sampler is not None else None
    return load_network(model, unit.network).eval(), kind, trained
