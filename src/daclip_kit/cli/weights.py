"""``daclip-kit weights list|fetch|path``: the official weights files and their local cache."""

from __future__ import annotations

import argparse
import textwrap
from pathlib import Path

from ..plugins import get_registry
from ..weights import default_cache_dir, resolve_weights
from . import console


def configure(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    p_list = sub.add_parser("list", help="list named weights and whether they are cached")
    p_fetch = sub.add_parser("fetch", help="download named weights into the cache")
    p_fetch.add_argument("name", nargs="+", help="weights names (see `daclip-kit weights list`)")
    p_path = sub.add_parser("path", help="print the local path of named weights (no download)")
    p_path.add_argument("name", help="weights name")
    for p in (p_list, p_fetch, p_path):
        p.add_argument("--cache-dir", type=Path, default=None,
                       help="cache folder (default: $DACLIP_KIT_CACHE or ~/.cache/daclip-kit)")
    p_list.add_argument("--json", action="store_true", help="print JSON instead of a table")
    p_list.add_argument("-l", "--long", action="store_true",
                        help="one block per weights file: also the file name, source and description")
    parser.set_defaults(func=run)


def _size(n: int) -> str:
    return f"{n / 1e9:.2f} GB" if n >= 1e9 else f"{n / 1e6:.0f} MB" if n else "?"


def run(args: argparse.Namespace) -> int:

    cache = args.cache_dir or default_cache_dir()
    if args.action == "fetch":
        for name in args.name:
            path = resolve_weights(name, cache_dir=cache, download=True)
            console.stdout().print(f"{name}: {path}", markup=False)
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
    out = console.stdout()
    if args.long:
        for r in rows:
            out.print(f"[bold]{r['name']}[/bold]  {r['model']}  {_size(r['size'])}  "
                      f"{'cached' if r['cached'] else 'not cached'}")
            out.print(f"  file: {r['file']}" + (f" (Hugging Face: {r['hf_repo']})" if r["hf_repo"] else ""),
                      markup=False)
            out.print(textwrap.fill(r["description"], width=max(out.width, 40), initial_indent="  ",
                                    subsequent_indent="  "), markup=False)
        out.print(f"cache: {cache}", markup=False)
        return 0
    from rich import box
    from rich.table import Table

    table = Table(box=box.SIMPLE_HEAD, pad_edge=False, show_edge=False, collapse_padding=True,
                  caption=f"cache: {cache}", caption_justify="left")
    # a name is what people copy: never wrapped or cut; the model column gives way when narrow
    table.add_column("name", no_wrap=True, min_width=max((len(r["name"]) for r in rows), default=4))
    table.add_column("model", overflow="fold")
    table.add_column("size", no_wrap=True, justify="right")
    table.add_column("cached", no_wrap=True)
    for r in rows:
        # "backbone: restormer" breaks after the colon when the column must give way
        table.add_row(r["name"], r["model"].replace(":", ": ", 1), _size(r["size"]), "yes" if r["cached"] else "no")
    out.print(table)
    return 0
