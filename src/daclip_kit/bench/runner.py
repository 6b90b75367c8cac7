"""Running a benchmark table: measure the rows :mod:`.plan` found runnable, keep every image's result.

Pure library code: no console output (progress goes to an optional callback, messages to
``logging``). Rows that cannot run (paper-only baselines, missing architecture, weights or data)
are returned with notes saying what is missing and how to get it.

Models can be injected (``restorers=`` / ``classifiers=``), which is how tests run the mechanics on a
tiny synthetic data set; users measure their own trained weights with ``row_weights`` (CLI
``--weights LABEL=PATH``, ``--weights LABEL@DATASET=PATH``: a file, a network folder or a
``daclip-kit train`` run folder) and ``runs_dir`` (CLI ``--runs DIR``: the run folders of the
bundled run files). Rows the authors never released run only with such weights. A row with
per-data-set weights gets one restorer per data set. Restoration rows are built by
:func:`daclip_kit.pipelines.build.build_pipeline` from the row's pipeline and overrides, metrics by
:func:`daclip_kit.metrics.meters.make_meter` from the metrics registry.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from ..core import distributed
from ..errors import DaclipKitError, InputError, WeightsNotFoundError
from ..factory import create_embedder
from ..io import read_image
from ..pipelines.recipe import layer_overrides
from ..types import DEGRADATIONS
from .complexity_table import run_complexity
from .plan import (
    BenchOptions,
    ImageRecord,
    Progress,
    RowPlan,
    RowResult,
    TableResult,
    plan_table,
)
from .spec import RowSpec, TableSpec

log = logging.getLogger(__name__)

#: ``lq (1, 3, H, W) in [0, 1] -> restored (1, 3, H, W) in [0, 1]``.
Restorer = Callable[[Any], Any]
#: ``(images (B, 3, H, W) in [0, 1], label texts) -> (B, N) probabilities``.
Classifier = Callable[[Any, Sequence[str]], Any]


# --- building real models ----------------------------------------------------------------------


def _sampler_key(key: str) -> bool:
    return key in ("sampler", "steps") or key.startswith("sampler.")


def row_overrides(row: RowSpec, network: Any) -> tuple[dict[str, Any], str | None]:
    """The row's recipe settings for the network ``network`` (a path or weights name), and a note
    when some do not apply: a native folder that records a sampler other than the row pipeline's
    (a distilled student's K-step ``mrs``) restores with its own, so the row's sampler settings
    (the paper's ``sampler.mode = "sde"``) are left out."""
    from ..pipelines.recipe import get_recipe
    from ..pretrained import is_native_folder, native_info

    overrides = dict(row.overrides)
    sampler_keys = [k for k in overrides if _sampler_key(k)]
    if not sampler_keys or not isinstance(network, (str, Path)) or not is_native_folder(Path(network)):
        return overrides, None
    own = native_info(Path(network)).sampler
    assert row.pipeline is not None  # a restoration row that runs names its model
    if not own or own.get("name") == get_recipe(row.pipeline).sampler:
        return overrides, None
    count = own.get("config", {}).get("num_sample_steps")
    what = f"{own['name']}, {count} evaluation{'s' if count != 1 else ''}" if count else own["name"]
    note = (f"{row.label}: {network} restores with the sampler saved with it ({what}), "
            f"not the row's {', '.join(sampler_keys)}")
    return {k: v for k, v in overrides.items() if not _sampler_key(k)}, note


def sampler_note(row: RowSpec, built: Any, user: Mapping[str, Any], dropped: Mapping[str, Any]) -> str:
    """The note of a row restored with the ``--sampler``/``--steps`` the user chose: which sampler
    ran, with how many network evaluations, and the row's settings left out because that sampler
    does not have them."""
    name = built.recipe.sampler
    count = built.pipeline.evaluations()
    given = " ".join(f"--{k} {user[k]}" for k in ("sampler", "steps") if k in user)
    note = f"restored with the {name} sampler, {count} evaluation{'s' if count != 1 else ''} ({given})"
    if dropped:
        settings = ", ".join(f"{k} = {v!r}" for k, v in dropped.items())
        note += f"; the row's {settings} left out ({name} has no such setting)"
    return note


def build_restorer(row: RowSpec, plan: RowPlan, options: BenchOptions, dataset: str = "",
                   notes: list[str] | None = None) -> Restorer:
    """The model of ``row`` for ``dataset`` (``""``: the row's model for every data set), built by
    :func:`~daclip_kit.pipelines.build.build_pipeline` from the weights the plan resolved (a run's
    network with the embedder it was trained with); every image's noise comes from its own
    generator seeded with ``options.seed``. A network folder saved with its own sampler (a
    distilled student) runs it (:func:`row_overrides`; the note is added to ``notes``).
    ``--sampler``/``--steps`` (``options.overrides``) still apply, layered over the row's settings
    (:func:`~daclip_kit.pipelines.recipe.layer_overrides`): the row's settings of its own sampler
    that the chosen one lacks (the paper rows' ``sampler.mode``) are left out, shared SDE settings
    carry over, and the note says which sampler ran (:func:`sampler_note`).

    Raises:
        WeightsNotFoundError: the plan holds no weights for ``dataset``.
    """
    from ..core.pipeline import per_image_generators
    from ..pipelines.build import build_pipeline

    recipe, pipeline = plan.recipe, row.pipeline
    assert recipe is not None and pipeline is not None  # a restoration row that runs has both
    model = plan.model_for(dataset)
    if model is None:
        raise WeightsNotFoundError(f"row {row.label!r} has no weights for {dataset or 'its data sets'}; pass "
                                   f"--weights '{row.label}@{dataset or 'DATASET'}=PATH'.")
    user = dict(options.overrides) if recipe.sampler else {}
    if "sampler" in user:  # the user's sampler replaces the row's and a folder's own
        own, note = dict(row.overrides), None
    else:
        own, note = row_overrides(row, model.network)
    overrides, dropped = layer_overrides(own, user)
    if model.embedder is not None:  # the embedder the run was trained with ("" = none)
        overrides["embedder"] = model.embedder
        overrides.update({f"embedder.{k}": v for k, v in model.embedder_options.items()})
        if model.embedder_weights is None:
            overrides["embedder_weights"] = ""
    built = build_pipeline(pipeline, weights=model.network, embedder_weights=model.embedder_weights,
                           device=options.device, download=False, overrides=overrides)
    pipe = built.pipeline
    said = [note] if note else []
    if "sampler" in user or "steps" in user:
        said.append(sampler_note(row, built, user, dropped))
    if notes is not None:
        notes.extend(line for line in said if line not in notes)

    def restore(lq):
        return pipe(lq, generator=per_image_generators(options.seed, lq.shape[0]), precision=options.precision,
                    compile=options.compile).image

    return restore


class _EmbedderClassifier:
    """``classify(images, labels)``: ``embedder.classify(images, labels).probs`` on ``device``."""

    def __init__(self, embedder: Any, device: str):
        self.embedder = embedder
        self.device = device
        self.degradations = tuple(embedder.degradations)

    def __call__(self, images: Any, labels: Sequence[str]) -> Any:
        return self.embedder.classify(images.to(self.device), list(labels)).probs


def build_classifier(row: RowSpec, plan: RowPlan, options: BenchOptions) -> Classifier:
    """Zero-shot classifier of ``row``: ``embedder.classify(images, labels).probs``; its
    ``degradations`` attribute holds the embedder's own words (the classes of the table)."""
    cfg = dict(row.embedder_config)
    if row.weights:
        cfg["weights"] = str(plan.weights[row.weights[0]])
    assert row.embedder is not None  # a classification row that runs names its embedder
    return _EmbedderClassifier(create_embedder(row.embedder, device=options.device, **cfg), options.device)


# --- measuring ----------------------------------------------------------------------------------


def make_meters(table: TableSpec, options: BenchOptions, networks: Mapping[str, Any]) -> tuple[dict, dict[str, str]]:
    """Meter factories of the table's metrics and notes for the ones that cannot be computed.

    Each factory builds a fresh meter per data set; a metric whose network is missing (LPIPS,
    FID weights) gets a note instead, and the other metrics still run.
    """
    from ..metrics.meters import MeterContext, meter_factories

    context = MeterContext(table.protocol, device=options.device,
                           search_dirs=[options.weights_dir] if options.weights_dir else [],
                           networks=dict(networks))
    factories, failed = meter_factories(table.metrics(), context)
    return factories, {metric: str(exc) for metric, exc in failed.items()}


def _mean(values: Sequence[float]) -> float:
    return math.fsum(values) / len(values)


def _fill_averages(table: TableSpec, values: dict[str, float]) -> list[str]:
    notes = []
    for col in table.columns:
        if not col.average_of:
            continue
        parts = [values.get(f"{d}/{col.metric}") for d in col.average_of]
        if all(p is not None for p in parts):
            values[col.key] = _mean([p for p in parts if p is not None])
        elif any(p is not None for p in parts):
            absent = [d for d, p in zip(col.average_of, parts, strict=True) if p is None]
            notes.append(f"{col.key} not computed: it averages all of {', '.join(col.average_of)}; "
                         f"missing {', '.join(absent)}")
    return notes


def _restoration_row(table: TableSpec, restore: Restorer, label: str, datasets: Sequence[str],
                     options: BenchOptions, meters: Mapping[str, Callable[[], Any]], records: list[ImageRecord],
                     progress: Progress | None, notes: list[str]) -> dict[str, float]:
    from ..metrics.score import score_pairs
    from .data import paired_images

    values: dict[str, float] = {}
    for dataset in datasets:
        pairs = paired_images(options.data_root, dataset, options.limit)

        def on_image(i, n, _name, _values, _seconds, dataset=dataset):
            if progress:
                progress(f"{table.name} {label} {dataset}", i, n)

        means, images = score_pairs(pairs, meters, restore=restore, device=options.device, on_image=on_image)
        records.extend(ImageRecord(label, dataset, s.name, s.values, s.seconds) for s in images)
        for m, value in means.items():
            if value is not None:
                values[f"{dataset}/{m}"] = value
            elif m == "fid":
                notes.append(f"{dataset}/fid not computed: FID needs at least 2 images per data set "
                             f"(got {len(pairs)}; raise --limit)")
    return values


def _message(exc: Exception) -> str:
    return str(exc) if isinstance(exc, DaclipKitError) else f"{type(exc).__name__}: {exc}"


def _restoration_models(table: TableSpec, plan: RowPlan, datasets: Sequence[str], options: BenchOptions,
                        meters: Mapping[str, Callable[[], Any]], records: list[ImageRecord],
                        progress: Progress | None, notes: list[str],
                        ) -> tuple[dict[str, float], list[tuple[list[str], Exception]]]:
    """Measure a row with the restorer of each data set: one per (row, data set) when the row has
    per-data-set weights, else one for all. Returns the values and ``(data sets, error)`` of the
    restorers that failed (the others still count)."""
    groups: dict[str, list[str]] = {}
    for dataset in datasets:
        key = dataset if dataset in plan.models else ("" if "" in plan.models else None)
        if key is not None:
            groups.setdefault(key, []).append(dataset)
    values: dict[str, float] = {}
    failures: list[tuple[list[str], Exception]] = []
    restore: Restorer | None = None
    for key, sets in groups.items():
        try:
            restore = build_restorer(plan.row, plan, options, key, notes)
            values.update(_restoration_row(table, restore, plan.row.label, sets, options, meters, records,
                                           progress, notes))
        except (DaclipKitError, RuntimeError) as exc:
            log.warning("row %r of table %s failed on %s: %s", plan.row.label, table.name, ", ".join(sets),
                        _message(exc))
            failures.append((sets, exc))
        finally:
            restore = None  # free the model before the next data set's
    return values, failures


def _classification_row(table: TableSpec, classify: Classifier, label: str, datasets: Sequence[str],
                        options: BenchOptions, records: list[ImageRecord],
                        progress: Progress | None) -> dict[str, float]:
    from .data import lq_images

    words = tuple(getattr(classify, "degradations", DEGRADATIONS))
    texts = [table.protocol.prompt_template.format(d) for d in words]
    values: dict[str, float] = {}
    for dataset in datasets:
        if dataset not in words:
            raise InputError(f"data set {dataset!r} is not one of the classifier's degradation words "
                             f"({', '.join(words)}); it has no ground-truth label.")
        files = lq_images(options.data_root, dataset, options.limit)
        truth = words.index(dataset)
        correct = 0
        for i, path in enumerate(files):
            t0 = time.perf_counter()
            probs = classify(read_image(path), texts)
            seconds = time.perf_counter() - t0
            pred = int(probs[0].argmax())
            correct += pred == truth
            records.append(ImageRecord(label, dataset, path.name,
                                       {"predicted": words[pred], "correct": pred == truth,
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
        ``RuntimeError`` such as CUDA running out of memory) carry notes, never an exception; the
        failures' messages are also in :attr:`RowResult.errors` (:meth:`TableResult.failures`).

    Raises:
        ConfigError, UnknownComponentError: see :func:`plan_table` (raised before anything runs).
    """
    if table.kind == "complexity":
        return run_complexity(table, options, progress=progress)
    injected: dict[str, Callable[..., Any]] = (dict(restorers or {}) if table.kind == "restoration"
                                               else dict(classifiers or {}))
    plans = plan_table(table, options, injected=list(injected))
    result = TableResult(table, options, [])
    from .data import missing_data_summary

    absent, data_note = missing_data_summary(options.data_root, table.datasets(),
                                             need_gt=table.kind == "restoration")
    present = [d for d in table.datasets() if d not in absent]
    if data_note:
        result.notes.append(data_note)
    meters: dict = {}
    if table.kind == "restoration" and present and any(p.runnable for p in plans):
        networks = {k: v for k, v in (("lpips", lpips_net), ("fid", fid_net)) if v is not None}
        meters, meter_notes = make_meters(table, options, networks)
        result.notes.extend(meter_notes.values())
    for plan in plans:
        label = plan.row.label
        if not plan.runnable:
            result.rows.append(RowResult(label, "not-run", notes=plan.missing))
            continue
        if not present:
            result.rows.append(RowResult(label, "not-run", notes=["no data set of this table is present"]))
            continue
        notes: list[str] = list(plan.notes)
        errors: list[str] = []
        try:
            if table.kind == "restoration" and label in injected:
                values = _restoration_row(table, injected[label], label, present, options, meters,
                                          result.images, progress, notes)
            elif table.kind == "restoration":
                values, failures = _restoration_models(table, plan, present, options, meters, result.images,
                                                       progress, notes)
                if failures and not values:
                    raise failures[0][1]
                errors = [f"{', '.join(sets)} not measured: {_message(exc)}" for sets, exc in failures]
                notes += errors
            else:
                model = injected.get(label) or build_classifier(plan.row, plan, options)
                values = _classification_row(table, model, label, present, options,
                                             result.images, progress)
        except (DaclipKitError, RuntimeError) as exc:
            # RuntimeError: torch failures such as CUDA out of memory; the other rows still run
            message = _message(exc)
            log.warning("row %r of table %s failed: %s", label, table.name, message)
            result.rows.append(RowResult(label, "failed", notes=[message], errors=[message]))
            continue
        if table.kind == "restoration" and label not in injected and not any(plan.model_for(d) for d in present):
            # per-data-set weights only for data sets that are absent here
            result.rows.append(RowResult(label, "not-run", notes=notes + [
                "none of the data sets it has weights for is present"], errors=errors))
            continue
        notes += _fill_averages(table, values)
        complete = all(c.key in values for c in table.columns)
        result.rows.append(RowResult(label, "measured" if complete else "partial", values, notes, errors))
    return result


def run_table_distributed(table: TableSpec, options: BenchOptions, *, progress: Progress | None = None,
                          **injected: Any) -> TableResult | None:
    """:func:`run_table` with the rows spread over the processes of a ``torchrun`` job.

    Each process measures every ``world``-th selected row on its own device; rank 0 returns the
    merged result (rows in table order) and the other ranks ``None``. With one process this is
    :func:`run_table`.
    """
    import dataclasses


    proc = distributed.current()
    if not proc.distributed:
        return run_table(table, options, progress=progress, **injected)
    labels = [r.label for r in table.rows if options.rows is None or r.label in options.rows]
    mine = tuple(distributed.shard(labels, proc))
    part = run_table(table, dataclasses.replace(options, rows=mine), progress=progress, **injected) if mine else None
    parts = [p for p in distributed.gather(part) if p is not None]
    if not proc.is_main:
        return None
    by_label = {r.label: r for p in parts for r in p.rows}
    merged = TableResult(table, options, [by_label[label] for label in labels if label in by_label])
    merged.images = [i for p in parts for i in p.images]
    merged.notes = list(dict.fromkeys(n for p in parts for n in p.notes))
    for p in parts:
        merged.extra.update(p.extra)
    merged.extra["processes"] = proc.world
    return merged
