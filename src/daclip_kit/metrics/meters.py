"""Meters: a registered metric accumulated over one data set, as the benchmark harness uses it.

:func:`make_meter` builds the meter of any registered metric (``daclip-kit ls metrics``). A
metric whose spec names a ``meter`` class gets that (LPIPS and FID load their feature networks);
any other registered metric is a paired function ``fn(pred, ref, **settings) -> (B,)`` whose mean
over the images is the data set's value, and which receives the table protocol's settings it
declares among ``crop_border``, ``y_channel`` and ``quantize``. A plugin metric therefore only
needs a function and a spec to appear in a benchmark table. A no-reference metric
(``needs_reference=False`` in its spec, e.g. NIQE) is ``fn(pred, **settings) -> (B,)``; its meter
ignores the ground truth, which may be ``None``.
"""

from __future__ import annotations

import inspect
import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import torch

from ..errors import DaclipKitError
from ..plugins import get_registry
from ..specs import load_target

#: Protocol settings a paired metric function may accept as keyword arguments.
PROTOCOL_SETTINGS = ("crop_border", "y_channel", "quantize")


@dataclass(frozen=True)
class MeterContext:
    """What a meter may need.

    Attributes:
        protocol: the table's ``MetricProtocol`` (``crop_border``, ``y_channel``, ``quantize``, ...).
        device: where feature networks run.
        search_dirs: folders searched first for metric weights (``--weights-dir``).
        networks: feature networks given by the caller, by metric name (tests, custom spaces).
    """

    protocol: Any
    device: str = "cpu"
    search_dirs: Sequence[Path] = ()
    networks: dict[str, Any] = field(default_factory=dict)


class Meter(Protocol):
    """Accumulates one metric over the images of one data set."""

    def update(self, pred: torch.Tensor, ref: torch.Tensor) -> list[float] | None:
        """Add ``(B, 3, H, W)`` images in [0, 1]; return their per-image values (or ``None``). A
        no-reference meter ignores ``ref``, which ``score`` passes as ``None`` without ground truth."""

    def compute(self) -> float | None:
        """The data set's value (``None`` when it cannot be computed from what was added)."""


class PairedMeter:
    """Mean of a per-image function ``fn(pred, ref, **settings) -> (B,)``."""

    def __init__(self, fn, settings: dict[str, Any]):
        self.fn = fn
        self.settings = settings
        self.values: list[float] = []

    def update(self, pred: torch.Tensor, ref: torch.Tensor) -> list[float]:
        out = [float(v) for v in torch.as_tensor(self.fn(pred, ref, **self.settings)).reshape(-1)]
        self.values.extend(out)
        return out

    def compute(self) -> float | None:
        return math.fsum(self.values) / len(self.values) if self.values else None


class NoReferenceMeter(PairedMeter):
    """Mean of a no-reference per-image function ``fn(pred, **settings) -> (B,)``; the ground truth is not used."""

    def update(self, pred: torch.Tensor, ref: torch.Tensor | None = None) -> list[float]:
        out = [float(v) for v in torch.as_tensor(self.fn(pred, **self.settings)).reshape(-1)]
        self.values.extend(out)
        return out


def needs_reference(name: str) -> bool:
    """Whether the registered metric ``name`` compares against a ground truth (PSNR) or not (NIQE).

    Raises:
        UnknownComponentError: ``name`` is not registered.
    """
    return bool(get_registry("metrics").get(name).needs_reference)


def protocol_settings(fn, protocol: Any, metric: str) -> dict[str, Any]:
    """The protocol settings ``fn`` accepts; ``y_channel`` is forced on for ``*-y`` metrics."""
    params = inspect.signature(fn).parameters
    settings = {k: getattr(protocol, k) for k in PROTOCOL_SETTINGS if k in params and hasattr(protocol, k)}
    if "y_channel" in settings and metric.endswith("-y"):
        settings["y_channel"] = True
    return settings


def make_meter(name: str, context: MeterContext) -> Meter:
    """The meter of the registered metric ``name``.

    Raises:
        UnknownComponentError: ``name`` is not registered (``daclip-kit ls metrics``).
        WeightsNotFoundError: a learned metric's network is missing (nothing is downloaded).
    """
    spec = get_registry("metrics").get(name)
    if spec.meter is not None:
        return load_target(spec.meter)(context)
    fn = load_target(spec.target)
    if not spec.needs_reference:
        return NoReferenceMeter(fn, protocol_settings(fn, context.protocol, name))
    return PairedMeter(fn, protocol_settings(fn, context.protocol, name))


def meter_factories(names: Iterable[str], context: MeterContext
                    ) -> tuple[dict[str, Callable[[], Meter]], dict[str, DaclipKitError]]:
    """A factory of fresh meters (one per data set, say) for each metric in ``names`` that can be
    computed, and the error of each that cannot (not registered, a missing LPIPS or FID network).

    Every meter is built once here, so problems show before any image is restored; that first
    meter is what its factory hands out first.
    """
    factories: dict[str, Callable[[], Meter]] = {}
    failed: dict[str, DaclipKitError] = {}
    for name in dict.fromkeys(names):
        try:
            first = make_meter(name, context)
        except DaclipKitError as exc:
            failed[name] = exc
            continue
        factories[name] = _factory(name, context, first)
    return factories, failed


def _factory(name: str, context: MeterContext, first: Meter) -> Callable[[], Meter]:
    spare = [first]

    def make() -> Meter:
        return spare.pop() if spare else make_meter(name, context)

    return make


class LPIPSMeter(PairedMeter):
    """LPIPS (AlexNet v0.1) on the float images, as the official test script computes it."""

    def __init__(self, context: MeterContext):
        from .perceptual import load_lpips, lpips

        net = context.networks.get("lpips")
        if net is None:
            net = load_lpips(context.search_dirs, device=context.device)
        super().__init__(lpips, {"net": net})


class FIDMeter:
    """FID of the restored set against the ground-truth set (pytorch-fid protocol)."""

    def __init__(self, context: MeterContext):
        from .frechet import FeatureStats
        from .inception import load_fid_inception

        net = context.networks.get("fid")
        self.net = net if net is not None else load_fid_inception(context.search_dirs, device=context.device)
        self.quantize = bool(getattr(context.protocol, "quantize", True))
        self.stats = (FeatureStats(), FeatureStats())

    def update(self, pred: torch.Tensor, ref: torch.Tensor) -> None:
        from .fid_score import feature_stats

        feature_stats(pred, self.net, quantize=self.quantize, stats=self.stats[0])
        feature_stats(ref, self.net, quantize=self.quantize, stats=self.stats[1])

    def compute(self) -> float | None:
        from .frechet import frechet_distance_from_stats

        if self.stats[0].count < 2:
            return None
        return frechet_distance_from_stats(*self.stats)


class CLIPIQAMeter(NoReferenceMeter):
    """Zero-shot CLIP-IQA with a DA-CLIP's plain CLIP towers (no ground truth).

    The DA-CLIP is ``context.networks["clipiqa"]`` when the caller gives one (``daclip-kit score``
    builds it from ``--daclip-weights``); else the released ``daclip-vit-b-32`` if it is on disk
    (searched in ``context.search_dirs`` and the cache; nothing is downloaded).
    """

    def __init__(self, context: MeterContext):
        from .clip_quality import clipiqa, load_clipiqa_embedder

        net = context.networks.get("clipiqa")
        if net is None:
            net = load_clipiqa_embedder(search_dirs=context.search_dirs, device=context.device)
        super().__init__(clipiqa, {"embedder": net})
