"""``daclip-kit weights list|fetch|path``: the official weights files and their local cache."""

from __future__ import annotations

import argparse
from pathlib import Path

from ..plugins import get_registry
from ..weights import default_cache_dir, resolve_weights
from . import console


def configure(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    p_list = sub.add_parser("list", help="list named weights and whether they are cached")
    p_fetch = sub.add_parser("fetch", help="download named weights into the cache")
    p_fetch.add_argument("name", help="weights name (see `daclip-kit weights list`)")
    p_path = sub.add_parser("path", help="print the local path of named weights (no download)")
    p_path.add_argument("name", help="weights name")
    for p in (p_list, p_fetch, p_path):
        p.add_argument("--cache-dir", type=Path, default=None,
                       help="cache folder (default: $DACLIP_KIT_CACHE or ~/.cache/daclip-kit)")
    p_list.add_argument("--json", action="store_true", help="print JSON instead of a table")
    parser.set_defaults(func=run)


def _size(n: int) -> str:
    return f"{n / 1e9:.2f} GB" if n >= 1e9 else f"{n / 1e6:.0f} MB" if n else "?"


def run(args: argparse.Namespace) -> int:

    cache = args.cache_dir or default_cache_dir()
    if args.action == "fetch":
        path = resolve_weights(args.name, cache_dir=cache, download=True)
        console.stdout().print(f"{args.name}: {path}")
        return 0
    if args.action == "path":
        print(resolve_weights(args.name, cache_dir=cache))
        return 0
    rows = []
    for entry in get_registry("weights").entries():
        s = entry.spec
        local = cache / s.filename
        rows.append({"name": s.name, "file": s.filename, "size": s.size, "hf_repo": s.hf_repo,
                     "model": s.model, "cached": local.is_file(), "description": s.description,
                     "plugin": entry.plugin})
    if args.json:
        console.print_json(rows)
        return 0
    from rich.table import Table

    table = Table(title=f"weights (cache: {cache})")
    table.add_column("name", no_wrap=True)
    for col in ("file", "size", "model", "cached", "description"):
        table.add_column(col, overflow="fold")
    for r in rows:
        table.add_row(r["name"], r["file"], _size(r["size"]), r["model"], "yes" if r["cached"] else "no",
                      r["description"])
    console.stdout().print(table)
    return 0
