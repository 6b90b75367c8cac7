"""Planning a benchmark table: which rows can run here, with which recipe and weights.

Also the records a run produces (:class:`RowResult`, :class:`TableResult`), shared by the
restoration/classification runner and the complexity table. No model is built here.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from ..errors import ConfigError, DaclipKitError, InputError, suggest
from ..pipelines.recipe import get_recipe, with_overrides
from ..plugins import get_registry
from ..specs import PipelineSpec
from ..types import DEGRADATIONS
from ..weights import resolve_weights
from .runs import (
    ModelWeights,
    describe_error,
    network_mismatch,
    resolve_model,
    run_folder_name,
    train_command,
)
from .spec import MetricProtocol, RowSpec, TableSpec

log = logging.getLogger(__name__)

#: ``progress(description, done, total)``.
Progress = Callable[[str, int, int], None]


class WeightsLabelError(ConfigError):
    """A ``--weights LABEL=PATH`` whose ``LABEL`` names no row the run measures with it: not a row
    of the table, a row ``--row`` leaves out, or a row of a table that takes no weights. A usage
    error: ``daclip-kit bench`` exits 2 with the message, which lists the rows."""


def _row_list(table: TableSpec, labels: Sequence[str] | None = None) -> str:
    return ", ".join(labels if labels is not None else [r.label for r in table.rows])


def unknown_label(table: TableSpec, key: str, label: str) -> WeightsLabelError:
    """The error of ``--weights KEY=...`` whose row ``label`` is not in ``table``: it names the
    label, the closest row labels and every row of the table."""
    rows = [r.label for r in table.rows]
    return WeightsLabelError(f"--weights {key!r}: {label!r} is not a row of table {table.name}."
                             f"{suggest(label, rows)} Rows of table {table.name}: {_row_list(table)}.")


@dataclass(frozen=True, kw_only=True)
class BenchOptions:
    """Settings of one benchmark run (all recorded in the JSON).

    Attributes:
        data_root: folder holding ``val/<data set>/{LQ,GT}``.
        weights_dir: folder searched first for model and metric weights.
        limit: at most this many images per data set (``None``: all).
        device: ``"cpu"``, ``"cuda"``, ``"cuda:1"``, ...
        seed: seed of every image's sampler noise (the restore seeding rule).
        rows: only these row labels (``None``: all).
        size: input size of complexity tables (default: the table's protocol, 256).
        repeats: timed forward passes per model in complexity tables (0 skips runtime).
        row_weights: ``{row label: weights}`` measured instead of the row's named weights (a
            file, a native folder, a ``daclip-kit train`` run folder or one of its checkpoints, or
            a name); ``{"LABEL@DATASET": weights}`` for one data set of the row (rows measured
            with one model per data set, Table 7).
        runs_dir: folder holding the run folders of the bundled run files (``runs``): every
            row naming a run reads ``runs_dir/<run with - for _>`` unless ``row_weights`` names it.
        overrides: recipe settings applied to every restoration row on top of its own
            (``{"sampler": "mrs", "steps": 10}``).
        precision, compile: how the restoration rows run (:class:`~daclip_kit.core.pipeline.RestoreOptions`;
            default fp32 eager, the official test script's arithmetic).
    """

    data_root: Path | None = None
    weights_dir: Path | None = None
    limit: int | None = None
    device: str = "cpu"
    seed: int = 0
    rows: tuple[str, ...] | None = None
    size: int | None = None
    repeats: int = 3
    row_weights: Mapping[str, str] = field(default_factory=dict)
    runs_dir: Path | None = None
    overrides: Mapping[str, Any] = field(default_factory=dict)
    precision: str = "fp32"
    compile: bool = False


@dataclass
class RowPlan:
    """Whether a row can run, the weights it resolved and what is missing.

    ``models`` holds the weights of each restorer of a restoration row: key ``""`` for every data
    set, or a data set name (rows measured with one model per data set); ``notes`` are remarks on
    a runnable row (a data set left without weights, whose weights are measured).
    """

    row: RowSpec
    runnable: bool
    missing: list[str] = field(default_factory=list)
    weights: dict[str, Path] = field(default_factory=dict)
    injected: bool = False
    recipe: PipelineSpec | None = None
    models: dict[str, ModelWeights] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    def model_for(self, dataset: str) -> ModelWeights | None:
        """The weights ``dataset`` is measured with (its own, else the row's), or ``None``."""
        return self.models.get(dataset) or self.models.get("")


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
    """One row: measured cell values (column key -> value), status and notes.

    ``errors`` holds the message of each exception raised while building or running the row's
    models (also in ``notes``): a ``failed`` row's, or the data sets a ``partial`` row could not
    measure. A row that did not run for want of weights or data (``not-run``) has none.
    """

    label: str
    status: Literal["measured", "partial", "not-run", "failed"]
    values: dict[str, float] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)


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

    def failures(self) -> list[tuple[str, str]]:
        """``(row label, first line of its first error)`` of every row an exception kept from being
        measured, wholly or in part (:attr:`RowResult.errors`)."""
        return [(r.label, r.errors[0].strip().splitlines()[0] if r.errors[0].strip() else "error")
                for r in self.rows if r.errors]


# --- planning ------------------------------------------------------------------------------------


def locate_weights(name: str, weights_dir: Path | None) -> tuple[Path | None, str]:
    """Find the weights ``name`` (a registered name or a path) without downloading:
    ``(path, "")`` or ``(None, what is missing and how to get it)``."""

    try:
        return resolve_weights(name, search_dirs=[weights_dir] if weights_dir else []), ""
    except DaclipKitError as exc:
        return None, str(exc)


def row_recipe(row: RowSpec, options: BenchOptions) -> PipelineSpec:
    """The recipe a restoration or complexity row measures: its pipeline with the row's and the
    run's overrides."""
    if row.pipeline is None:
        raise ConfigError(f"row {row.label!r} names no pipeline to measure.")
    recipe = with_overrides(get_recipe(row.pipeline), row.overrides)
    if options.overrides and recipe.sampler:
        recipe = with_overrides(recipe, options.overrides)
    return recipe


def _unknown_classes(table: TableSpec, words: Sequence[str] = DEGRADATIONS) -> list[str]:
    """Data sets of a classification table that are not one of ``words`` (no ground truth)."""

    if table.kind != "classification":
        return []
    return [d for d in table.datasets() if d not in words]


def classifier_words(weights: Mapping[str, Path]) -> tuple[str, ...]:
    """The degradation words of a classification row's embedder: those its weights folder records
    (a DA-CLIP trained on new degradations), else the ten."""
    from ..pretrained import recorded_degradations

    for path in weights.values():
        words = recorded_degradations(path)
        if words:
            return words
    return DEGRADATIONS


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


def split_weights_key(table: TableSpec, key: str) -> tuple[str, str]:
    """``(row label, data set)`` of a ``row_weights`` key: ``"LABEL"`` (data set ``""``: every
    data set of the row) or ``"LABEL@DATASET"``.

    Raises:
        WeightsLabelError: no row ``LABEL`` (the message lists the labels).
        ConfigError: ``DATASET`` is not a data set of the table, or a row measured with one model per
            data set is given one set of weights for all of them.
    """
    labels = [r.label for r in table.rows]
    label, dataset = key, ""
    if key not in labels and "@" in key:
        label, _, dataset = key.rpartition("@")
    if label.strip() not in labels:
        raise unknown_label(table, key, label.strip())
    row = table.row(label.strip())
    dataset = dataset.strip()
    datasets = table.datasets()
    if dataset and dataset not in datasets:
        raise ConfigError(f"--weights {key!r}: table {table.name} has no data set {dataset!r}; use "
                          f"{' or '.join(f'{row.label}@{d}' for d in datasets)}.")
    if not dataset and row.per_dataset and table.kind == "restoration":
        raise ConfigError(f"Row {row.label!r} of table {table.name} is measured with one model per data set; give "
                          f"{' and '.join(repr(f'{row.label}@{d}=PATH') for d in datasets)} instead of "
                          f"{row.label + '=PATH'!r}.")
    return row.label, dataset


def _own_refs(table: TableSpec, row: RowSpec, options: BenchOptions) -> tuple[dict[str, str], dict[str, str]]:
    """``({model key: weights the user gave}, {model key: note on a run folder that is missing})``;
    key ``""`` means every data set of the row, else one data set."""
    refs: dict[str, str] = {}
    for key, value in options.row_weights.items():
        label, dataset = split_weights_key(table, key)
        if label == row.label and value:
            refs[dataset] = value
    absent: dict[str, str] = {}
    if options.runs_dir is None:
        return refs, absent
    keys = table.datasets() if row.per_dataset else [""]
    for key in keys:
        run = row.run_for(key or None)
        if not run or key in refs or "" in refs:
            continue
        folder = Path(options.runs_dir) / run_folder_name(run)
        if folder.is_dir():
            refs[key] = str(folder)
        else:
            absent[key] = f"no run folder {folder}: `{train_command(run)}` makes it"
    return refs, absent


def _how_to_measure(row: RowSpec, datasets: Sequence[str], options: BenchOptions) -> str:
    """How to give a user-trained row weights (one line)."""
    if row.per_dataset:
        flag = " ".join(f"--weights '{row.label}@{d}=RUN'" for d in datasets)
    else:
        flag = f"--weights '{row.label}=RUN'"
    runs = row.run_names()
    if not runs:
        return f"train it, then pass {flag}"
    commands = " and ".join(f"`{train_command(r)}`" for r in runs)
    where = str(options.runs_dir) if options.runs_dir is not None else "runs"
    return f"train it: {commands}, then --runs {where} (or {flag})"


def _locate_all(names: Sequence[str], weights_dir) -> tuple[dict[str, Path], list[str]]:
    """``({name: local file}, [why each missing one is missing])`` of named weights."""
    found: dict[str, Path] = {}
    missing: list[str] = []
    for name in names:
        path, why = locate_weights(name, weights_dir)
        if path is None:
            missing.append(why)
        else:
            found[name] = path
    return found, missing


def _released_plan(row: RowSpec, recipe: PipelineSpec, options: BenchOptions) -> RowPlan:
    """A row measured with its pipeline's released weights."""
    names = (recipe.weights,) + ((recipe.embedder_weights,) if recipe.embedder_weights else ())
    found, missing = _locate_all(names, options.weights_dir)
    plan = RowPlan(row, not missing, missing, found, recipe=recipe)
    if not missing:
        plan.models[""] = ModelWeights(network=found[recipe.weights], origin=f"released weights {recipe.weights}",
                                       embedder_weights=found.get(recipe.embedder_weights))
    return plan


def _own_plan(table: TableSpec, row: RowSpec, recipe: PipelineSpec, options: BenchOptions,
              refs: Mapping[str, str], absent: Mapping[str, str]) -> RowPlan:
    """A row measured with weights the user gave (files, network folders, training runs)."""
    search = [Path(options.weights_dir)] if options.weights_dir else []
    missing: list[str] = []
    models: dict[str, ModelWeights] = {}
    datasets = table.datasets()
    for key, ref in refs.items():
        who = f"weights of {key}" if key else "weights"
        try:
            model = resolve_model(ref, search_dirs=search)
        except DaclipKitError as exc:
            missing.append(f"{who} {ref!r}: {describe_error(exc)}")
            continue
        why = network_mismatch(model, recipe.backbone, row.network_config)
        if why:
            missing.append(why)
            continue
        if model.embedder is None and recipe.embedder_weights:  # not from a run: the recipe's embedder
            path, why = locate_weights(recipe.embedder_weights, options.weights_dir)
            if path is None:
                missing.append(why)
                continue
            model = dataclasses.replace(model, embedder_weights=path)
        models[key] = model
    if not models and not missing:
        if absent:
            missing.append("; ".join(absent[k] if not k else f"{k}: {absent[k]}" for k in absent)
                           + f" (or pass --weights '{row.label}{'@DATASET' if row.per_dataset else ''}=PATH')")
        else:
            missing.append(f"{row.note or 'weights not released'}; {_how_to_measure(row, datasets, options)}")
        return RowPlan(row, False, missing, recipe=recipe)
    plan = RowPlan(row, not missing, missing, recipe=recipe, models=models)
    if "" not in models:
        for d in datasets:
            if d not in models:
                why = absent.get(d) or f"no weights given; pass --weights '{row.label}@{d}=PATH'"
                plan.notes.append(f"{d} not measured: {why}")
    for key, model in models.items():
        scope = f" for {key}" if key else ""
        plan.notes.append(f"measured with your weights{scope} (your training, not the paper's model): "
                          f"{model.describe()}")
    if row.about:
        plan.notes.append(row.about)
    return plan


def plan_row(table: TableSpec, row: RowSpec, options: BenchOptions, *, injected: bool = False) -> RowPlan:
    """Decide whether ``row`` can run (data availability is handled per data set by the runner).

    A restoration row is measured with the weights the user gave (``options.row_weights``, its
    run folder under ``options.runs_dir``), else with its pipeline's released weights, except a
    ``user_trained`` row, which never falls back to released weights.
    """
    unknown = _unknown_classes(table)
    words = DEGRADATIONS
    if unknown and not injected and row.embedder is not None and row.embedder in get_registry("embedders"):
        words = classifier_words(_locate_all(row.weights, options.weights_dir)[0])
        unknown = _unknown_classes(table, words)
    if unknown:
        whose = "ten" if words == DEGRADATIONS else "model's"
        return RowPlan(row, False, [
            f"classification data set(s) {', '.join(unknown)} are not among the {whose} degradation labels "
            f"({', '.join(words)}), so they have no ground-truth label; name the columns after "
            "the labels"], injected=injected)
    if injected:
        return RowPlan(row, True, injected=True)
    if row.pipeline is None and row.embedder is None:
        return RowPlan(row, False, [f"paper-only: {row.note or 'not part of daclip-kit'}"])
    if table.kind == "classification":
        if row.embedder not in get_registry("embedders"):
            return RowPlan(row, False, [f"embedder {row.embedder!r} is not available in this installation"])
        found, missing = _locate_all(row.weights, options.weights_dir)
        return RowPlan(row, not missing, missing, found)
    try:
        recipe = row_recipe(row, options)
    except DaclipKitError as exc:
        return RowPlan(row, False, [f"model {row.pipeline!r} is not available in this installation ({exc})"])
    if table.kind == "complexity":
        return RowPlan(row, True, recipe=recipe)
    refs, absent = _own_refs(table, row, options)
    if refs or absent or row.user_trained:
        return _own_plan(table, row, recipe, options, refs, absent)
    if not recipe.weights:
        return RowPlan(row, False, [f"no released weights: {row.note or 'trained by the paper authors'}"],
                       recipe=recipe)
    return _released_plan(row, recipe, options)


def with_own_rows(table: TableSpec, row_weights: Mapping[str, str], *, search_dirs: Sequence[Path] = (),
                  rows: Sequence[str] | None = None) -> TableSpec:
    """``table`` plus one row for each ``--weights LABEL=PATH`` whose ``LABEL`` is not a row of a
    restoration table: the network at ``PATH`` (a native folder names it; a file is recognised from
    its keys, spandrel's architectures included), measured like a user-trained row.

    Args:
        rows: the row labels the run is limited to (``--row``); a new label must be one of them.

    Raises:
        WeightsLabelError: ``LABEL`` is not a row and ``PATH`` holds no network daclip-kit
            recognises, or cannot be read, or ``rows`` leaves the new row out (the message names
            the label and lists the table's rows, in case ``LABEL`` was meant to be one).
    """
    from ..pretrained import detect_network, find_network_spec, load_network

    if table.kind != "restoration":
        return table
    labels = {r.label for r in table.rows}
    extra: list[RowSpec] = []
    for key, ref in row_weights.items():
        if key in labels or ("@" in key and key.rpartition("@")[0].strip() in labels):
            continue
        unknown = str(unknown_label(table, f"{key}={ref}", key))
        if rows is not None and key not in rows:
            raise WeightsLabelError(f"{unknown} A new label adds a row for your own network, but --row "
                                    f"selects only {_row_list(table, rows)}; add --row {key!r} to measure it.")
        try:
            model = resolve_model(ref, search_dirs=search_dirs)
        except DaclipKitError as exc:
            raise WeightsLabelError(f"{unknown} A new label adds a row for your own network, but {ref!r} "
                                    f"cannot be read: {describe_error(exc)}") from exc
        found = [model.network_name] if model.network_name else detect_network(model.network)
        if not found:
            raise WeightsLabelError(
                f"{unknown} A new label adds a row for your own network, but {ref!r} holds no network daclip-kit "
                "recognises (a native folder, an official release, or a checkpoint spandrel reads).")
        spec = find_network_spec(found[0])[1]
        about = f"a {spec.name} network"
        if getattr(spec, "architecture_from_weights", False):  # only the weights say which architecture it is
            network = load_network(spec.name, model.network)
            describe = getattr(network, "describe", None)
            about = describe() if describe is not None else about
        extra.append(RowSpec(label=key, pipeline=spec.name, user_trained=True, note=f"your network ({ref})",
                             about=about))
    return dataclasses.replace(table, rows=table.rows + tuple(extra)) if extra else table


def check_run_options(table: TableSpec, row_weights: Mapping[str, str], runs_dir: str | Path | None,
                      rows: Sequence[str] | None = None) -> None:
    """Check ``--weights LABEL[@DATASET]=...`` keys against ``table``, the selected ``rows``
    (``--row``; ``None``: all) and the ``--runs`` folder.

    Raises:
        WeightsLabelError: a key naming a row the table lacks, a row ``rows`` leaves out, or any
            row of a table that is not a restoration table (its rows take no such weights).
        ConfigError: a key naming a data set the table lacks.
        InputError: ``runs_dir`` is not a folder.
    """
    for key in row_weights:
        label, _ = split_weights_key(table, key)  # unknown label or data set -> error with the valid ones
        if table.kind != "restoration":
            what = ("whose rows use the weights they name (found in --weights-dir)" if table.kind == "classification"
                    else "which measures architectures, not weights")
            raise WeightsLabelError(f"--weights {key!r}: table {table.name} is a {table.kind} table, {what}; "
                                    "--weights is for the rows of restoration tables.")
        if rows is not None and label not in rows:
            raise WeightsLabelError(f"--weights {key!r} is for row {label!r}, which --row leaves out (selected: "
                                    f"{_row_list(table, rows)}); add --row {label!r} to measure it.")
    if runs_dir is not None and not Path(runs_dir).is_dir():
        raise InputError(f"--runs folder {str(runs_dir)!r} does not exist; give the folder holding your "
                         "`daclip-kit train restoration` run folders (runs by default).")


def plan_table(table: TableSpec, options: BenchOptions, *, injected: Sequence[str] = ()) -> list[RowPlan]:
    """Plans of the selected rows of ``table`` (``options.rows``), in table order.

    Raises:
        ConfigError: the table's :class:`MetricProtocol` asks for metrics that are not implemented,
            or ``options.row_weights`` names a data set the table does not have.
        WeightsLabelError: ``options.row_weights`` names a row the table does not have.
        UnknownComponentError: ``options.rows`` names a row the table does not have.
        InputError: ``options.runs_dir`` is not a folder.
    """
    check_protocol(table)
    check_run_options(table, options.row_weights, options.runs_dir)
    rows = list(table.rows)
    if options.rows is not None:
        for label in options.rows:
            table.row(label)  # raises with the valid labels
        rows = [r for r in rows if r.label in options.rows]
    return [plan_row(table, r, options, injected=r.label in injected) for r in rows]
