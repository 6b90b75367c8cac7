"""``daclip-kit bench`` / ``python -m daclip_kit.bench``: reproduce the paper's tables.

No torch import at module level: everything heavy is imported inside :func:`run`.
"""

from __future__ import annotations

import argparse
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ..bench.plan import WeightsLabelError, check_run_options, with_own_rows
from ..bench.plot import FIGURE_TABLES, figure_paths
from ..bench.spec import get_table
from ..core import distributed
from ..errors import ConfigError
from ..pipelines.recipe import parse_settings
from ..plugins import get_registry
from ..weights import as_search_dirs
from . import console


def configure(parser: argparse.ArgumentParser) -> None:
    """Add the bench arguments (shared by ``daclip-kit bench`` and ``python -m daclip_kit.bench``)."""
    parser.add_argument("--table", "-t", metavar="N", help="table id to run (2-12, or a plugin's table)")
    parser.add_argument("--list", action="store_true", help="list the registered tables and exit")
    parser.add_argument("--data-root", type=Path, metavar="DIR",
                        help="folder with val/<degradation>/{LQ,GT} (the official universal layout)")
    parser.add_argument("--weights-dir", type=Path, metavar="DIR",
                        help="folder searched first for model and metric weights (LPIPS AlexNet, FID Inception)")
    parser.add_argument("--limit", type=int, metavar="K", help="at most K images per data set")
    parser.add_argument("--device", default="auto", help="cpu, cuda, cuda:1, ... (default: cuda if available)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the sampler noise (default 0)")
    parser.add_argument("--precision", default="fp32",
                        help="fp32 (default: the official arithmetic), bf16, fp16 or auto for the restoration rows")
    parser.add_argument("--compile", action="store_true", help="torch.compile the networks of the restoration rows")
    parser.add_argument("--row", action="append", metavar="LABEL", dest="rows",
                        help="run only this row (repeatable); labels as in the paper")
    parser.add_argument("--weights", action="append", default=[], metavar="LABEL[@DATASET]=PATH", dest="row_weights",
                        help="measure a row with these weights instead of its released ones: a file, a network "
                        "folder, a `daclip-kit train` run folder or checkpoint (its newest network-ema, with the "
                        "DA-CLIP the run used), or a weights name; LABEL@DATASET for one data set of the row "
                        "(Table 7: one model per data set) (repeatable)")
    parser.add_argument("--runs", type=Path, metavar="DIR", dest="runs_dir",
                        help="folder of your training runs: rows of unreleased models (Tables 6, 7) read the "
                        "run folder their bundled run file writes, DIR/<run name> (e.g. runs/table6-nafnet)")
    parser.add_argument("--sampler", help="restore diffusion rows with this sampler (e.g. mrs)")
    parser.add_argument("--steps", type=int, help="network evaluations of diffusion rows")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", dest="settings",
                        help="model setting for every diffusion row, e.g. sampler.order=3 (repeatable)")
    parser.add_argument("--json", type=Path, metavar="PATH", help="write results and provenance as JSON")
    parser.add_argument("--compare", type=Path, metavar="OLD.json",
                        help="show changes against an earlier --json result of the same table")
    parser.add_argument("--plot", nargs="?", type=Path, const=Path("figures"), metavar="DIR",
                        help="draw Figure 6 radar plots (PNG) into DIR (default ./figures); tables 3 and 9-12")
    parser.add_argument("--overwrite", action="store_true", help="replace existing plot files")
    parser.add_argument("--size", type=int, metavar="PX", help="input size for Table 8 (default 256)")
    parser.add_argument("--repeats", type=int, default=None, metavar="N",
                        help="timed runs per model for Table 8 runtime (0 skips timing; default 3 on a GPU, "
                        "0 on the CPU, where one 100-step IR-SDE takes minutes)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Exit status: 0 when every row was measured or could not run for want of weights or data
    (noted), 1 when a row failed (an exception while building or running it; said after the
    report) or on an error, 2 on a usage error (a ``--weights`` label that is no row to measure)."""
    try:
        return execute(args)
    except WeightsLabelError as exc:
        console.error(str(exc))
        return 2


def _table_sort_key(name: str) -> tuple[int, str]:
    return (int(name), "") if name.isdigit() else (10**6, name)


def list_tables() -> list[dict[str, Any]]:
    """Registered tables as ``{id, title, kind, rows, columns, plugin}``, in numeric order."""
    entries = sorted((e for e in get_registry("tables").entries() if not e.spec.extends),
                     key=lambda e: _table_sort_key(e.spec.name))
    return [{"id": e.spec.name, "title": e.spec.title, "kind": e.spec.kind, "rows": len(e.spec.rows),
             "columns": len(e.spec.columns), "plugin": e.plugin} for e in entries]


def _print_list(console) -> None:
    from rich.markup import escape
    from rich.table import Table

    rows = list_tables()
    t = Table(title=f"benchmark tables ({len(rows)})", title_justify="left")
    for name in ("id", "title", "kind", "rows", "columns"):
        t.add_column(name, overflow="fold")
    for r in rows:
        t.add_row(r["id"], escape(r["title"]), r["kind"], str(r["rows"]), str(r["columns"]))
    console.print(t)
    console.print("Run one with: python -m daclip_kit.bench --table N [--data-root DIR --weights-dir DIR]")


def execute(args: argparse.Namespace, *, restorers: Mapping[str, Any] | None = None,
            classifiers: Mapping[str, Any] | None = None, lpips_net: Any = None,
            fid_net: Any = None) -> int:
    """Run the command described by ``args``; models and metric networks can be injected."""
    out = console.stdout()
    if args.list:
        _print_list(out)
        return 0
    if not args.table:
        raise ConfigError("Give --table N (see --list for the tables).")
    if args.limit is not None and args.limit < 1:
        raise ConfigError(f"--limit must be at least 1, got {args.limit}.")
    from ..bench import plot, provenance, report
    from ..bench.runner import BenchOptions, run_table_distributed

    table = get_table(str(args.table))
    if args.plot:
        if table.name not in FIGURE_TABLES:
            raise ConfigError(f"--plot draws Figure 6, from tables {', '.join(FIGURE_TABLES)}; "
                              f"table {table.name} has no figure.")
        existing = [str(p) for p in figure_paths(args.plot) if p.exists()]
        if existing and not args.overwrite:
            raise ConfigError(f"Plot files exist: {', '.join(existing)}; pass --overwrite or another --plot DIR.")
    row_weights = parse_settings(args.row_weights)
    runs_dir = getattr(args, "runs_dir", None)
    rows = tuple(args.rows) if args.rows else None
    table = with_own_rows(table, row_weights, search_dirs=as_search_dirs(args.weights_dir), rows=rows)
    check_run_options(table, row_weights, runs_dir, rows)
    overrides: dict[str, str] = parse_settings(args.settings)
    if args.sampler:
        get_registry("samplers").get(args.sampler)  # an unknown name fails here, listing the samplers
        overrides["sampler"] = args.sampler
    if args.steps is not None:
        if args.steps < 1:
            raise ConfigError(f"--steps must be at least 1, got {args.steps}.")
        overrides["steps"] = str(args.steps)
    # read the earlier result before anything runs: --compare may name the file --json replaces
    old = report.read_json(args.compare) if args.compare else None
    proc = distributed.current()
    torch_device = distributed.process_device(args.device, proc)
    device = str(torch_device)
    repeats = args.repeats if args.repeats is not None else (3 if device.startswith("cuda") else 0)
    if repeats < 0:
        raise ConfigError(f"--repeats must not be negative, got {repeats}.")
    options = BenchOptions(data_root=args.data_root, weights_dir=args.weights_dir, limit=args.limit,
                           device=device, seed=args.seed,
                           rows=rows, size=args.size,
                           repeats=repeats, row_weights=row_weights, runs_dir=runs_dir, overrides=overrides,
                           precision=args.precision, compile=args.compile)
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
    )

    with distributed.process_group(torch_device, proc), \
            Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                     TimeElapsedColumn(), console=out, transient=True, disable=not proc.is_main) as bar:
        tasks: dict[str, Any] = {}

        def on_progress(description: str, done: int, total: int) -> None:
            if description not in tasks:
                tasks[description] = bar.add_task(description, total=total)
            bar.update(tasks[description], completed=done)

        result = run_table_distributed(table, options, restorers=restorers, classifiers=classifiers,
                                       lpips_net=lpips_net, fid_net=fid_net, progress=on_progress)
    if result is None:  # another rank of a torchrun job: rank 0 reports
        return 0
    report.render(result, out)
    data = report.to_json(result, provenance.collect(device))
    if args.json:
        report.write_json(args.json, data)
        out.print(f"results written to {args.json}")
    if old is not None:
        report.render_comparison(report.compare(old, data), table, out)
    if args.plot:
        for path in plot.figure6(args.plot, plot.measured_series(result)):
            out.print(f"wrote {path}")
    failed = result.failures()
    if failed:  # after the report and the JSON: the other rows' results are kept
        console.error(f"{len(failed)} of {len(result.rows)} row{'s' if len(result.rows) != 1 else ''} "
                      f"failed: " + "; ".join(f"{label}: {why}" for label, why in failed))
        return 1
    return 0
