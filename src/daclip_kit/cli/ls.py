"""``daclip-kit ls KIND``: list registered components."""

from __future__ import annotations

import argparse

from ..errors import UnknownComponentError
from ..plugins import get_registry, is_builtin_plugin
from ..specs import KINDS
from . import console


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("kind", nargs="?", default=None,
                        help=f"one of: {', '.join(KINDS)} (singular also accepted); none: every kind and its count")
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    parser.set_defaults(func=run)


def normalise_kind(kind: str) -> str:
    kind = kind.lower().strip()
    if kind in KINDS:
        return kind
    if kind + "s" in KINDS:
        return kind + "s"

    raise UnknownComponentError("kind", kind, KINDS)


def _summary(spec) -> str:
    """The one-line description of a spec (its summary, title or description), always text."""
    for attr in ("summary", "title", "description"):
        value = getattr(spec, attr, "")
        if isinstance(value, str) and value:
            return " ".join(value.split())
    return ""


def _table(title: str | None, columns: list[str]):
    from rich import box
    from rich.table import Table

    table = Table(title=title, box=box.SIMPLE_HEAD, pad_edge=False, title_justify="left")
    table.add_column(columns[0], no_wrap=True)
    for col in columns[1:]:
        table.add_column(col, overflow="fold")
    return table


def _kinds(args: argparse.Namespace) -> int:
    counts = {kind: len(get_registry(kind).entries()) for kind in KINDS}
    if args.json:
        console.print_json([{"kind": k, "count": n} for k, n in counts.items()])
        return 0
    table = _table(None, ["kind", "count"])
    for kind, n in counts.items():
        table.add_row(kind, str(n))
    console.stdout().print(table)
    console.stdout().print("`daclip-kit ls KIND` lists one kind.")
    return 0


def run(args: argparse.Namespace) -> int:
    if args.kind is None:
        return _kinds(args)
    kind = normalise_kind(args.kind)
    entries = get_registry(kind).entries()
    rows = [
        {
            "name": str(e.spec.name),
            "summary": _summary(e.spec),
            "plugin": str(e.plugin),
            "distribution": str(e.distribution),
        }
        for e in entries
    ]
    if args.json:
        console.print_json(rows)
        return 0
    from rich.markup import escape

    table = _table(f"{kind} ({len(rows)})", ["name", "summary", "plugin"])
    for r in rows:  # plugin texts are shown as written, never as rich markup
        plugin = r["plugin"].removeprefix("daclip_kit.") if is_builtin_plugin(r["plugin"]) else r["plugin"]
        table.add_row(escape(r["name"]), escape(r["summary"]), escape(plugin))
    console.stdout().print(table)
    return 0
