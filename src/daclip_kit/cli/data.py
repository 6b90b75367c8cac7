"""``daclip-kit data {prepare,caption,mini,add,check}``: the mixed-degradation data set."""

from __future__ import annotations

import argparse
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

from ..data.prepare import prepare
from ..errors import ConfigError
from ..plugins import get_registry
from ..types import DEGRADATIONS
from . import console


def configure(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="data_command", metavar="SUBCOMMAND")

    def show_help(args: argparse.Namespace) -> int:
        parser.print_help()
        return 2

    parser.set_defaults(func=show_help)

    p = sub.add_parser("prepare", help="build the universal layout from downloaded data sets",
                       description="Read each source in its published layout, synthesise the JPEG, noise and "
                                   "masked-face LQ images, write OUT/{train,val}/<degradation>/{LQ,GT}/ and compare "
                                   "the counts with the paper's Table 1. Sources are never modified. Links that lead "
                                   "out of a source folder and files that are not images are refused (naming the "
                                   "file) before anything is written.")
    p.add_argument("--source", action="append", default=[], metavar="NAME=DIR", required=True,
                   help="a downloaded data set (repeatable); names: `daclip-kit ls datasets`")
    p.add_argument("--out", required=True, metavar="DIR", help="universal folder to create")
    p.add_argument("--masks", metavar="DIR", help="official inpainting masks for CelebA-HQ (default: thin strokes)")
    p.add_argument("--seed", type=int, default=0, help="seed of the synthetic LQ images")
    p.add_argument("--dry-run", action="store_true", help="only read the sources and report the counts")
    p.add_argument("--skip-missing", action="store_true", help="leave out files without a partner instead of failing")
    p.add_argument("--all-images", action="store_true",
                   help="take every image even where the paper used a subset (Snow100K-L)")
    p.add_argument("--overwrite", action="store_true", help="allow a non-empty --out")
    p.add_argument("--json", action="store_true", help="print the report as JSON")
    p.set_defaults(func=run_prepare)

    p = sub.add_parser("caption", help="write daclip_{train,val}.csv with captions of the GT images",
                       description="Caption every GT image with BLIP (needs `pip install 'daclip-kit[caption]'` and "
                                   "the weights), or take captions from --captions FILE, and write the official CSVs.")
    p.add_argument("root", metavar="DIR", help="universal folder")
    p.add_argument("--captions", metavar="FILE",
                   help="captions keyed by GT file name (.json, .jsonl or name<TAB>caption)")
    p.add_argument("--blip-model", default=None, metavar="NAME_OR_DIR",
                   help="BLIP checkpoint (default Salesforce/blip-image-captioning-large)")
    p.add_argument("--device", default="cpu", help="device for BLIP (default cpu)")
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--splits", default="val,train", help="splits to write (default val,train)")
    p.add_argument("--relative-to", metavar="DIR", help="write LQ paths relative to DIR (default absolute)")
    p.set_defaults(func=run_caption)

    p = sub.add_parser("mini", help="build an offline mini data set from photos bundled in installed packages")
    p.add_argument("--out", required=True, metavar="DIR", help="folder to create")
    p.add_argument("--size", type=int, default=256, help="crop side in pixels (default 256)")
    p.add_argument("--per-type", type=int, default=4, help="training pairs per degradation (default 4)")
    p.add_argument("--val-per-type", type=int, default=2, help="validation pairs per degradation (default 2)")
    p.add_argument("--composed", type=int, default=4, help="composed pairs per split (default 4; 0 for none)")
    p.add_argument("--types", default=None, metavar="T1,T2", help="degradations (default: the ten official ones)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--synthetic", action="store_true", help="use drawn scenes instead of bundled photos")
    p.add_argument("--zoom", type=float, default=1.6,
                   help="training crops are cut from the photo resized so its shorter side is 1 to ZOOM x --size "
                   "(default 1.6: nearly whole photos; e.g. 4: closer views too); val crops always use 1.6")
    p.add_argument("--overwrite", action="store_true",
                   help="replace an existing mini data set in --out as a whole (the new set is built beside it "
                   "and swapped in when complete)")
    p.add_argument("--json", action="store_true", help="print the counts as JSON")
    p.set_defaults(func=run_mini)

    p = sub.add_parser("add", help="add your own degradation from two folders of LQ/GT pairs",
                       description="Pair the images of --lq and --gt by file stem (extensions may differ), check that "
                                   "each decodes and that LQ and GT have the same size (one line per problem; nothing "
                                   "is written unless --skip-bad), split them into train and val and add them to the "
                                   "universal folder ROOT as ROOT/{train,val}/NAME/{LQ,GT}/ with their rows in "
                                   "daclip_{train,val}.csv. Other degradations are not touched.")
    p.add_argument("name", metavar="NAME",
                   help="the new degradation word: lowercase letters and digits, '-' or '_' inside (e.g. banding)")
    p.add_argument("--lq", required=True, metavar="DIR", help="folder of degraded images")
    p.add_argument("--gt", required=True, metavar="DIR", help="folder of the clean images, same stems as --lq")
    p.add_argument("--out", required=True, metavar="ROOT", help="universal folder to add to (created when absent)")
    split = p.add_mutually_exclusive_group()
    split.add_argument("--val", type=int, metavar="N", help="pairs kept for val (default: 10%%, at least 1)")
    split.add_argument("--val-fraction", type=float, metavar="F", help="share of the pairs kept for val, in [0, 1)")
    p.add_argument("--link", action="store_true",
                   help="hard-link the files (symlink across file systems) instead of copying them")
    p.add_argument("--captions", default="auto", metavar="auto|blip|none|FILE",
                   help="auto (default): BLIP when `daclip-kit[caption]` and its weights are available, else the "
                   "caption 'a photo'; blip: BLIP or fail; none: 'a photo'; FILE: your captions keyed by GT file name")
    p.add_argument("--skip-bad", action="store_true", help="leave out pairs with problems instead of refusing")
    p.add_argument("--overwrite", action="store_true", help="replace NAME if ROOT already has it")
    p.add_argument("--seed", type=int, default=0, help="seed of the val draw (default 0)")
    p.add_argument("--json", action="store_true", help="print the report as JSON")
    p.set_defaults(func=run_add)

    p = sub.add_parser("check", help="check a universal folder: pairing, counts vs Table 1, caption CSVs")
    p.add_argument("root", metavar="DIR", help="universal folder")
    p.add_argument("--json", action="store_true", help="print the report as JSON")
    p.set_defaults(func=run_check)


def _parse_sources(items: list[str]) -> dict[str, str]:

    out: dict[str, str] = {}
    for item in items:
        name, sep, folder = item.partition("=")
        if not sep or not name or not folder:
            raise ConfigError(f"--source {item!r} must look like NAME=DIR, e.g. --source gopro=~/data/GOPRO_Large.")
        get_registry("datasets").get(name.strip())
        if name.strip() in out:
            raise ConfigError(f"--source {name!r} is given twice.")
        out[name.strip()] = folder
    return out


def _counts_table(rows: list[dict], title: str):
    from rich.table import Table

    table = Table(title=title)
    for col in ("split", "degradation", "found", "Table 1", "status", "sources"):
        table.add_column(col, justify="right" if col in ("found", "Table 1") else "left")
    colour = {"ok": "green", "fewer": "yellow", "more": "yellow", "missing": "red"}
    for r in rows:
        exp = "-" if r["expected"] is None else str(r["expected"])
        table.add_row(r["split"], r["degradation"], str(r["found"]), exp,
                      f"[{colour.get(r['status'], 'white')}]{r['status']}[/]", ", ".join(r.get("sources", [])))
    return table


def run_prepare(args: argparse.Namespace) -> int:
    from rich.progress import Progress


    sources = _parse_sources(args.source)
    with Progress(console=console.stderr(), transient=True, disable=args.dry_run) as bar:
        task = bar.add_task("writing pairs", total=None)
        report = prepare(sources, args.out, seed=args.seed, masks=args.masks, overwrite=args.overwrite,
                         dry_run=args.dry_run, skip_missing=args.skip_missing,
                         paper_subsets=not args.all_images,
                         progress=lambda done, total: bar.update(task, completed=done, total=total))
    data = report.to_dict()
    if args.json:
        console.print_json(data)
        return 0
    out = console.stdout()
    verb = "would write" if args.dry_run else "wrote"
    out.print(_counts_table(data["rows"], f"{verb} {sum(r['found'] for r in data['rows'])} pairs to {args.out}"))
    for line in data["missing"]:
        out.print(f"[yellow]skipped:[/] {line}")
    for line in data["absent"]:
        out.print(f"[red]absent:[/] {line}")
    if not args.dry_run:
        out.print("Next: `daclip-kit data caption "
                  f"{args.out} --captions FILE` (or with BLIP) writes daclip_train.csv and daclip_val.csv.")
    return 0


def run_caption(args: argparse.Namespace) -> int:
    from ..data.captions import (
        DEFAULT_BLIP,
        blip_captioner,
        read_captions_file,
        write_dataset_csvs,
    )

    if args.captions and args.blip_model:
        raise ConfigError("Give either --captions FILE or --blip-model, not both.")
    captions: Mapping[str, str] | Callable[[Sequence[Path]], list[str]]
    if args.captions:
        captions = read_captions_file(args.captions)
    else:
        captions = blip_captioner(args.blip_model or DEFAULT_BLIP, device=args.device, batch_size=args.batch_size)
    splits = [s.strip() for s in args.splits.split(",") if s.strip()]
    for path in write_dataset_csvs(args.root, captions, splits=splits, relative_to=args.relative_to):
        console.stdout().print(f"wrote {path}")
    return 0


def run_mini(args: argparse.Namespace) -> int:
    from rich.progress import Progress

    from ..data.mini import build_mini

    types = [t.strip() for t in args.types.split(",") if t.strip()] if args.types else list(DEGRADATIONS)
    with Progress(console=console.stderr(), transient=True, disable=args.json) as bar:
        task = bar.add_task("writing pairs", total=None)
        report = build_mini(args.out, size=args.size, per_type=args.per_type, val_per_type=args.val_per_type,
                            composed=args.composed, types=types, seed=args.seed, overwrite=args.overwrite,
                            synthetic=args.synthetic, zoom=args.zoom,
                            progress=lambda done, total: bar.update(task, completed=done, total=total))
    data = {"root": str(report.root), "photos": report.photos, "counts": report.counts,
            "csvs": [str(p) for p in report.csvs]}
    if args.json:
        console.print_json(data)
        return 0
    total = sum(sum(c.values()) for c in report.counts.values())
    per_split = ", ".join(f"{s}: {sum(c.values())}" for s, c in report.counts.items())
    console.stdout().print(f"wrote {total} pairs ({per_split}) from {len(report.photos)} photos to {report.root}")
    for p in report.csvs:
        console.stdout().print(f"wrote {p}")
    return 0


def run_add(args: argparse.Namespace) -> int:
    from ..data.add import add_degradation

    report = add_degradation(args.name, args.lq, args.gt, args.out, val=args.val, val_fraction=args.val_fraction,
                             link=args.link, overwrite=args.overwrite, skip_bad=args.skip_bad,
                             captions=args.captions, seed=args.seed)
    if args.json:
        console.print_json(report.to_dict())
        return 0
    out = console.stdout()
    out.print(f"added {args.name}: {report.counts.get('train', 0)} train and {report.counts.get('val', 0)} val pairs "
              f"to {args.out} (captions: {report.caption_source})")
    for line in report.skipped:
        out.print(f"skipped: {line}", markup=False, highlight=False)
    for line in report.notes:
        out.print(f"note: {line}", markup=False, highlight=False)
    out.print(f"Check it with `daclip-kit data check {args.out}`.", highlight=False)
    return 0


def run_check(args: argparse.Namespace) -> int:
    from ..data.check import check_universal

    report = check_universal(args.root)
    if args.json:
        console.print_json({"rows": report.rows, "problems": report.problems, "notes": report.notes})
    else:
        console.stdout().print(_counts_table(report.rows, f"{args.root}"))
        for n in report.notes:
            console.stdout().print(f"[yellow]note:[/] {n}")
        for p in report.problems:
            console.stdout().print(f"[red]problem:[/] {p}")
        if report.ok:
            console.stdout().print("[green]layout and caption files are consistent[/]")
    return 0 if report.ok else 1
