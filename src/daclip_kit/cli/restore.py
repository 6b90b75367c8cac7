"""``daclip-kit restore INPUT... -o OUT``: restore image files with a named model."""

from __future__ import annotations

import argparse
from collections import defaultdict
from pathlib import Path

from ..errors import ConfigError, InputError
from ..io import list_images, read_image, write_image
from ..pipelines.recipe import parse_settings
from . import console


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("inputs", nargs="+", metavar="INPUT", help="image files or folders of images")
    parser.add_argument("-o", "--output", required=True, type=Path, help="output folder (PNG files)")
    parser.add_argument("--model", default="irsde-universal",
                        help="a pipeline (daclip-kit ls pipelines) or a backbone name (daclip-kit ls backbones); "
                        "default irsde-universal")
    parser.add_argument("--weights", type=Path, help="network weights file or folder (bypasses the named weights)")
    parser.add_argument("--daclip-weights", "--embedder-weights", dest="embedder_weights", type=Path,
                        help="DA-CLIP (embedder) weights file or folder (bypasses the named weights)")
    parser.add_argument("--weights-dir", type=Path, action="append", default=[], metavar="DIR",
                        help="folder searched first for named weights (repeatable)")
    parser.add_argument("--sampler", help="sampler of a diffusion model (daclip-kit ls samplers); default the model's")
    parser.add_argument("--steps", type=int, help="network evaluations per image (default: the model's)")
    parser.add_argument("--mode", help="the sampler's mode setting (irsde: posterior, sde, ode)")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", dest="settings",
                        help="model setting, e.g. sampler.order=3 or backbone.tlc=false (repeatable)")
    parser.add_argument("--seed", type=int, default=0, help="random seed of every image (default 0)")
    parser.add_argument("--device", default="auto", help="cpu, cuda, cuda:N or auto (default)")
    parser.add_argument("--tile", type=int, help="restore in tiles of this size (bounds memory)")
    parser.add_argument("--tile-overlap", type=int, default=32, help="tile overlap in pixels (default 32)")
    parser.add_argument("--batch", type=int, default=1, help="images (or tiles) per network call (default 1)")
    parser.add_argument("--overwrite", action="store_true", help="replace existing output files")
    parser.add_argument("--no-download", action="store_true", help="never download named weights")
    parser.add_argument("--json", action="store_true", help="print a JSON summary instead of a table")
    parser.set_defaults(func=run)


def plan_outputs(inputs: list[Path], output: Path, overwrite: bool) -> list[Path]:
    """``OUT/<stem>.png`` per input; refuse clashes, inputs as outputs, and existing files."""
    outs = [output / f"{p.stem}.png" for p in inputs]
    by_name: dict[Path, list[Path]] = defaultdict(list)
    for src, dst in zip(inputs, outs):
        by_name[dst].append(src)
    clashes = {dst: srcs for dst, srcs in by_name.items() if len(srcs) > 1}
    if clashes:
        dst, srcs = next(iter(clashes.items()))
        raise InputError(f"Inputs {', '.join(map(str, srcs))} would all be written to {dst}; "
                         "rename them or restore them into separate folders.")
    resolved_inputs = {p.resolve() for p in inputs}
    for dst in outs:
        if dst.resolve() in resolved_inputs:
            raise InputError(f"Output {dst} is one of the inputs; choose another --output folder "
                             "(inputs are never overwritten).")
    existing = [str(d) for d in outs if d.exists()]
    if existing and not overwrite:
        shown = ", ".join(existing[:5]) + (f" and {len(existing) - 5} more" if len(existing) > 5 else "")
        raise InputError(f"Output files exist: {shown}. Pass --overwrite to replace them.")
    return outs


def model_overrides(args: argparse.Namespace) -> dict[str, str]:
    """The recipe settings the options ask for (``--sampler``, ``--steps``, ``--mode``, ``--set``)."""

    overrides = parse_settings(args.settings)
    if args.sampler:
        overrides["sampler"] = args.sampler
    if args.steps is not None:
        overrides["steps"] = str(args.steps)
    if args.mode:
        overrides["sampler.mode"] = args.mode
    return overrides


def run(args: argparse.Namespace) -> int:
    import torch
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
    )

    from ..core.pipeline import RestoreOptions
    from ..pipelines.build import build_pipeline
    from ..pipelines.engine import restore_images

    for name in ("steps", "batch", "tile"):
        value = getattr(args, name)
        if value is not None and value < 1:
            raise ConfigError(f"--{name} must be at least 1, got {value}.")
    inputs = list_images(args.inputs)
    outputs = plan_outputs(inputs, args.output, args.overwrite)
    images = [read_image(p) for p in inputs]  # fail on unreadable files before any model work

    built = build_pipeline(args.model, weights=args.weights, embedder_weights=args.embedder_weights,
                           device=args.device, download=not args.no_download, search_dirs=args.weights_dir,
                           overrides=model_overrides(args))
    pipe, recipe = built.pipeline, built.recipe
    options = RestoreOptions(steps=recipe.steps, tile=args.tile, tile_overlap=args.tile_overlap,
                             tile_batch=args.batch)
    evaluations = pipe.evaluations(options)

    records = []
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with Progress(*columns, console=console.stderr(), transient=True, disable=args.json) as bar, torch.no_grad():
        task = bar.add_task(f"restoring {len(images)} image(s)", total=len(images) * evaluations)
        for item in restore_images(pipe, ((i, img) for i, img in enumerate(images)), options=options,
                                   batch_size=args.batch, seed=args.seed, device=built.device, total=len(images),
                                   progress=lambda done, _total: bar.update(task, completed=done)):
            i = item.key
            write_image(outputs[i], item.image)
            records.append({"input": str(inputs[i]), "output": str(outputs[i]),
                            "size": list(images[i].shape[-2:]), "seconds": round(item.seconds, 3)})
    records.sort(key=lambda r: r["input"])
    summary = {"model": recipe.name, "network": recipe.backbone, "sampler": recipe.sampler or None,
               "sampler_config": dict(recipe.sampler_config), "steps": evaluations if recipe.sampler else None,
               "seed": args.seed, "device": str(built.device), "network_weights": str(built.network_weights),
               "embedder_weights": str(built.embedder_weights) if built.embedder_weights else None,
               "images": records}
    if args.json:
        console.print_json(summary)
    else:
        for r in records:
            console.stdout().print(f"{r['input']} -> {r['output']} ({r['size'][1]}x{r['size'][0]}, {r['seconds']:.2f} s)")
    return 0
