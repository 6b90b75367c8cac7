"""Planning a benchmark table: which rows can run here, with which recipe and weights.

Also the records a run produces (:class:`RowResult`, :class:`TableResult`), shared by the
restoration/classification runner and the complexity table. No model is built here.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from ..errors import ConfigError, DaclipKitError
from ..pipelines.recipe import get_recipe, with_overrides
from ..plugins import get_registry
from ..specs import PipelineSpec
from ..types import DEGRADATIONS
from ..weights import resolve_weights
from .spec import MetricProtocol, RowSpec, TableSpec

log = logging.getLogger(__name__)

#: ``progress(description, done, total)``.
Progress = Callable[[str, int, int], None]


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
            file, a native folder such as a run's ``checkpoints/step-N/network``, or a name).
        overrides: recipe settings applied to every restoration row on top of its own
            (``{"sampler": "mrs", "steps": 10}``).
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
    overrides: Mapping[str, Any] = field(default_factory=dict)


@dataclass
class RowPlan:
    """Whether a row can run, the weights it resolved and what is missing."""

    row: RowSpec
    runnable: bool
    missing: list[str] = field(default_factory=list)
    weights: dict[str, Path] = field(default_factory=dict)
    injected: bool = False
    recipe: PipelineSpec | None = None


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
    """Find the weights ``name`` (a registered name or a path) without downloading:
    ``(path, "")`` or ``(None, what is missing and how to get it)``."""

    try:
        return resolve_weights(name, search_dirs=[weights_dir] if weights_dir else []), ""
    except DaclipKitError as exc:
        return None, str(exc)


def row_recipe(row: RowSpec, options: BenchOptions) -> PipelineSpec:
    """The recipe a restoration or complexity row measures: its pipeline with the row's and the
    run's overrides."""
    recipe = with_overrides(get_recipe(row.pipeline), row.overrides)
    if options.overrides and recipe.sampler:
        recipe = with_overrides(recipe, options.overrides)
    return recipe


def _unknown_classes(table: TableSpec) -> list[str]:
    """Data sets of a classification table that are not one of the ten labels (no ground truth)."""

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

        return RowPlan(row, False, [
            f"classification data set(s) {', '.join(unknown)} are not among the ten degradation labels "
            f"({', '.join(DEGRADATIONS)}), so they have no ground-truth label; name the columns after "
            "the labels"], injected=injected)
    if injected:
        return RowPlan(row, True, injected=True)
    if row.pipeline is None and row.embedder is None:
        return RowPlan(row, False, [f"paper-only: {row.note or 'not part of daclip-kit'}"])
    if table.kind == "classification":
        if row.embedder not in get_registry("embedders"):
            return RowPlan(row, False, [f"embedder {row.embedder!r} is not available in this installation"])
        names = row.weights
    else:
        try:
            recipe = row_recipe(row, options)
        except DaclipKitError as exc:
            return RowPlan(row, False, [f"model {row.pipeline!r} is not available in this installation ({exc})"])
        if table.kind == "complexity":
            return RowPlan(row, True, recipe=recipe)
        own = options.row_weights.get(row.label)
        if own is None and not recipe.weights:
            return RowPlan(row, False, [f"no released weights: {row.note or 'trained by the paper authors'}"],
                           recipe=recipe)
        names = (own or recipe.weights,) + ((recipe.embedder_weights,) if recipe.embedder_weights else ())
    missing: list[str] = []
    found: dict[str, Path] = {}
    for name in names:
        path, why = locate_weights(name, options.weights_dir)
        if path is None:
            missing.append(why)
        else:
            found[name] = path
    plan = RowPlan(row, not missing, missing, found)
    if table.kind == "restoration":
        plan.recipe = recipe
    return plan


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
