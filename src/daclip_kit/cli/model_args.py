"""The options that choose a restoration model, shared by ``restore`` and ``score``."""

from __future__ import annotations

import argparse
from pathlib import Path

from ..checkpoint import nonfinite_weights_allowed
from ..pipelines.recipe import parse_settings
from ..weights.hub import weights_arg


def add_weight_arguments(parser: argparse.ArgumentParser) -> None:
    """``--weights --daclip-weights --weights-dir``: the network's and DA-CLIP's files, and where
    named weights are looked for."""
    parser.add_argument("--weights", type=weights_arg,
                        help="network weights file or folder, or hf://OWNER/NAME[@REV][/SUBFOLDER] (bypasses the "
                        "named weights)")
    parser.add_argument("--daclip-weights", "--embedder-weights", dest="embedder_weights", type=weights_arg,
                        help="DA-CLIP (embedder) weights file or folder, or hf://OWNER/NAME[@REV][/SUBFOLDER] "
                        "(bypasses the named weights)")
    parser.add_argument("--weights-dir", type=Path, action="append", default=[], metavar="DIR",
                        help="folder searched first for named weights (repeatable)")


def add_model_arguments(parser: argparse.ArgumentParser) -> None:
    """``--model --weights --daclip-weights --weights-dir --sampler --steps --mode --set --seed --device
    --allow-nonfinite``."""
    parser.add_argument("--model", default="irsde-universal",
                        help="a pipeline (daclip-kit ls pipelines) or a backbone name (daclip-kit ls backbones); "
                        "default irsde-universal")
    add_weight_arguments(parser)
    parser.add_argument("--sampler", help="sampler of a diffusion model (daclip-kit ls samplers); default the model's")
    parser.add_argument("--steps", type=int, help="network evaluations per image (default: the model's)")
    parser.add_argument("--mode", help="the sampler's mode setting (irsde: posterior, sde, ode)")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", dest="settings",
                        help="model setting, e.g. sampler.order=3 or backbone.tlc=false (repeatable)")
    parser.add_argument("--seed", type=int, default=0, help="random seed of every image (default 0)")
    parser.add_argument("--device", default="auto", help="cpu, cuda, cuda:N or auto (default)")
    parser.add_argument("--allow-nonfinite", action="store_true",
                        help="load weights holding NaN or Inf (to inspect them); a non-finite sampler step still "
                        "stops the run and nothing is written")


def nonfinite_scope(args: argparse.Namespace):
    """The scope the models are loaded in: NaN/Inf weights refused unless ``--allow-nonfinite``."""
    return nonfinite_weights_allowed(bool(args.allow_nonfinite))


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
