"""``daclip-kit demo``: serve the web demo (Gradio, from the ``[demo]`` extra) on this machine.

Weights are found as ``restore`` finds them, through the one model resolver (``--weights`` takes any
model reference: a run folder, a checkpoint, ``hf://...``, a distilled student; its own DA-CLIP and
sampler come with it; ``--daclip-weights``, ``--weights-dir``, the cache, a download on first use
unless ``--no-download``); models load on the first request and are reused. Gradio and torch are
imported only when the verb runs.
"""

from __future__ import annotations

import argparse
import contextlib
import signal
import tempfile
from pathlib import Path

from ..demo.core import (
    DEFAULT_MAX_PIXELS,
    DEFAULT_MAX_UPLOAD_MB,
    DemoSettings,
    make_examples,
    recipe_for,
)
from ..errors import ConfigError
from ..weights.hub import is_hub_ref
from . import console
from .model_args import add_weight_arguments

#: What to tell a user whose environment lacks the demo's packages.
INSTALL_HINT = "The demo needs Gradio: pip install 'daclip-kit[demo]'"


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--host", default="127.0.0.1",
                        help="address to listen on (default 127.0.0.1: this machine only; 0.0.0.0: the network)")
    parser.add_argument("--port", type=int, default=7860, help="port to listen on (default 7860; 0: any free port)")
    parser.add_argument("--share", action="store_true", help="also open a public Gradio share link (off by default)")
    parser.add_argument("--model", default="irsde-universal",
                        help="model shown first (daclip-kit ls pipelines; all are offered); default irsde-universal")
    parser.add_argument("--sampler", help="sampler shown first (daclip-kit ls samplers); default the model's")
    parser.add_argument("--steps", type=int, help="steps shown first (default: the model's)")
    parser.add_argument("--seed", type=int, default=0, help="seed shown first (default 0)")
    parser.add_argument("--tile", type=int, help="tile size shown first, at least 32 (default: whole images)")
    add_weight_arguments(parser)
    parser.add_argument("--no-download", action="store_true", help="never download named weights")
    parser.add_argument("--device", default="auto", help="cpu, cuda, cuda:N or auto (default)")
    parser.add_argument("--max-pixels", type=int, default=DEFAULT_MAX_PIXELS,
                        help=f"refuse images with more pixels than this (default {DEFAULT_MAX_PIXELS}, 2048x2048)")
    parser.add_argument("--max-upload-mb", type=float, default=DEFAULT_MAX_UPLOAD_MB,
                        help=f"refuse uploads larger than this many MB (default {DEFAULT_MAX_UPLOAD_MB:g})")
    parser.add_argument("--max-queue", type=int, default=32,
                        help="jobs allowed to wait for the model; more are refused (default 32)")
    parser.add_argument("--example-size", type=int, default=320,
                        help="longer side of the example photos, in pixels (default 320)")
    parser.set_defaults(func=run)


def settings_from_args(args: argparse.Namespace):
    """The :class:`~daclip_kit.demo.core.DemoSettings` the options ask for (checked)."""
    if not 0 <= args.port <= 65535:
        raise ConfigError(f"--port must be between 0 and 65535, got {args.port}.")
    for name in ("max_queue", "example_size"):
        if getattr(args, name) < 1:
            raise ConfigError(f"--{name.replace('_', '-')} must be at least 1, got {getattr(args, name)}.")
    for flag, path in (("--weights", args.weights), ("--daclip-weights", args.embedder_weights)):
        if path is not None and not is_hub_ref(path) and not path.exists():
            raise ConfigError(f"{flag} {str(path)!r} does not exist; give an existing file or model folder.")
    for folder in args.weights_dir:
        if not folder.is_dir():
            raise ConfigError(f"--weights-dir {str(folder)!r} is not a folder.")
    settings = DemoSettings(
        weights=args.weights, embedder_weights=args.embedder_weights, weights_dirs=tuple(args.weights_dir),
        download=not args.no_download, device=None if args.device in (None, "", "auto") else args.device,
        max_pixels=args.max_pixels, max_upload_mb=args.max_upload_mb, model=args.model, sampler=args.sampler,
        steps=args.steps, seed=args.seed, tile=args.tile,
    )
    return settings


def _stop_on_sigterm() -> None:
    """SIGTERM stops the server like Ctrl+C, so the temporary files are removed."""
    def interrupt(_signum, _frame):
        signal.signal(signal.SIGTERM, signal.SIG_IGN)  # a second SIGTERM must not break the shutdown
        raise KeyboardInterrupt

    with contextlib.suppress(ValueError):  # not the main thread (the verb called from a test's thread)
        signal.signal(signal.SIGTERM, interrupt)


def run(args: argparse.Namespace) -> int:
    from ..core.device import pick_device

    settings = settings_from_args(args)
    # an unknown model or sampler, or --weights that hold no model, fail before the server starts
    recipe_for(settings.model, settings.sampler, settings.weights, weights_dirs=settings.weights_dirs)
    device = pick_device(settings.device)  # a bad --device fails now, not on the first request
    try:
        from ..demo import app
    except ImportError as exc:
        if exc.name and exc.name.split(".")[0] in ("gradio", "gradio_client"):
            raise ConfigError(f"{INSTALL_HINT} ({exc}).") from None
        raise
    _stop_on_sigterm()
    with tempfile.TemporaryDirectory(prefix="daclip-kit-demo-") as work:
        examples = make_examples(Path(work) / "examples", longest=args.example_size)
        demo, local_url, share_url = app.start(settings, host=args.host, port=args.port, share=args.share,
                                               examples=examples, work_dir=work, max_queue=args.max_queue)
        out = console.stderr()
        weights = f" with the weights {settings.weights}" if settings.weights is not None else ""
        out.print(f"daclip-kit demo: {settings.model}{weights} on {device}; models load on the first request.")
        out.print(f"Open {local_url}" + (f" or the public link {share_url}" if share_url else "")
                  + " in a browser; Ctrl+C stops the demo.", soft_wrap=True)
        try:
            demo.block_thread()
        finally:
            demo.close()
    return 0
