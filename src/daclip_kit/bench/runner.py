"""Running a benchmark table: decide which rows can run here, measure them, keep every image's result.

Pure library code: no console output (progress goes to an optional callback, messages to
``logging``). Rows that cannot run (paper-only baselines, missing architecture, weights or data)
are returned with notes saying what is missing and how to get it.

Models can be injected (``restorers=`` / ``classifiers=``), which is how tests run the mechanics on a
tiny synthetic data set, and how users measure their own models against a table.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from ..errors import ConfigError, DaclipKitError
from .spec import MetricProtocol, RowSpec, TableSpec

log = logging.getLogger(__name__)

#: ``lq (1, 3, H, W) in [0, 1] -> restored (1, 3, H, W) in [0, 1]``.
Restorer = Callable[[Any], Any]
#: ``(images (B, 3, H, W) in [0, 1], label texts) -> (B, N) probabilities``.
Classifier = Callable[[Any, Sequence[str]], Any]
#: ``progress(description, done, total)``.
Progress = Callable[[str, int, int], None]

_PAIRED = ("psnr", "ssim", "psnr-y", "ssim-y")


@dataclass(frozen=True, kw_only=True)
class BenchOptions:
    """Settings of one benchmark run (all recorded in the JSON).

    Attributes:
        data_root: folder holding ``val/<data set>/{LQ,GT}``.
        weights_dir: folder searched first for model and metric weights.
        limit: at most this many images per data set (``None``: all).
        device: ``"cpu"``, ``"cuda"``, ``"cuda:1"``, ...
        seed: seed of the sampler noise (a fresh generator per row).
        rows: only these row labels (``None``: all).
        size: input size of complexity tables (default: the table's protocol, 256).
        repeats: timed forward passes per model in complexity tables (0 skips runtime).
    """

    data_root: Path | None = None
    weights_dir: Path | None = None
    limit: int | None = None
    device: str = "cpu"
    seed: int = 0
    rows: tuple[str, ...] | None = None
    size: int | None = None
    repeats: int = 3


@dataclass
class RowPlan:
    """Whether a row can run, the weights it resolved and what is missing."""

    row: RowSpec
    runnable: bool
    missing: list[str] = field(default_factory=list)
    weights: dict[str, Path] = field(default_factory=dict)
    injected: bool = False


@dataclass
class ImageRecord:
    """Metrics of one image: restoration metrics, or ``correct``/``predicted`` for classification."""

    row: str
    dataset: str
    image: str
    values: dict[str, Any]
    seconds: float


@dataclass
class RowResult:
    """One row: measured cell values (column key -> value), status and notes."""

    label: str
    status: Literal["measured", "partial", "not-run", "failed"]
    values: dict[str, float] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)


@dataclass
class TableResult:
    """Everything a run produced, ready for :mod:`daclip_kit.bench.report`."""

    table: TableSpec
    options: BenchOptions
    rows: list[RowResult]
    images: list[ImageRecord] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    extra: dict[str, Any] = field(default_factory=dict)

    def row(self, label: str) -> RowResult | None:
        return next((r for r in self.rows if r.label == label), None)

    def value(self, label: str, key: str) -> float | None:
        r = self.row(label)
        return None if r is None else r.values.get(key)


# --- planning ------------------------------------------------------------------------------------


def locate_weights(name: str, weights_dir: Path | None) -> tuple[Path | None, str]:
    """Find the weights ``name`` locally: ``(path, "")`` or ``(None, what is missing and how to get it)``.

    ``name`` is a registered weights name (``daclip-kit ls weights``) or a plain file name looked up
    in ``weights_dir``. Nothing is downloaded.
    """
    from ..plugins import get_registry

    registry = get_registry("weights")
    spec = registry.get(name) if name in registry else None
    filename = spec.filename if spec is not None else name
    if weights_dir is not None and (Path(weights_dir) / filename).is_file():
        return Path(weights_dir) / filename, ""
    if spec is not None:
        try:
            from ..weights import resolve_weights

            return Path(resolve_weights(name, download=False)), ""
        except ImportError:
            pass
        except DaclipKitError as exc:
            return None, f"{exc} (bench: or put {filename} into --weights-dir)"
    where = str(weights_dir) if weights_dir is not None else "no --weights-dir given"
    return None, f"weights file {filename!r} not found ({where}); put it into --weights-dir"


def _registered(kind: str, name: str) -> bool:
    from ..plugins import get_registry

    return name in get_registry(kind)


def _unknown_classes(table: TableSpec) -> list[str]:
    """Data sets of a classification table that are not one of the ten labels (no ground truth)."""
    from ..types import DEGRADATIONS

    if table.kind != "classification":
        return []
    return [d for d in table.datasets() if d not in DEGRADATIONS]


def check_protocol(table: TableSpec) -> None:
    """Refuse metric settings daclip-kit does not implement (instead of silently using others).

    Raises:
        ConfigError: the table measures LPIPS with another trunk/version than AlexNet v0.1, or
            FID with another setting than the default.
    """
    p, default = table.protocol, MetricProtocol()
    metrics = table.metrics()
    if "lpips" in metrics and (p.lpips_net, p.lpips_version) != (default.lpips_net, default.lpips_version):
        raise ConfigError(
            f"Table {table.name} asks for LPIPS net={p.lpips_net!r} version={p.lpips_version!r}; daclip-kit "
            f"computes only net={default.lpips_net!r} version={default.lpips_version!r} (the official test "
            "setting). Remove lpips_net/lpips_version from the table's MetricProtocol.")
    if "fid" in metrics and p.fid != default.fid:
        raise ConfigError(
            f"Table {table.name} asks for FID as {p.fid!r}; daclip-kit computes only {default.fid!r}. "
            "Remove fid from the table's MetricProtocol.")


def plan_row(table: TableSpec, row: RowSpec, options: BenchOptions, *, injected: bool = False) -> RowPlan:
    """Decide whether ``row`` can run (data availability is handled per data set by the runner)."""
    unknown = _unknown_classes(table)
    if unknown:
        from ..types import DEGRADATIONS

        return RowPlan(row, False, [
            f"classification data set(s) {', '.join(unknown)} are not among the ten degradation labels "
            f"({', '.join(DEGRADATIONS)}), so they have no ground-truth label; name the columns after "
            "the labels"], injected=injected)
    if injected:
        return RowPlan(row, True, injected=True)
    missing: list[str] = []
    if row.model is None and row.embedder is None:
        return RowPlan(row, False, [f"paper-only: {row.note or 'not part of daclip-kit'}"])
    if row.model is not None and not _registered("backbones", row.model):
        missing.append(f"architecture {row.model!r} is not available in this installation "
                       f"(no plugin registers it; see `daclip-kit ls backbones`)")
    if row.embedder is not None and not _registered("embedders", row.embedder):
        missing.append(f"embedder {row.embedder!r} is not available in this installation")
    if table.kind == "complexity":
        return RowPlan(row, not missing, missing)
    if table.kind == "restoration" and not row.weights:
        missing.append(f"no released weights: {row.note or 'trained by the paper authors'}")
    found: dict[str, Path] = {}
    for name in row.weights:
        path, why = locate_weights(name, options.weights_dir)
        if path is None:
            missing.append(why)
        else:
            found[name] = path
    return RowPlan(row, not missing, missing, found)


def plan_table(table: TableSpec, options: BenchOptions, *, injected: Sequence[str] = ()) -> list[RowPlan]:
    """Plans of the selected rows of ``table`` (``options.rows``), in table order.

    Raises:
        ConfigError: the table's :class:`MetricProtocol` asks for metrics that are not implemented.
        UnknownComponentError: ``options.rows`` names a row the table does not have.
    """
    check_protocol(table)
    rows = list(table.rows)
    if options.rows is not None:
        for label in options.rows:
            table.row(label)  # raises with the valid labels
        rows = [r for r in rows if r.label in options.rows]
    return [plan_row(table, r, options, injected=r.label in injected) for r in rows]


# --- building real models ----------------------------------------------------------------------


def _build_embedder(row: RowSpec, plan: RowPlan, options: BenchOptions, weights_name: str | None):
    from ..factory import create_embedder

    cfg = dict(row.embedder_config)
    if weights_name is not None:
        path = str(plan.weights[weights_name])
        cfg["pretrained" if row.embedder == "clip" else "weights"] = path
    return create_embedder(row.embedder, device=options.device, **cfg)


def build_restorer(row: RowSpec, plan: RowPlan, options: BenchOptions) -> Restorer:
    """Build the real model of ``row`` with its resolved weights (network weights first, then
    the embedder's) as a :class:`~daclip_kit.core.pipeline.RestorationPipeline`."""
    import torch

    from ..checkpoint import load_strict, read_state_dict
    from ..compat import OFFICIAL_LOADERS, load_official
    from ..core.pipeline import RestorationPipeline
    from ..factory import create_backbone, create_sampler
    from ..plugins import get_registry

    net_path = plan.weights[row.weights[0]]
    if row.model in OFFICIAL_LOADERS:
        net = load_official(row.model, net_path, config=dict(row.model_config))
    else:
        net = create_backbone(row.model, **row.model_config)
        load_strict(net, read_state_dict(net_path), source=str(net_path))
    net = net.to(options.device).eval()
    embedder = None
    if row.embedder is not None:
        emb_weights = row.weights[1] if len(row.weights) > 1 else None
        embedder = _build_embedder(row, plan, options, emb_weights)
    settings = dict(row.sampler_settings)
    call_kwargs = {"steps": settings.pop("steps", None), "mode": settings.pop("mode", None)}
    if get_registry("backbones").get(row.model).kind == "denoiser":
        pipe = RestorationPipeline(embedder=embedder, denoiser=net,
                                   sampler=create_sampler(row.sampler, **settings))
        call_kwargs["generator"] = torch.Generator(options.device).manual_seed(options.seed)
    else:
        pipe = RestorationPipeline(embedder=embedder, backbone=net)
        call_kwargs = {}

    def restore(lq):
        return pipe(lq, **call_kwargs).image

    return restore


def build_classifier(row: RowSpec, plan: RowPlan, options: BenchOptions) -> Classifier:
    """Zero-shot classifier of ``row``: ``embedder.classify(images, labels).probs``."""
    weights_name = row.weights[0] if row.weights else None
    embedder = _build_embedder(row, plan, options, weights_name)

    def classify(images, labels):
        return embedder.classify(images.to(options.device), list(labels)).probs

    return classify


# --- measuring ----------------------------------------------------------------------------------


@dataclass
class MetricNets:
    """Networks of the learned metrics; ``None`` with a note when unavailable."""

    lpips: Any = None
    fid: Any = None
    notes: dict[str, str] = field(default_factory=dict)


def load_metric_nets(metrics: Sequence[str], options: BenchOptions, *, lpips_net: Any = None,
                     fid_net: Any = None) -> MetricNets:
    """Load the LPIPS / FID networks the table needs; missing weights become notes."""
    nets = MetricNets(lpips=lpips_net, fid=fid_net)
    if "lpips" in metrics and nets.lpips is None:
        try:
            from ..metrics.perceptual import load_lpips

            nets.lpips = load_lpips(options.weights_dir, device=options.device)
        except DaclipKitError as exc:
            nets.notes["lpips"] = str(exc)
    if "fid" in metrics and nets.fid is None:
        try:
            from ..metrics.inception import load_fid_inception

            nets.fid = load_fid_inception(options.weights_dir, device=options.device)
        except DaclipKitError as exc:
            nets.notes["fid"] = str(exc)
    return nets


def _mean(values: Sequence[float]) -> float:
    return math.fsum(values) / len(values)


def _fill_averages(table: TableSpec, values: dict[str, float]) -> list[str]:
    notes = []
    for col in table.columns:
        if not col.average_of:
            continue
        parts = [values.get(f"{d}/{col.metric}") for d in col.average_of]
        if all(p is not None for p in parts):
            values[col.key] = _mean(parts)
        elif any(p is not None for p in parts):
            absent = [d for d, p in zip(col.average_of, parts) if p is None]
            notes.append(f"{col.key} not computed: it averages all of {', '.join(col.average_of)}; "
                         f"missing {', '.join(absent)}")
    return notes


def _restoration_row(table: TableSpec, restore: Restorer, label: str, datasets: Sequence[str],
                     options: BenchOptions, nets: MetricNets, records: list[ImageRecord],
                     progress: Progress | None, notes: list[str]) -> dict[str, float]:
    from ..io import read_image
    from ..metrics.fid_score import feature_stats
    from ..metrics.frechet import FeatureStats, frechet_distance_from_stats
    from ..metrics.peak_snr import psnr
    from ..metrics.perceptual import lpips
    from ..metrics.structural import ssim
    from .data import paired_images

    p = table.protocol
    metrics = table.metrics()
    values: dict[str, float] = {}
    for dataset in datasets:
        pairs = paired_images(options.data_root, dataset, options.limit)
        per_metric: dict[str, list[float]] = {}
        stats = (FeatureStats(), FeatureStats()) if "fid" in metrics and nets.fid is not None else None
        for i, (lq_path, gt_path) in enumerate(pairs):
            lq, gt = read_image(lq_path).to(options.device), read_image(gt_path)
            if lq.shape != gt.shape:
                raise DaclipKitError(f"{lq_path} is {tuple(lq.shape[-2:])} but its GT {gt_path} is "
                                     f"{tuple(gt.shape[-2:])}; LQ and GT must have the same size.")
            t0 = time.perf_counter()
            out = restore(lq).detach().float().cpu().clamp(0, 1)  # the copy waits for the device
            seconds = time.perf_counter() - t0
            row_vals: dict[str, Any] = {}
            for m in metrics:
                if m in _PAIRED:
                    fn = psnr if m.startswith("psnr") else ssim
                    row_vals[m] = float(fn(out, gt, crop_border=p.crop_border,
                                           y_channel=p.y_channel or m.endswith("-y"),
                                           quantize=p.quantize)[0])
                elif m == "lpips" and nets.lpips is not None:
                    row_vals[m] = float(lpips(out, gt, net=nets.lpips)[0])
            if stats is not None:
                feature_stats(out, nets.fid, quantize=p.quantize, stats=stats[0])
                feature_stats(gt, nets.fid, quantize=p.quantize, stats=stats[1])
            for m, v in row_vals.items():
                per_metric.setdefault(m, []).append(v)
            records.append(ImageRecord(label, dataset, lq_path.name, row_vals, seconds))
            if progress:
                progress(f"{table.name} {label} {dataset}", i + 1, len(pairs))
        for m, vs in per_metric.items():
            values[f"{dataset}/{m}"] = _mean(vs)
        if stats is not None and stats[0].count >= 2:
            values[f"{dataset}/fid"] = frechet_distance_from_stats(*stats)
        elif stats is not None:
            notes.append(f"{dataset}/fid not computed: FID needs at least 2 images per data set "
                         f"(got {stats[0].count}; raise --limit)")
    return values


def _classification_row(table: TableSpec, classify: Classifier, label: str, datasets: Sequence[str],
                        options: BenchOptions, records: list[ImageRecord],
                        progress: Progress | None) -> dict[str, float]:
    from ..io import read_image
    from ..types import DEGRADATIONS
    from .data import lq_images

    texts = [table.protocol.prompt_template.format(d) for d in DEGRADATIONS]
    values: dict[str, float] = {}
    for dataset in datasets:
        files = lq_images(options.data_root, dataset, options.limit)
        truth = DEGRADATIONS.index(dataset)
        correct = 0
        for i, path in enumerate(files):
            t0 = time.perf_counter()
            probs = classify(read_image(path), texts)
            seconds = time.perf_counter() - t0
            pred = int(probs[0].argmax())
            correct += pred == truth
            records.append(ImageRecord(label, dataset, path.name,
                                       {"predicted": DEGRADATIONS[pred], "correct": pred == truth,
                                        "probability": float(probs[0, pred])}, seconds))
            if progress:
                progress(f"{table.name} {label} {dataset}", i + 1, len(files))
        values[f"{dataset}/accuracy"] = 100.0 * correct / len(files)
    return values


def run_table(table: TableSpec, options: BenchOptions, *,
              restorers: Mapping[str, Restorer] | None = None,
              classifiers: Mapping[str, Classifier] | None = None,
              lpips_net: Any = None, fid_net: Any = None,
              progress: Progress | None = None) -> TableResult:
    """Measure every runnable row of ``table``.

    Args:
        table: the table spec.
        options: data, weights, device, limits.
        restorers: row label -> restorer used instead of building the row's model.
        classifiers: row label -> classifier used instead of building the row's embedder.
        lpips_net, fid_net: replace the LPIPS / FID feature networks (tests).
        progress: called as ``progress(description, done, total)`` after each image.

    Returns:
        a :class:`TableResult`; rows that could not run or failed (a :class:`DaclipKitError`, or a
        ``RuntimeError`` such as CUDA running out of memory) carry notes, never an exception.

    Raises:
        ConfigError, UnknownComponentError: see :func:`plan_table` (raised before anything runs).
    """
    if table.kind == "complexity":
        from .complexity_table import run_complexity

        return run_complexity(table, options, progress=progress)
    injected = dict(restorers or {}) if table.kind == "restoration" else dict(classifiers or {})
    plans = plan_table(table, options, injected=list(injected))
    result = TableResult(table, options, [])
    from .data import missing_data_summary

    absent, data_note = missing_data_summary(options.data_root, table.datasets(),
                                             need_gt=table.kind == "restoration")
    present = [d for d in table.datasets() if d not in absent]
    if data_note:
        result.notes.append(data_note)
    nets = MetricNets()
    if table.kind == "restoration" and present and any(p.runnable for p in plans):
        nets = load_metric_nets(table.metrics(), options, lpips_net=lpips_net, fid_net=fid_net)
        result.notes.extend(nets.notes.values())
    for plan in plans:
        label = plan.row.label
        if not plan.runnable:
            result.rows.append(RowResult(label, "not-run", notes=plan.missing))
            continue
        if not present:
            result.rows.append(RowResult(label, "not-run", notes=["no data set of this table is present"]))
            continue
        notes: list[str] = []
        try:
            if table.kind == "restoration":
                model = injected.get(label) or build_restorer(plan.row, plan, options)
                values = _restoration_row(table, model, label, present, options, nets,
                                          result.images, progress, notes)
            else:
                model = injected.get(label) or build_classifier(plan.row, plan, options)
                values = _classification_row(table, model, label, present, options,
                                             result.images, progress)
        except (DaclipKitError, RuntimeError) as exc:
            # RuntimeError: torch failures such as CUDA out of memory; the other rows still run
            message = str(exc) if isinstance(exc, DaclipKitError) else f"{type(exc).__name__}: {exc}"
            log.warning("row %r of table %s failed: %s", label, table.name, message)
            result.rows.append(RowResult(label, "failed", notes=[message]))
            continue
        notes += _fill_averages(table, values)
        complete = all(c.key in values for c in table.columns)
        result.rows.append(RowResult(label, "measured" if complete else "partial", values, notes))
    return result
