"""``daclip-kit restore INPUT... -o OUT``: restore image files with a named model.

Under ``torchrun --nproc_per_node N -m daclip_kit restore ...`` every process restores its share of
the inputs on its own device; each output is written once.
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
from pathlib import Path
from typing import Any

from ..core import distributed
from ..core.ood import warning_line
from ..errors import ConfigError, InputError
from ..io import MAX_PIXELS, read_image
from ..pipelines.files import BadInput, FileResult, UnreadableInput, plan_restore, restore_files
from . import console
from .model_args import add_model_arguments, model_overrides, nonfinite_scope

#: The last line of the error naming every bad input (without --skip-bad).
SKIP_BAD_FIX = "Fix or remove them, or pass --skip-bad to restore the others."


def _positive_bytes(text: str) -> int:
    from ..config import parse_size

    try:
        return parse_size(text, "--max-memory")
    except ConfigError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a size; use e.g. 6G, 500M or 2147483648") from None


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("inputs", nargs="+", metavar="INPUT", help="image files or folders of images")
    parser.add_argument("-o", "--output", required=True, type=Path,
                        help="output folder (OUT/<name>.png), or a file name (.png, .tif, ...) for one input; each "
                        "output keeps its input's kind (gray or RGB, 8 or 16 bits, alpha, ICC profile)")
    add_model_arguments(parser)
    parser.add_argument("--precision", default="auto",
                        help="fp32, bf16, fp16 or auto (default: bf16 on CUDA, fp32 on the CPU); the diffusion "
                        "state stays fp32")
    parser.add_argument("--compile", action="store_true", help="torch.compile the networks (CUDA graphs on CUDA)")
    parser.add_argument("--tile", type=int, help="restore in tiles of this size (bounds memory)")
    parser.add_argument("--tile-overlap", type=int, default=32, help="tile overlap in pixels (default 32)")
    parser.add_argument("--max-memory", type=_positive_bytes, metavar="BYTES",
                        help="memory a restore may add at its peak, e.g. 6G (the loaded weights not counted; "
                        "default: the device's free memory); larger images are tiled automatically")
    parser.add_argument("--batch", type=int, default=1, help="images (or tiles) per network call (default 1)")
    parser.add_argument("--workers", type=int, default=None,
                        help="processes decoding images ahead of the network (default: 2, or 0 for one input)")
    parser.add_argument("--max-pixels", type=int, default=MAX_PIXELS,
                        help=f"refuse larger images (default {MAX_PIXELS:,})")
    parser.add_argument("--overwrite", action="store_true", help="replace existing output files")
    parser.add_argument("--resume", action="store_true", help="skip inputs whose output exists (continue a run)")
    parser.add_argument("--skip-bad", action="store_true",
                        help="restore the good images and name each bad one (unreadable, not an image, too many "
                        "pixels) instead of refusing; exits 1 when one was skipped")
    parser.add_argument("--no-download", action="store_true", help="never download named weights")
    parser.add_argument("--noise", type=Path, metavar="FILE.npy",
                        help="start noise of the diffusion run instead of --seed's draw: float32 (N, 3, H, W), one "
                        "standard-normal image per input in input order at the input's own size (not padded), "
                        "or (N, 1 + S, 3, H, W) adding the S draws of a stochastic sampler's steps "
                        "(docs/export.md: compare with an exported model)")
    parser.add_argument("--json", action="store_true",
                        help="print a JSON summary instead of a table (with NIQE and CLIP-IQA of inputs and outputs)")
    parser.add_argument("--no-quality", action="store_true",
                        help="leave the no-reference NIQE and CLIP-IQA out of --json (faster on large batches)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import torch

    from ..core.pipeline import RestoreOptions
    from ..core.pipeline import log as pipeline_log
    from ..pipelines.build import build_pipeline

    if pipeline_log.getEffectiveLevel() > logging.INFO:
        pipeline_log.setLevel(logging.INFO)  # its memory decisions (automatic tiling) are shown, one line each

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
    plan = plan_restore(args.inputs, args.output, overwrite=args.overwrite, resume=args.resume,
                        max_pixels=args.max_pixels, skip_bad=args.skip_bad, fix=SKIP_BAD_FIX)
    jobs, done, bad = plan.jobs, plan.done, list(plan.bad)
    if args.noise and bad:
        raise ConfigError(f"--noise holds one start noise per input in input order; with {len(bad)} input(s) "
                          "skipped (--skip-bad) they no longer line up. Remove the bad inputs, or leave --noise out.")
    noise = read_noise(args.noise, plan.inputs, {j.input: j.size for j in [*jobs, *done]}) if args.noise else None
    proc = distributed.current()
    if proc.is_main:
        for b in bad:
            console.warning(f"skipped: {b.reason}")
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
        if noise is not None and pipe.sampler is None:
            raise ConfigError(f"--noise is the start noise of a diffusion run; {recipe.name} restores in one shot "
                              "and draws none. Leave --noise out.")
        options = dataclasses.replace(options, steps=recipe.steps)
        evaluations = pipe.evaluations(options)
        workers = args.workers if args.workers is not None else (2 if len(mine) > 1 else 0)
        quiet = args.json or not proc.is_main
        if built.about and not quiet:
            console.stdout().print(f"network: {built.about}", markup=False, highlight=False, soft_wrap=True)
        written: list[FileResult] = []
        found_bad: list[BadInput] = []  # inputs whose pixels did not decode (their headers did)

        def skip(item: BadInput) -> None:
            found_bad.append(item)
            console.warning(f"skipped: {item.reason}")

        def report(result: FileResult) -> None:  # on the writer thread, as each file is in place
            written.append(result)
            if not args.json:
                console.stdout().print(result_line(result), markup=False, highlight=False, soft_wrap=True)

        try:
            with console.progress_bar(disable=quiet) as bar, torch.no_grad():
                task = bar.add_task(f"restoring {len(mine)} image(s)", total=max(1, len(mine) * evaluations))
                results = restore_files(pipe, mine, options=options, batch_size=args.batch, seed=args.seed,
                                        device=built.device, workers=workers, overwrite=args.overwrite,
                                        max_pixels=args.max_pixels, on_written=report, noise=noise,
                                        progress=lambda done_, _total: bar.update(task, completed=done_),
                                        on_bad=skip if args.skip_bad else None)
        except KeyboardInterrupt:
            raise KeyboardInterrupt(interrupted_message(len(written), len(mine), args.output)) from None
        except UnreadableInput as exc:
            raise UnreadableInput(BadInput(exc.input, f"{exc} {len(written)} of {len(mine)} image(s) were written; "
                                           "run the same command with --resume --skip-bad to restore the others."
                                           )) from None
        records: list[dict[str, Any]] = [
            {"input": str(r.input), "output": str(r.output), "size": [r.size[1], r.size[0]],
             "seconds": round(r.seconds, 3), "rank": proc.rank} for r in results]
        if pipe.embedder is not None and pipe.embedder.provides_degradation:
            with torch.no_grad():
                for rec in records:  # what DA-CLIP saw in each input (its own words), and whether it knows it
                    rec.update(pipe.embedder.degradation_report(read_image(rec["input"]))[0])
        if args.json and not args.no_quality:
            from ..metrics.no_reference import quality_change

            for rec in records:  # how each image looks before and after, without ground truth
                rec["quality"] = quality_change(read_image(rec["input"]), read_image(rec["output"]),
                                                embedder=pipe.embedder)
        everything = [rec for part in distributed.gather(records) for rec in part]
        bad += [b for part in distributed.gather(found_bad) for b in part]
    status = 1 if bad else 0  # a skipped input is a failure of the run, after the others were restored
    if not proc.is_main:
        return status
    everything.sort(key=lambda r: r["input"])
    summary = {"model": recipe.name, "network": recipe.backbone, "network_about": built.about,
               "sampler": recipe.sampler or None,
               "sampler_config": dict(recipe.sampler_config), "steps": evaluations if recipe.sampler else None,
               "seed": args.seed, "device": str(built.device), "processes": proc.world,
               "precision": args.precision, "network_weights": str(built.network_weights),
               "embedder_weights": str(built.embedder_weights) if built.embedder_weights else None,
               "skipped": [str(j.output) for j in done], "images": everything,
               "bad": [{"input": str(b.input), "reason": b.reason} for b in bad]}
    for r in everything:
        if r.get("unknown_degradation"):
            console.warning(warning_line(r["input"], r))
    if args.json:
        console.print_json(summary)
    elif done:  # each result line was printed as its file was written
        console.stdout().print(f"skipped {len(done)} image(s) restored before (--resume)", soft_wrap=True)
    if bad:
        console.error(bad_summary(len(everything), plan.total, bad, len(done)))
    return status


def read_noise(path: Path, inputs: list[Path], sizes: dict[Path, tuple[int, int]]) -> dict[Path, Any]:
    """``--noise FILE.npy``: each input's start noise (a ``(1, ...)`` float32 tensor) by input path,
    checked against the inputs' sizes before anything is loaded.

    Raises:
        InputError: an unreadable file, or one whose dtype, count or shape does not fit the inputs
            (the expected shape named).
    """
    import numpy as np
    import torch

    try:
        array = np.load(path, allow_pickle=False)
    except (OSError, ValueError) as exc:
        raise InputError(f"--noise {str(path)!r} is not a readable .npy file ({exc}); write it with numpy.save."
                         ) from None
    w, h = sizes[inputs[0]]
    expected = f"({len(inputs)}, 3, {h}, {w}) float32 (or ({len(inputs)}, 1 + S, 3, {h}, {w}) with the S later draws)"
    if array.dtype.kind != "f":
        raise InputError(f"--noise {str(path)!r} holds {array.dtype} values; it takes standard-normal floats, "
                         f"{expected}.")
    if array.ndim not in (4, 5) or array.shape[0] != len(inputs) or array.shape[-3] != 3:
        raise InputError(f"--noise {str(path)!r} has shape {array.shape}; {len(inputs)} input(s) take {expected}: "
                         "one start noise per input, in input order, at the input's own size (not padded).")
    for src in inputs:
        w, h = sizes[src]
        if tuple(array.shape[-2:]) != (h, w):
            raise InputError(f"--noise {str(path)!r} has shape {array.shape} but {src} is {w}x{h}: its noise must be "
                             f"(3, {h}, {w}) (the image's own size, not padded). Inputs of different sizes take "
                             "one run each.")
    return {src: torch.from_numpy(np.ascontiguousarray(array[i:i + 1], dtype=np.float32))
            for i, src in enumerate(inputs)}


def result_line(result: FileResult) -> str:
    """``INPUT -> OUTPUT (WxH, S s)``: one line per written image, never wrapped (pipes, files)."""
    return f"{result.input} -> {result.output} ({result.size[0]}x{result.size[1]}, {result.seconds:.2f} s)"


def bad_summary(restored: int, total: int, bad: list[BadInput], before: int = 0) -> str:
    """``restored N of M image(s); skipped K: a.png, b.png``: the end of a ``--skip-bad`` run that
    left inputs out (each was named with its reason as it was met)."""
    names = ", ".join(str(b.input) for b in bad[:10]) + (f" and {len(bad) - 10} more" if len(bad) > 10 else "")
    earlier = f" ({before} restored before, --resume)" if before else ""
    return f"restored {restored} of {total} image(s){earlier}; skipped {len(bad)}: {names} (reasons above)."


def interrupted_message(written: int, total: int, output: Path) -> str:
    """What Ctrl-C left: how many outputs are complete and how to continue."""
    left = total - written
    return (f"interrupted: {written} of {total} image(s) written to {output}; the other {left} are not "
            "(no partial file is left). Run the same command with --resume to restore them.")
