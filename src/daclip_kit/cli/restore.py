"""``daclip-kit restore INPUT... -o OUT``: restore image files with a named model.

Under ``torchrun --nproc_per_node N -m daclip_kit restore ...`` every process restores its share of
the inputs on its own device; each output is written once.
"""

from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path

from ..core import distributed
from ..errors import ConfigError
from ..core.ood import warning_line
from ..io import MAX_PIXELS, list_images, read_image
from ..pipelines.files import plan_outputs, restore_files
from . import console
from .model_args import add_model_arguments, model_overrides, nonfinite_scope


def _positive_bytes(text: str) -> int:
    units = {"k": 2**10, "m": 2**20, "g": 2**30, "t": 2**40}
    value = text.strip().lower().removesuffix("b").removesuffix("i")
    try:
        if value and value[-1] in units:
            return int(float(value[:-1]) * units[value[-1]])
        return int(float(value))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a size; use e.g. 6G, 500M or 2147483648") from None


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("inputs", nargs="+", metavar="INPUT", help="image files or folders of images")
    parser.add_argument("-o", "--output", required=True, type=Path,
                        help="output folder (OUT/<name>.png), or a file name ending in .png for one input")
    add_model_arguments(parser)
    parser.add_argument("--precision", default="auto",
                        help="fp32, bf16, fp16 or auto (default: bf16 on CUDA, fp32 on the CPU); the diffusion "
                        "state stays fp32")
    parser.add_argument("--compile", action="store_true", help="torch.compile the networks (CUDA graphs on CUDA)")
    parser.add_argument("--tile", type=int, help="restore in tiles of this size (bounds memory)")
    parser.add_argument("--tile-overlap", type=int, default=32, help="tile overlap in pixels (default 32)")
    parser.add_argument("--max-memory", type=_positive_bytes, metavar="BYTES",
                        help="memory a run may use, e.g. 6G (default: the device's free memory); larger images "
                        "are tiled automatically")
    parser.add_argument("--batch", type=int, default=1, help="images (or tiles) per network call (default 1)")
    parser.add_argument("--workers", type=int, default=None,
                        help="processes decoding images ahead of the network (default: 2, or 0 for one input)")
    parser.add_argument("--max-pixels", type=int, default=MAX_PIXELS,
                        help=f"refuse larger images (default {MAX_PIXELS:,})")
    parser.add_argument("--overwrite", action="store_true", help="replace existing output files")
    parser.add_argument("--resume", action="store_true", help="skip inputs whose output exists (continue a run)")
    parser.add_argument("--no-download", action="store_true", help="never download named weights")
    parser.add_argument("--json", action="store_true", help="print a JSON summary instead of a table")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import torch

    from ..core.pipeline import RestoreOptions
    from ..pipelines.build import build_pipeline

    for name in ("steps", "batch", "tile", "max_pixels"):
        value = getattr(args, name)
        if value is not None and value < 1:
            raise ConfigError(f"--{name.replace('_', '-')} must be at least 1, got {value}.")
    if args.workers is not None and args.workers < 0:
        raise ConfigError(f"--workers must not be negative, got {args.workers}.")
    if args.overwrite and args.resume:
        raise ConfigError("--overwrite and --resume contradict each other; give one.")
    options = RestoreOptions(tile=args.tile, tile_overlap=args.tile_overlap, tile_batch=args.batch,
                             precision=args.precision, compile=args.compile, max_memory=args.max_memory)
    inputs = list_images(args.inputs)
    jobs, done = plan_outputs(inputs, args.output, overwrite=args.overwrite, resume=args.resume,
                              max_pixels=args.max_pixels)
    proc = distributed.current()
    device = distributed.process_device(args.device, proc)
    with distributed.process_group(device, proc):
        mine = distributed.shard(jobs, proc)
        if not proc.is_main:
            distributed.barrier()  # rank 0 downloads missing weights first
        try:
            with nonfinite_scope(args):
                built = build_pipeline(args.model, weights=args.weights, embedder_weights=args.embedder_weights,
                                       device=device, download=not args.no_download, search_dirs=args.weights_dir,
                                       overrides=model_overrides(args))
        finally:
            if proc.is_main:
                distributed.barrier()
        pipe, recipe = built.pipeline, built.recipe
        options = dataclasses.replace(options, steps=recipe.steps)
        evaluations = pipe.evaluations(options)
        workers = args.workers if args.workers is not None else (2 if len(mine) > 1 else 0)
        quiet = args.json or not proc.is_main
        with console.progress_bar(disable=quiet) as bar, torch.no_grad():
            task = bar.add_task(f"restoring {len(mine)} image(s)", total=max(1, len(mine) * evaluations))
            results = restore_files(pipe, mine, options=options, batch_size=args.batch, seed=args.seed,
                                    device=built.device, workers=workers, overwrite=args.overwrite,
                                    max_pixels=args.max_pixels,
                                    progress=lambda done_, _total: bar.update(task, completed=done_))
        records = [{"input": str(r.input), "output": str(r.output), "size": [r.size[1], r.size[0]],
                    "seconds": round(r.seconds, 3), "rank": proc.rank} for r in results]
        if pipe.embedder is not None and pipe.embedder.provides_degradation:
            with torch.no_grad():
                for rec in records:  # what DA-CLIP saw in each input (its own words), and whether it knows it
                    rec.update(pipe.embedder.degradation_report(read_image(rec["input"]))[0])
        everything = [rec for part in distributed.gather(records) for rec in part]
    if not proc.is_main:
        return 0
    everything.sort(key=lambda r: r["input"])
    summary = {"model": recipe.name, "network": recipe.backbone, "sampler": recipe.sampler or None,
               "sampler_config": dict(recipe.sampler_config), "steps": evaluations if recipe.sampler else None,
               "seed": args.seed, "device": str(built.device), "processes": proc.world,
               "precision": args.precision, "network_weights": str(built.network_weights),
               "embedder_weights": str(built.embedder_weights) if built.embedder_weights else None,
               "skipped": [str(j.output) for j in done], "images": everything}
    for r in everything:
        if r.get("unknown_degradation"):
            console.warning(warning_line(r["input"], r))
    if args.json:
        console.print_json(summary)
    else:
        for r in everything:
            seen = f", DA-CLIP: {r['degradation']} {r['probability']:.0%}" if "degradation" in r else ""
            console.stdout().print(f"{r['input']} -> {r['output']} ({r['size'][1]}x{r['size'][0]}, "
                                   f"{r['seconds']:.2f} s{seen})")
        if done:
            console.stdout().print(f"skipped {len(done)} image(s) restored before (--resume)")
    return 0
