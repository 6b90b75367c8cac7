"""``daclip-kit convert CHECKPOINT OUT_DIR``: a released checkpoint (or a native folder) -> native
folder (``config.json`` + ``model.safetensors``), read with ``weights_only=True`` and loaded
strictly through :func:`daclip_kit.load_network`. The network is recognised from the checkpoint's
keys unless ``--model`` names it."""

from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path

from ..checkpoint import nonfinite_message
from ..errors import CheckpointError, InputError
from ..pretrained import detect_network, find_network_spec, load_network, save_network
from . import console

log = logging.getLogger(__name__)


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("checkpoint", type=Path,
                        help="released file (daclip_ViT-B-32.pt, universal-ir.pth, NAFNet-*.pth, ...) or native folder")
    parser.add_argument("output", type=Path, help="folder to create")
    parser.add_argument("--model", "--kind", dest="model", default=None,
                        help="registry name of the network (daclip, irsde-unet, irsde-unet-wild, nafnet, ...; "
                        "default: recognised from the checkpoint's keys)")
    parser.add_argument("--config", default=None,
                        help="the network's settings: a JSON file (e.g. the official network_G.setting or an "
                        "open_clip model JSON) or a bundled/registry name (daclip_ViT-L-14, irsde-unet-wild)")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing output folder")
    parser.add_argument("--allow-nonfinite", action="store_true",
                        help="convert weights holding NaN or Inf too (refused by default: such a network "
                        "restores nothing)")
    parser.add_argument("--json", action="store_true", help="print the result as JSON")
    parser.set_defaults(func=run)


def _config(value: str | None):
    if value is None:
        return None
    path = Path(value)
    if path.suffix.lower() == ".json" or path.is_file():
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise InputError(f"Cannot read config {value!r}: {exc}") from exc
        if not isinstance(data, dict):
            raise InputError(f"Config {value!r} holds a JSON {type(data).__name__}; expected an object of settings.")
        return data
    return value


def choose_network(checkpoint: Path, model: str | None) -> str:
    """``model`` or the network the checkpoint's keys identify.

    Raises:
        CheckpointError: no registered network matches (with the keys seen), saying how to name one.
    """

    if model:
        return model
    found = detect_network(checkpoint)
    if not found:
        raise CheckpointError(f"{checkpoint} does not match a known release layout (daclip-kit ls backbones); "
                              "name the network with --model NAME.")
    return found[0]


def run(args: argparse.Namespace) -> int:
    src, out = args.checkpoint.resolve(), args.output.resolve()
    if not src.exists():
        raise InputError(f"Checkpoint {str(args.checkpoint)!r} does not exist.")
    if out == src or src.is_relative_to(out) or out.is_relative_to(src):
        raise InputError(f"The output folder {str(out)!r} would overlap the input; choose another folder.")
    if out.exists() and not args.overwrite:
        raise CheckpointError(f"{str(out)!r} already exists; pass --overwrite to replace it.")
    name = choose_network(src, args.model)
    kind, _ = find_network_spec(name)
    model = load_network(name, src, config=_config(args.config), allow_nonfinite=args.allow_nonfinite)
    if args.allow_nonfinite and nonfinite_message(model.state_dict()):
        log.warning("%s holds NaN or Inf weights; converted anyway (--allow-nonfinite).", src)
    save_network(model, out, name=name, component=kind, overwrite=args.overwrite)
    n_params = sum(p.numel() for p in model.parameters())
    if args.json:
        console.print_json({"model": name, "checkpoint": str(src), "output": str(out), "parameters": n_params})
    else:
        console.stdout().print(f"converted {src.name} ({name}, {n_params:,} parameters) -> {out}")
    return 0
