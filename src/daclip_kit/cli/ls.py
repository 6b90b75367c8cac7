"""``daclip-kit ls KIND``: list registered components."""

from __future__ import annotations

import argparse

from ..errors import UnknownComponentError
from ..plugins import get_registry
from ..specs import KINDS
from . import console


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("kind", help=f"one of: {', '.join(KINDS)} (singular also accepted)")
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    parser.set_defaults(func=run)


def normalise_kind(kind: str) -> str:
    kind = kind.lower().strip()
    if kind in KINDS:
        return kind
    if kind + "s" in KINDS:
        return kind + "s"

    raise UnknownComponentError("kind", kind, KINDS)


def run(args: argparse.Namespace) -> int:

    kind = normalise_kind(args.kind)
    entries = get_registry(kind).entries()
    rows = [
        {
            "name": e.spec.name,
            "summary": getattr(e.spec, "summary", "") or getattr(e.spec, "title", "")
            or getattr(e.spec, "description", ""),
            "plugin": e.plugin,
            "distribution": e.distribution,
        }
        for e in entries
    ]
    if args.json:
        console.print_json(rows)
        return 0
    from rich.table import Table

    table = Table(title=f"{kind} ({len(rows)})")
    for col in ("name", "summary", "plugin"):
        table.add_column(col, overflow="fold")
    for r in rows:
        table.add_row(r["name"], r["summary"], r["plugin"])
    console.stdout().print(table)
    return 0
