"""Typed, declarative benchmark tables (one per table of the paper, or from a plugin).

A :class:`TableSpec` says what to measure and what the paper reported; the runner decides what can
be measured here. Plugins add tables through ``daclip_kit_register_tables``::

    from daclip_kit import hookimpl
    from daclip_kit.bench.spec import ColumnSpec, RowSpec, TableSpec

    @hookimpl
    def daclip_kit_register_tables():
        return [TableSpec(name="my-derain", title="My deraining model on Rain100H",
                          rows=(RowSpec(label="Mine", pipeline="my-unet"),),
                          columns=(ColumnSpec(dataset="rainy", metric="psnr"),)),
                # a row of the paper's Table 8 for the plugin's network
                TableSpec(name="my-unet@8", title="", extends="8",
                          rows=(RowSpec(label="MyUNet", pipeline="my-unet"),))]

A row names a registered pipeline (or a backbone, whose recipe is used) plus overrides; the metrics
of a column are looked up in the metrics registry, so a plugin metric can be asked for by name. A
row of a model nobody released sets ``user_trained=True`` (or names the run file that trains it,
``run="my_run"``; ``dataset_runs`` for one model per data set): it is measured only with weights
the user gives (``--weights LABEL=RUN_FOLDER``, ``--runs DIR``), never with released ones.
This module imports nothing heavy; ``plugin.py`` files may import it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from ..errors import UnknownComponentError
from ..plugins import get_registry

#: Direction of the metrics that are not registry metrics (classification, complexity).
HIGHER_IS_BETTER: dict[str, bool] = {
    "accuracy": True,
    "params": False, "params_embedder": False, "macs_hooks": False, "macs_flopcounter": False,
    "macs_embedder": False, "runtime": False, "runtime_embedder": False,
}

#: Units shown after values in reports.
UNITS: dict[str, str] = {
    "psnr": "dB", "psnr-y": "dB", "accuracy": "%", "params": "M", "params_embedder": "M",
    "macs_hooks": "G", "macs_flopcounter": "G", "macs_embedder": "G", "runtime": "s",
    "runtime_embedder": "s",
}


def higher_is_better(metric: str) -> bool:
    """Direction of ``metric``: the registered metric's, else :data:`HIGHER_IS_BETTER`."""

    registry = get_registry("metrics")
    if metric in registry:
        return registry.get(metric).higher_is_better
    return HIGHER_IS_BETTER.get(metric, True)


@dataclass(frozen=True, kw_only=True)
class MetricProtocol:
    """How images are compared (the official ``test.py`` settings by default).

    Attributes:
        crop_border: pixels removed from each side for PSNR/SSIM.
        y_channel: PSNR/SSIM on BT.601 luma instead of RGB.
        quantize: round outputs to uint8 levels before PSNR/SSIM/FID (outputs are saved as PNG).
        lpips_net, lpips_version: LPIPS trunk and version (``lpips`` package).
        fid: how FID is computed (feature network and set pairing).
        prompt_template: text for each label in classification tables (``"{}"`` = bare word, as the
            official code; the paper states "a [degradation type] photo").
        image_size: input size of complexity tables (Table 8).
    """

    crop_border: int = 4
    y_channel: bool = False
    quantize: bool = True
    lpips_net: str = "alex"
    lpips_version: str = "0.1"
    fid: str = "pytorch-fid Inception-v3 pool3 (2048-d), restored set vs ground-truth set per data set"
    prompt_template: str = "{}"
    image_size: int = 256


@dataclass(frozen=True, kw_only=True)
class ColumnSpec:
    """One measured quantity: a data set (or average over data sets) times a metric.

    Attributes:
        dataset: folder name under ``<data-root>/val/`` (the official degradation names, e.g.
            ``"rainy"``), ``"average"`` for the mean over ``average_of``, or ``"model"`` for
            model properties (Table 8).
        metric: ``psnr``, ``ssim``, ``lpips``, ``fid``, ``accuracy``, ``params``, ...
        higher_is_better: direction; ``None`` takes it from :data:`HIGHER_IS_BETTER`.
        label: header shown for the data set (``"Rain100H"``); defaults to ``dataset``.
        average_of: data sets averaged (mean of per-data-set values, as the paper's averages).
    """

    dataset: str
    metric: str
    higher_is_better: bool | None = None
    label: str = ""
    average_of: tuple[str, ...] = ()

    @property
    def key(self) -> str:
        """``"<dataset>/<metric>"``: the cell key used by ``reference`` and the JSON."""
        return f"{self.dataset}/{self.metric}"

    @property
    def better_high(self) -> bool:
        if self.higher_is_better is not None:
            return self.higher_is_better
        return higher_is_better(self.metric)

    @property
    def header(self) -> str:
        return self.label or self.dataset


@dataclass(frozen=True, kw_only=True)
class RowSpec:
    """One method of a table.

    Restoration and complexity rows name a model; classification rows name an embedder.

    Attributes:
        label: the method as the paper names it (unique within the table).
        pipeline: a registered pipeline or backbone name (``daclip-kit ls pipelines``), or
            ``None`` for a paper-only baseline.
        overrides: recipe settings over the pipeline's (``{"sampler.mode": "sde"}``; see
            :func:`daclip_kit.pipelines.recipe.with_overrides`).
        embedder: embedder registry name of a classification row (``"daclip"``, ``"clip"``).
        embedder_config: its keyword config.
        weights: weights names of a classification row's embedder.
        note: why the row cannot be measured, or what it is (shown when it is not run).
        user_trained: the paper's model was never released: the row is measured only with weights
            the user gives (``--weights LABEL=PATH``, ``--runs DIR``), never with the pipeline's
            released weights (which were trained for something else).
        run: the bundled run file that trains the row (``daclip-kit train restoration --config
            RUN``); with ``--runs DIR`` the row reads ``DIR/<run with - for _>``.
        dataset_runs: ``{data set: run file}`` of a row measured with one model per data set
            (paper Table 7: one NAFNet for Rain100H, another for LOL).
        per_dataset: each data set is measured with its own model (``--weights LABEL@DATASET=PATH``);
            set by ``dataset_runs``.
        network_config: settings the trained network must have (``{"use_content": False}``),
            checked against the ``config.json`` of the network folder the row is given.
        about: what the measured network is, shown with its results (a row added for your own
            network by ``--weights LABEL=PATH``: its architecture and license).

    A row naming ``run`` or ``dataset_runs`` is ``user_trained``.
    """

    label: str
    pipeline: str | None = None
    overrides: Mapping[str, Any] = field(default_factory=dict)
    embedder: str | None = None
    embedder_config: Mapping[str, Any] = field(default_factory=dict)
    weights: tuple[str, ...] = ()
    note: str = ""
    user_trained: bool = False
    run: str = ""
    dataset_runs: Mapping[str, str] = field(default_factory=dict)
    per_dataset: bool = False
    network_config: Mapping[str, Any] = field(default_factory=dict)
    about: str = ""

    def __post_init__(self) -> None:
        if self.dataset_runs:
            object.__setattr__(self, "per_dataset", True)
        if self.run or self.dataset_runs:
            object.__setattr__(self, "user_trained", True)

    def run_for(self, dataset: str | None = None) -> str:
        """The bundled run file that trains the model of ``dataset`` (``""``: none)."""
        if not self.per_dataset:
            return self.run
        return self.dataset_runs.get(dataset, "") if dataset is not None else ""

    def run_names(self) -> tuple[str, ...]:
        """Every bundled run file of the row, in data set order."""
        return tuple(dict.fromkeys(self.dataset_runs.values())) if self.per_dataset else (
            (self.run,) if self.run else ())


@dataclass(frozen=True, kw_only=True)
class TableSpec:
    """A benchmark table.

    Attributes:
        name: the table id used by ``--table`` (``"3"``).
        title: caption.
        version: bumped whenever rows, columns, protocol or reference numbers change.
        kind: ``"restoration"`` (paired LQ/GT folders), ``"classification"`` (degradation labels of
            the val folders) or ``"complexity"`` (parameters, MACs, runtime; no data).
        rows, columns: what is compared.
        protocol: metric settings.
        reference: ``{(row label, column key): value}`` as printed in the paper.
        notes: remarks shown under the table (sources, known inconsistencies).
        extends: the ``name`` of another table this spec adds its ``rows`` to (a plugin's rows for
            a paper table); its other fields are ignored.
    """

    name: str
    title: str
    version: str = "1"
    kind: Literal["restoration", "classification", "complexity"] = "restoration"
    rows: tuple[RowSpec, ...] = ()
    columns: tuple[ColumnSpec, ...] = ()
    protocol: MetricProtocol = field(default_factory=MetricProtocol)
    reference: Mapping[tuple[str, str], float] = field(default_factory=dict)
    notes: tuple[str, ...] = ()
    extends: str = ""

    @property
    def summary(self) -> str:
        return self.title

    def row(self, label: str) -> RowSpec:
        for r in self.rows:
            if r.label == label:
                return r

        raise UnknownComponentError(f"row of table {self.name}", label, [r.label for r in self.rows])

    def datasets(self) -> list[str]:
        """Data set folders the table reads, in column order, averages expanded."""
        seen: dict[str, None] = {}
        for c in self.columns:
            for d in (c.average_of or (c.dataset,)):
                if d not in ("model",):
                    seen.setdefault(d)
        return list(seen)

    def metrics(self) -> list[str]:
        return list(dict.fromkeys(c.metric for c in self.columns))


def get_table(name: str) -> TableSpec:
    """The registered table ``name`` with the rows other plugins add to it (``extends``).

    Raises:
        UnknownComponentError: no such table.
    """
    import dataclasses


    registry = get_registry("tables")
    tables = [t for t in registry if not t.extends]
    table = next((t for t in tables if t.name == name), None)
    if table is None:
        raise UnknownComponentError("table", name, [t.name for t in tables], list_command="daclip-kit bench --list")
    extra = tuple(row for ext in registry if ext.extends == name for row in ext.rows)
    return dataclasses.replace(table, rows=table.rows + extra) if extra else table
