"""``daclip-kit degrade IMG... -o DIR``: write synthetic degradations of images.

One input writes ``DIR/<type>.png`` for every type; several inputs write ``DIR/<stem>/<type>.png``.
With ``--compose``, the chosen types are applied together in physical order and written as
``DIR/<a>+<b>.png``; without ``--types`` it writes ``--num-composed`` different random compositions of
2–3 per input (drawn, and their files checked, before anything is written).
"""

from __future__ import annotations

import argparse

from . import console


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("inputs", nargs="+", metavar="IMG", help="image files or folders of images")
    parser.add_argument("-o", "--out", required=True, metavar="DIR", help="output folder")
    parser.add_argument("--types", default=None, metavar="T1,T2",
                        help="comma-separated degradation names (default: all registered; "
                             "see `daclip-kit ls degradations`)")
    parser.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    parser.add_argument("--compose", action="store_true",
                        help="apply the types together (physical order) instead of one by one")
    parser.add_argument("--num-composed", type=int, default=3, metavar="N",
                        help="different random compositions per input with --compose and no --types (default 3)")
    parser.add_argument("--max-side", type=int, default=None, metavar="PX",
                        help="shrink inputs so their longer side is at most PX first")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="TYPE.KEY=VALUE",
                        help="generator option, e.g. --set jpeg-compressed.quality=20 (repeatable)")
    parser.add_argument("--overwrite", action="store_true", help="replace existing output files")
    parser.add_argument("--json", action="store_true", help="print the written files as JSON")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..degradations.files import degrade_files, parse_type_options

    types = [t.strip() for t in args.types.split(",") if t.strip()] if args.types else None
    written = degrade_files(args.inputs, args.out, types=types, compose_types=args.compose,
                            num_composed=args.num_composed, seed=args.seed,
                            options=parse_type_options(args.overrides), max_side=args.max_side,
                            overwrite=args.overwrite)
    records = [{"input": str(w.input), "output": str(w.output), "degradations": w.degradations} for w in written]
    if args.json:
        console.print_json(records)
    else:
        for r in records:
            console.stdout().print(f"{r['output']}  ({', '.join(r['degradations'])})")
    return 0
