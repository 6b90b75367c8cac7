"""Figure 6: radar plots of unified restoration per degradation, one PNG per metric."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path

from ..errors import DaclipKitError
from ..io import atomic_path
from ..plugins import get_registry
from ..types import DEGRADATIONS
from .spec import higher_is_better
from .tables import PAPER_LABELS

#: Methods drawn in the paper's Figure 6.
FIGURE6_METHODS = ("AirNet", "PromptIR", "IR-SDE", "Ours")
#: Metric -> table holding its per-degradation values.
FIGURE6_TABLES = {"psnr": "9", "ssim": "10", "lpips": "11", "fid": "12"}
#: Tables whose results Figure 6 draws (``bench --plot`` refuses the others).
FIGURE_TABLES = ("3", *FIGURE6_TABLES.values())


def figure_paths(out_dir: str | Path) -> list[Path]:
    """The files :func:`figure6` writes."""
    return [Path(out_dir) / f"figure6_{metric}.png" for metric in FIGURE6_TABLES]


def paper_series(metric: str, methods: Sequence[str] = FIGURE6_METHODS) -> dict[str, dict[str, float]]:
    """``{method: {degradation: value}}`` of ``metric`` from the registered Tables 9-12."""

    table = get_registry("tables").get(FIGURE6_TABLES[metric])
    out: dict[str, dict[str, float]] = {}
    for m in methods:
        vals = {d: table.reference.get((m, f"{d}/{metric}")) for d in DEGRADATIONS}
        if all(v is not None for v in vals.values()):
            out[m] = vals
    return out


def radar_plot(series: Mapping[str, Mapping[str, float]], path: str | Path, *, title: str,
               axes: Sequence[str] = DEGRADATIONS, labels: Mapping[str, str] | None = None) -> Path:
    """Draw one radar plot (a polygon per series over ``axes``) and write it as PNG atomically.

    Args:
        series: ``{name: {axis: value}}``; axes missing from a series are skipped for it.
        path: output ``.png`` file.
        title: plot title (the metric).
        axes: spoke order (default: the ten degradations).
        labels: display names of the axes.
    """
    try:
        import matplotlib
    except ImportError as exc:  # pragma: no cover - depends on the environment

        raise DaclipKitError("--plot needs matplotlib: pip install matplotlib") from exc
    matplotlib.use("Agg", force=False)
    from matplotlib.figure import Figure


    angles = [2 * math.pi * i / len(axes) for i in range(len(axes))]
    fig = Figure(figsize=(5.5, 5.5))
    ax = fig.add_subplot(projection="polar")
    for name, values in series.items():
        pts = [(a, values[k]) for a, k in zip(angles, axes, strict=True) if values.get(k) is not None]
        if not pts:
            continue
        xs, ys = [p[0] for p in pts] + [pts[0][0]], [p[1] for p in pts] + [pts[0][1]]
        ax.plot(xs, ys, linewidth=1.5, label=name)
        ax.fill(xs, ys, alpha=0.08)
    ax.set_xticks(angles)
    ax.set_xticklabels([(labels or {}).get(k, k) for k in axes], fontsize=8)
    ax.set_title(title)
    ax.legend(loc="upper right", bbox_to_anchor=(1.25, 1.1), fontsize=8)
    path = Path(path)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=100, bbox_inches="tight")
    return path


def figure6(out_dir: str | Path, measured: Mapping[str, Mapping[str, Mapping[str, float]]] | None = None) -> list[Path]:
    """Write Figure 6 (one radar PNG per metric) into ``out_dir``.

    Args:
        out_dir: folder for ``figure6_<metric>.png``.
        measured: ``{metric: {series name: {degradation: value}}}`` from this run, drawn beside the
            paper's AirNet, PromptIR, IR-SDE and Ours.
    """

    paths = []
    for metric, path in zip(FIGURE6_TABLES, figure_paths(out_dir), strict=True):
        series: dict[str, Mapping[str, float]] = {f"{k} (paper)": v for k, v in paper_series(metric).items()}
        series.update((measured or {}).get(metric, {}))
        arrow = "higher is better" if higher_is_better(metric) else "lower is better"
        paths.append(radar_plot(series, path, title=f"{metric.upper()} ({arrow})", labels=PAPER_LABELS))
    return paths


def measured_series(result) -> dict[str, dict[str, dict[str, float]]]:
    """Per-degradation values measured in a :class:`~daclip_kit.bench.runner.TableResult`."""
    out: dict[str, dict[str, dict[str, float]]] = {}
    for row in result.rows:
        for key, value in row.values.items():
            dataset, _, metric = key.partition("/")
            if metric in FIGURE6_TABLES and dataset in DEGRADATIONS:
                out.setdefault(metric, {}).setdefault(f"{row.label} (ours)", {})[dataset] = value
    return out
