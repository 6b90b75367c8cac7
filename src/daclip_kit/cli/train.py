"""``daclip-kit train {daclip,restoration,distill} --config RUN.toml``: train DA-CLIP's controller,
then the restoration network, then (optionally) a few-evaluation student of it.

Under ``torchrun --nproc_per_node N -m daclip_kit train ...`` every process runs this command;
process 0 draws the progress bar and prints the summary, the others stay quiet. Ctrl-C (SIGINT) or
SIGTERM saves a checkpoint of the current step and exits with 130 / 143.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from ..core.distributed import current
from ..errors import ConfigError, DaclipKitError
from ..train.checkpoints import find_checkpoint, run_dir_of, stored_config_text
from ..train.config import (
    RESUME_ALLOWED_TEXT,
    TRAINERS,
    config_class,
    config_to_toml,
    load_run_config,
    parse_run_config,
)
from . import console


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("trainer", choices=sorted(TRAINERS),
                        help="; ".join(f"{row.kind}: {row.description}" for row in TRAINERS.values()))
    parser.add_argument("--config", type=Path, metavar="RUN.toml",
                        help="TOML run file, or the name of a bundled one (daclip_tiny, daclip_official, irsde_tiny, "
                        "...; examples/train in a clone); default: the official recipe, or the resumed run's "
                        "config.toml")
    parser.add_argument("--set", action="append", default=[], metavar="SECTION.KEY=VALUE",
                        help="override a config value, e.g. --set optim.lr=1e-4 (repeatable; typed, never evaluated)")
    parser.add_argument("--out", type=Path, help="run folder (overrides out_dir)")
    parser.add_argument("--max-steps", type=int, help="train until this step (overrides max_steps)")
    parser.add_argument("--resume", type=Path, metavar="DIR",
                        help="continue a run: its folder or one of its checkpoints/step-N folders, with its stored "
                        f"config.toml; only {RESUME_ALLOWED_TEXT} may change")
    parser.add_argument("--device", help="cpu, cuda, cuda:N or auto (overrides device)")
    parser.add_argument("--max-memory", metavar="SIZE",
                        help="memory each process may use, e.g. 12G (overrides max_memory; default: the device's); "
                        "a run whose estimate does not fit is refused before it starts, naming settings that fit")
    parser.add_argument("--init-from", metavar="WEIGHTS",
                        help="continue from trained weights instead of the run file's start: daclip: a DA-CLIP "
                        "(weights name such as daclip-vit-b-32, released .pt, native folder, train daclip run "
                        "folder or hf://OWNER/NAME; sets model.pretrained); restoration: the network (a released "
                        "file read through the network's converter, a weights name such as universal-ir, a native "
                        "folder, a run folder or hf://OWNER/NAME[@REV][/SUBFOLDER]; sets init_from); distill: the "
                        "teacher's weights (the student starts from them)")
    parser.add_argument("--overwrite", action="store_true",
                        help="start over in a non-empty run folder (its checkpoints are removed)")
    parser.add_argument("--print-config", action="store_true", help="print the resolved config as TOML and exit")
    parser.add_argument("--json", action="store_true", help="print a JSON summary instead of progress and text")
    parser.set_defaults(func=run)


def resolve_config(args: argparse.Namespace):
    """The run config from ``--config`` (or the resumed run's ``config.toml``) and the overrides."""
    if args.max_steps is not None and args.max_steps < 1:
        raise ConfigError(f"--max-steps must be at least 1, got {args.max_steps}.")
    overrides = list(args.set)
    path = args.config
    stored = None
    if args.resume is not None:
        checkpoint = find_checkpoint(args.resume)
        run_dir = run_dir_of(checkpoint)
        if path is None:
            stored = stored_config_text(checkpoint)
        if args.out is None:
            overrides.append(f"out_dir={run_dir}")
    if args.out is not None:
        overrides.append(f"out_dir={args.out}")
    if args.max_steps is not None:
        overrides.append(f"max_steps={args.max_steps}")
    if args.device:
        overrides.append(f"device={args.device}")
    if args.max_memory:
        overrides.append(f"max_memory={args.max_memory}")
    if args.init_from:
        key = "model.pretrained" if args.trainer == "daclip" else "init_from"
        overrides.append(f"{key}={args.init_from}")
    if stored is not None:
        text, where = stored
        return parse_run_config(config_class(args.trainer), text, where, overrides)
    return load_run_config(args.trainer, path, overrides)


def _rank() -> int:

    try:
        return current().rank
    except ConfigError:
        return 0  # the trainer reports the malformed environment


def run(args: argparse.Namespace) -> int:
    """Process 0 reports; the other processes of a torchrun job stay quiet (their errors are the
    same as process 0's: the trainer raises the first error on every process)."""
    if _rank() == 0:
        return _run(args)
    try:
        return _run(args, quiet=True)
    except DaclipKitError:
        return 1


def _run(args: argparse.Namespace, *, quiet: bool = False) -> int:
    import logging

    cfg = resolve_config(args)
    if args.print_config:
        if not quiet:
            console.stdout().out(config_to_toml(cfg), end="")
        return 0

    from ..train.loop import TrainingInterrupted

    train = TRAINERS[args.trainer].train_function()
    echo = not (args.json or quiet) and not logging.getLogger("daclip_kit.train").isEnabledFor(logging.INFO)
    if not (args.json or quiet):  # the memory estimate is printed at the start of every run
        memory_log = logging.getLogger("daclip_kit.train.memory")
        memory_log.setLevel(min(memory_log.getEffectiveLevel(), logging.INFO))
    with console.progress_bar(disable=args.json or quiet, remaining=True, status=True) as bar:
        task = bar.add_task(f"train {args.trainer}", total=None, status="")

        def progress(step: int, total: int, record: dict | None) -> None:
            bar.update(task, completed=step, total=total)
            if record is not None:
                shown = "  ".join(f"{k} {v:.4g}" if isinstance(v, float) else f"{k} {v}"
                                  for k, v in record.items() if k not in ("epoch",))
                if "loss" in record:
                    bar.update(task, status=f"loss {record['loss']:.4g}")
                if echo:
                    bar.console.print(shown)

        try:
            result = train(cfg, resume=args.resume, overwrite=args.overwrite, progress=progress)
        except TrainingInterrupted as stop:
            if not quiet:
                console.stderr().print(str(stop), markup=False, highlight=False)
            return stop.exit_code
    if quiet:
        return 0

    models = sorted(p.name for p in result.checkpoint.iterdir() if p.is_dir()) if result.checkpoint else []
    summary = {"trainer": args.trainer, "out_dir": str(result.out_dir), "step": result.step,
               "checkpoint": str(result.checkpoint) if result.checkpoint else None,
               "models": {m: str(result.checkpoint / m) for m in models},
               "last": next((r for r in reversed(result.history) if "loss" in r), None)}
    if args.json:
        console.print_json(summary)
    else:
        out = console.stdout()
        out.print(f"trained {args.trainer} to step {result.step}; run folder {result.out_dir}")
        for name, path in summary["models"].items():
            out.print(f"  {name}: {path}")
    return 0
