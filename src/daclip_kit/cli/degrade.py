"""``daclip-kit degrade IMG... -o DIR``: write synthetic degradations of images.

One input writes ``DIR/<type>.png`` for every type; several inputs write ``DIR/<stem>/<type>.png``.
With ``--compose``, the chosen types are applied together in physical order and written as
``DIR/<a>+<b>.png``; without ``--types`` it writes ``--num-composed`` different random compositions of
2–3 per input (drawn, and their files checked, before anything is written).
"""

from __future__ import annotations

import argparse

from ..config import from_dict
from ..errors import ConfigError, InputError, suggest
from ..factory import create_degradation
from ..io import list_images, read_image, write_image
from ..plugins import get_registry
from ..specs import load_target
from ..types import DEGRADATIONS
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


def _parse_overrides(items: list[str], names: list[str]) -> dict[str, dict[str, str]]:

    out: dict[str, dict[str, str]] = {}
    for item in items:
        key, sep, value = item.partition("=")
        name, dot, field = key.rpartition(".")
        if not sep or not dot or not name or not field:
            raise ConfigError(f"--set {item!r} must look like TYPE.KEY=VALUE, e.g. noisy.sigma=25.")
        if name not in names:
            raise ConfigError(f"--set {item!r}: unknown degradation {name!r}.{suggest(name, names)}")
        out.setdefault(name, {})[field] = value
    return out


def _build(name: str, options: dict[str, str]):

    if not options:
        return create_degradation(name)
    spec = get_registry("degradations").get(name)
    if spec.config is None:
        return create_degradation(name, **options)
    cfg = from_dict(load_target(spec.config), {**dict(spec.defaults), **options}, where=name)
    return load_target(spec.target)(cfg)


#: Draws per requested composition before giving up on finding distinct ones.
_DRAWS_PER_COMPOSITION = 50


def _distinct_compositions(mixer, count: int, generator) -> list[list[str]]:
    """``count`` different label sets drawn by ``mixer`` (a :class:`RandomComposition`).

    Raises:
        ConfigError: fewer than ``count`` distinct sets turned up in a bounded number of draws.
    """

    seen: dict[tuple[str, ...], None] = {}
    if count <= 0:
        return []
    for _ in range(_DRAWS_PER_COMPOSITION * count):
        seen.setdefault(tuple(mixer.sample_labels(generator)))
        if len(seen) == count:
            return [list(labels) for labels in seen]
    raise ConfigError(f"--num-composed {count}: only {len(seen)} different compositions of 2-3 of the "
                      f"{len(mixer.pool)} types turned up in {_DRAWS_PER_COMPOSITION * count} draws; "
                      "lower --num-composed.")


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    import torch
    import torch.nn.functional as F

    from ..degradations.compose import (
        RandomComposition,
        compose,
        folder_name,
        physical_order,
    )

    registered = get_registry("degradations").names()
    official_first = [t for t in DEGRADATIONS if t in registered] + [t for t in registered if t not in DEGRADATIONS]
    types = list(dict.fromkeys(t.strip() for t in args.types.split(",") if t.strip())) if args.types else official_first
    for t in types:
        get_registry("degradations").get(t)  # unknown name -> error with suggestion
    options = _parse_overrides(args.overrides, registered)
    gens = {t: _build(t, options.get(t, {})) for t in types}
    if args.compose and args.types and len(types) < 2:
        raise ConfigError("--compose needs at least two --types (or none, for random compositions).")

    inputs = list_images(args.inputs)
    out = Path(args.out)
    written: list[dict] = []
    g = torch.Generator().manual_seed(args.seed)
    mixer = None
    if args.compose and not args.types:
        mixer = RandomComposition(pool=tuple(types), count=(2, min(3, len(types))), generators=gens)
    # every label set is drawn (distinct per input) and every target checked before anything is written
    planned: list[tuple[Path, Path, list[str]]] = []
    resolved_inputs = {p.resolve() for p in inputs}
    for path in inputs:
        base = out if len(inputs) == 1 else out / path.stem
        if args.compose and args.types:
            names = [physical_order(types)]
        elif args.compose:
            names = _distinct_compositions(mixer, args.num_composed, g)
        else:
            names = [[t] for t in types]
        for labels in names:
            planned.append((path, base, labels))
    for _, base, labels in planned:
        target = base / f"{folder_name(labels)}.png"
        if target.resolve() in resolved_inputs:
            raise InputError(f"Refusing to overwrite the input {str(target)!r}; choose another --out.")
        if target.exists() and not args.overwrite:
            raise InputError(f"{str(target)!r} exists; pass --overwrite or choose an empty --out.")
    cache: dict[Path, torch.Tensor] = {}
    for path, base, labels in planned:
        if path not in cache:
            img = read_image(path)
            if args.max_side and max(img.shape[-2:]) > args.max_side:
                s = args.max_side / max(img.shape[-2:])
                size = (max(1, round(img.shape[-2] * s)), max(1, round(img.shape[-1] * s)))
                img = F.interpolate(img, size=size, mode="area")
            cache = {path: img}
        img = cache[path]
        if len(labels) > 1:
            lq, labels = compose(img, labels, g, degradations=gens)
        else:
            lq = gens[labels[0]](img, generator=g)
        target = base / f"{folder_name(labels)}.png"
        write_image(target, lq)
        written.append({"input": str(path), "output": str(target), "degradations": labels})
    if args.json:
        console.print_json(written)
    else:
        for w in written:
            console.stdout().print(f"{w['output']}  ({', '.join(w['degradations'])})")
    return 0
