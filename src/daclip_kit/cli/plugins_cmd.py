"""``daclip-kit plugins``: what is loaded, from which distribution, and what failed."""

from __future__ import annotations

import argparse
from typing import Any

from ..plugins import plugin_infos, quiet_plugin_warnings
from . import console


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    with quiet_plugin_warnings():  # this command shows every failure itself
        infos = plugin_infos()
    rows: list[dict[str, Any]] = [
        {
            "name": i.name,
            "distribution": i.distribution,
            "version": i.version,
            "builtin": i.builtin,
            "status": "ok" if i.ok else "failed",
            "hooks": i.hooks,
            "error": str(i.error) if i.error else None,
            "errors": [str(e) for e in i.errors],
        }
        for i in infos
    ]
    if args.json:
        console.print_json(rows)
        return 0
    from rich import box
    from rich.markup import escape
    from rich.table import Table

    table = Table(title=f"plugins ({len(rows)})", box=box.SIMPLE_HEAD, pad_edge=False, title_justify="left")
    table.add_column("name", no_wrap=True)
    table.add_column("distribution", overflow="fold")
    table.add_column("status", no_wrap=True)
    table.add_column("registers", overflow="fold")
    for r in rows:
        status = "[green]ok[/]" if r["status"] == "ok" else "[red]failed[/]"
        hooks = ", ".join(h.removeprefix("daclip_kit_").removeprefix("register_") for h in r["hooks"])
        table.add_row(escape(r["name"]), escape(f"{r['distribution']} {r['version']}"), status, escape(hooks))
    console.stdout().print(table)
    for r in rows:
        for message in r["errors"]:
            console.stderr().print(f"[red]{escape(r['name'])}[/]: {escape(message)}")
    return 0
