"""Presenting benchmark results: rich tables (ours / paper / delta), JSON files and comparisons."""

from __future__ import annotations

import dataclasses
import functools
import json
import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ..errors import InputError
from ..io import atomic_write_text
from .runner import TableResult
from .spec import ColumnSpec, TableSpec

SCHEMA = "daclip-kit.bench/1"

_DIGITS = {"psnr": 2, "psnr-y": 2, "ssim": 3, "ssim-y": 3, "lpips": 3, "fid": 2, "accuracy": 1,
           "params": 3, "params_embedder": 3, "macs_hooks": 2, "macs_flopcounter": 2,
           "macs_embedder": 2, "runtime": 3, "runtime_embedder": 3}


#: Metrics the paper prints with as many digits as it has ("33M", "0.1s", "4.53s"), not a fixed precision.
_PAPER_AS_PRINTED = frozenset({"params", "params_embedder", "macs_hooks", "macs_flopcounter", "macs_embedder",
                               "runtime", "runtime_embedder"})


def fmt(value: float | None, metric: str) -> str:
    """Format a cell value with the metric's usual precision ("-" for missing)."""
    if value is None:
        return "-"
    if math.isinf(value):
        return "inf"
    return f"{value:.{_DIGITS.get(metric, 3)}f}"


def fmt_paper(value: float | None, metric: str) -> str:
    """Format a paper value as the paper prints it: complexity figures with their own digits
    (``33``, ``0.1``, ``125.2``), metrics with the metric's fixed precision (``0.900``)."""
    if value is not None and metric in _PAPER_AS_PRINTED:
        return f"{value:g}"
    return fmt(value, metric)


# --- JSON ----------------------------------------------------------------------------------------


def _jsonable(value: Any) -> Any:
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    return value


def _spec_dict(table: TableSpec) -> dict[str, Any]:
    return {
        "id": table.name, "title": table.title, "version": table.version, "kind": table.kind,
        "protocol": dataclasses.asdict(table.protocol),
        "columns": [{"key": c.key, "dataset": c.dataset, "metric": c.metric, "label": c.header,
                     "higher_is_better": c.better_high, "average_of": list(c.average_of)}
                    for c in table.columns],
        "notes": list(table.notes),
    }


def to_json(result: TableResult, provenance: Mapping[str, Any]) -> dict[str, Any]:
    """The JSON record of a run: table spec + version, resolved config, provenance, per-row cells
    (ours, paper, delta) and per-image results."""
    table = result.table
    rows = []
    for r in result.rows:
        spec = table.row(r.label)
        cells = {}
        for c in table.columns:
            paper = table.reference.get((r.label, c.key))
            ours = r.values.get(c.key)
            if paper is None and ours is None:
                continue
            delta = None
            if ours is not None and paper is not None and comparable(c.metric, result.options.device):
                delta = ours - paper
            cells[c.key] = {"ours": ours, "paper": paper, "delta": delta}
        rows.append({"label": r.label, "status": r.status, "notes": r.notes, "cells": cells,
                     "pipeline": spec.pipeline, "overrides": dict(spec.overrides),
                     "embedder": spec.embedder, "weights": list(spec.weights)})
    return _jsonable({
        "schema": SCHEMA,
        "table": _spec_dict(table),
        "config": dataclasses.asdict(result.options),
        "seed": result.options.seed,
        "device": result.options.device,
        "provenance": dict(provenance),
        "notes": result.notes,
        "extra": result.extra,
        "rows": rows,
        "images": [dataclasses.asdict(i) for i in result.images],
    })


def write_json(path: str | Path, data: Mapping[str, Any]) -> Path:
    """Write ``data`` to ``path`` atomically (indented UTF-8 JSON)."""

    atomic_write_text(path, json.dumps(data, indent=2, sort_keys=False) + "\n")
    return Path(path)


def read_json(path: str | Path) -> dict[str, Any]:
    """Read a JSON file written by :func:`write_json` (for ``--compare``)."""
    p = Path(path)
    try:
        data = json.loads(p.read_text())
    except FileNotFoundError:
        raise InputError(f"--compare file {str(p)!r} does not exist.") from None
    except json.JSONDecodeError as exc:
        raise InputError(f"--compare file {str(p)!r} is not valid JSON: {exc}") from None
    if data.get("schema") != SCHEMA:
        raise InputError(f"{str(p)!r} is not a daclip-kit bench result (schema {data.get('schema')!r}, "
                         f"expected {SCHEMA!r}); write one with --json.")
    return data


def compare(old: Mapping[str, Any], new: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Cells measured in both runs: ``{row, key, old, new, change}`` (new minus old)."""
    if old["table"]["id"] != new["table"]["id"]:
        raise InputError(f"--compare needs results of the same table: old is table "
                         f"{old['table']['id']}, new is table {new['table']['id']}.")
    old_rows = {r["label"]: r for r in old["rows"]}
    out = []
    for row in new["rows"]:
        before = old_rows.get(row["label"])
        if before is None:
            continue
        for key, cell in row["cells"].items():
            prev = before["cells"].get(key, {}).get("ours")
            cur = cell.get("ours")
            if prev is None or cur is None:
                continue
            prev_f, cur_f = float(prev), float(cur)
            out.append({"row": row["label"], "key": key, "old": prev_f, "new": cur_f,
                        "change": cur_f - prev_f})
    return out


# --- rich rendering ------------------------------------------------------------------------------


def _groups(table: TableSpec) -> list[tuple[str, list[ColumnSpec]]]:
    """One group per data set when a table has several data sets and several metrics."""
    datasets = list(dict.fromkeys(c.dataset for c in table.columns))
    metrics = list(dict.fromkeys(c.metric for c in table.columns))
    if len(datasets) > 1 and len(metrics) > 1:
        return [(next(c.header for c in table.columns if c.dataset == d),
                 [c for c in table.columns if c.dataset == d]) for d in datasets]
    return [("", list(table.columns))]


def _wide(console):
    """Files and pipes get 160 columns instead of rich's 80, so wide tables stay readable, unless
    the width was set (``$COLUMNS``, which rich reads, or the console's ``width``)."""
    if console.is_terminal or console.width >= 160 or getattr(console, "_width", None) is not None:
        return console
    from rich.console import Console

    return Console(file=console.file, width=160, highlight=False, soft_wrap=False,
                   no_color=console.no_color, color_system=console.color_system and "standard")


def _head(col: ColumnSpec, cols: list[ColumnSpec]) -> str:
    if col.dataset == "model":
        return col.header
    if len({c.metric for c in cols}) == 1 and len({c.dataset for c in cols}) > 1:
        return col.header
    return col.metric.upper()


#: Metrics that depend on the machine: compared with the paper only when measured on a GPU.
DEVICE_METRICS = ("runtime", "runtime_embedder")


def comparable(metric: str, device: str) -> bool:
    """Whether a value of ``metric`` measured on ``device`` is compared with the paper's (the
    paper's runtimes are GPU figures: a CPU runtime gets no delta)."""
    return metric not in DEVICE_METRICS or str(device).startswith("cuda")


def _delta_markup(delta: float, col: ColumnSpec) -> str:
    better = delta > 0 if col.better_high else delta < 0
    colour = "green" if better else ("red" if delta else "white")
    return f"[{colour}]{delta:+.{_DIGITS.get(col.metric, 3)}f}[/]"


def render(result: TableResult, console) -> None:
    """Print the table(s) of ``result``: for every method the paper's numbers and, when measured,
    ours and the difference; then the notes saying what could not run and why."""
    from rich.cells import cell_len
    from rich.markup import escape
    from rich.table import Table
    from rich.text import Text

    def arrow(c: ColumnSpec) -> str:
        return "↑" if c.better_high else "↓"

    table = result.table
    console = _wide(console)
    by_label = {r.label: r for r in result.rows}

    def make(title: str, cols: list[ColumnSpec], group: list[ColumnSpec]) -> Table:
        shown = [group.index(c) for c in cols]
        rows: list[list[str]] = []
        for r in result.rows:
            paper = [table.reference.get((r.label, c.key)) for c in group]
            ours = [r.values.get(c.key) for c in group]
            if all(v is None for v in paper + ours):
                continue
            rows.append([escape(r.label), "paper", *[fmt_paper(paper[i], group[i].metric) for i in shown]])
            if any(v is not None for v in ours):
                rows.append(["", "ours", *[f"[bold]{fmt(ours[i], group[i].metric)}[/]" for i in shown]])
                rows.append(["", "Δ", *[
                    _delta_markup(o - p, group[i])
                    if (o := ours[i]) is not None and (p := paper[i]) is not None
                    and comparable(group[i].metric, result.options.device) else ""
                    for i in shown]])
        t = Table(title=escape(title), title_justify="left", show_lines=False)
        # row labels are never wrapped either
        t.add_column("Method", no_wrap=True, min_width=max((cell_len(Text.from_markup(row[0]).plain)
                                                            for row in rows), default=6))
        t.add_column("", style="dim", no_wrap=True)
        for k, c in enumerate(cols):
            head = f"{escape(_head(c, group))} {arrow(c)}"
            # numbers are never wrapped or cut: the column is as wide as its widest cell, and a
            # table too wide for the console is split instead (_fitting)
            widest = max(cell_len(Text.from_markup(x).plain) for x in [head, *(row[2 + k] for row in rows)])
            t.add_column(head, justify="right", no_wrap=True, min_width=widest)
        for row in rows:
            t.add_row(*row)
        return t

    for group_title, cols in _groups(table):
        title = f"Table {table.name}: {table.title}" + (f" - {group_title}" if group_title else "")
        parts = _fitting(console, functools.partial(make, title, group=cols), cols)
        for k, chunk in enumerate(parts):
            t = make(title + (f" ({k + 1}/{len(parts)})" if len(parts) > 1 else ""), chunk, cols)
            needed = _min_width(console, t)
            # one column too wide for the console alone: print it whole (the terminal wraps the line)
            console.print(t, width=max(console.width, needed), crop=False)
    _render_notes(result, console, by_label)


def _min_width(console, table) -> int:
    """The fewest columns ``table`` needs (rich clamps a measurement to the console's width)."""
    from rich.measure import Measurement

    return Measurement.get(console, console.options.update_width(1 << 16), table).minimum


def _fitting(console, make, cols: list[ColumnSpec]) -> list[list[ColumnSpec]]:
    """``cols`` in consecutive chunks whose tables (``make(chunk)``) fit the console's width
    without cutting a number (the Method column is repeated in each)."""
    chunks: list[list[ColumnSpec]] = []
    for c in cols:
        if chunks and _min_width(console, make([*chunks[-1], c])) <= console.width:
            chunks[-1].append(c)
        else:
            chunks.append([c])
    return chunks


def _render_notes(result: TableResult, console, by_label) -> None:
    from rich.markup import escape

    lines = [f"[dim]{escape(n)}[/]" for n in result.table.notes]
    size = result.extra.get("image_size")
    if size:
        lines.append(f"[dim]input size {size}x{size}, device {result.options.device}[/]")
        if not comparable("runtime", result.options.device):
            lines.append("[dim]runtimes measured on the CPU are not compared with the paper's GPU runtimes "
                         "(no delta)[/]")
        if size != result.table.protocol.image_size:
            lines.append(f"[yellow]note:[/] measured at {size}x{size}, not the paper's "
                         f"{result.table.protocol.image_size}x{result.table.protocol.image_size}: "
                         f"MACs and runtime are not comparable with the paper's numbers")
    seen: dict[str, list[str]] = {}
    for r in result.rows:
        for n in r.notes:
            seen.setdefault(n, []).append(r.label)
    lines += [f"[yellow]note:[/] {escape(n)}" for n in result.notes]
    for note, labels in seen.items():
        who = ", ".join(labels)
        lines.append(f"[yellow]{escape(who)}:[/] {escape(note)}")
    measured = [r.label for r in result.rows if r.status in ("measured", "partial")]
    if not measured:
        lines.append("[yellow]No row was measured here; the paper's numbers are shown.[/]")
    for line in lines:
        console.print(line)


def render_comparison(rows: list[dict[str, Any]], table: TableSpec, console) -> None:
    """Print ``old / new / change`` for the cells measured in both runs."""
    from rich.markup import escape
    from rich.table import Table

    if not rows:
        console.print("[yellow]--compare: no cell was measured in both runs.[/]")
        return
    t = Table(title=f"Table {table.name}: comparison with the earlier run", title_justify="left")
    for name in ("Method", "Cell", "old", "new", "change"):
        t.add_column(name, justify="left" if name in ("Method", "Cell") else "right")
    for r in rows:
        col = next((c for c in table.columns if c.key == r["key"]), None)
        metric = col.metric if col else ""
        change = _delta_markup(r["change"], col) if col else f"{r['change']:+.3f}"
        t.add_row(escape(r["row"]), escape(r["key"]), fmt(r["old"], metric), fmt(r["new"], metric), change)
    console.print(t)
