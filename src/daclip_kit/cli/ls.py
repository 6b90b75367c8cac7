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


def _summary(spec) -> str:
    """The one-line description of a spec (its summary, title or description), always text."""
    for attr in ("summary", "title", "description"):
        value = getattr(spec, attr, "")
        if isinstance(value, str) and value:
            return " ".join(value.split())
    return ""


def run(args: argparse.Namespace) -> int:

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
    from rich.table import Table

    table = Table(title=f"{kind} ({len(rows)})")
    for col in ("name", "summary", "plugin"):
        table.add_column(col, overflow="fold")
    from rich.markup import escape

    for r in rows:  # plugin texts are shown as written, never as rich markup
        table.add_row(escape(r["name"]), escape(r["summary"]), escape(r["plugin"]))
    console.stdout().print(table)
    return 0
