"""``daclip-kit convert CHECKPOINT OUT_DIR``: official release file -> native folder
(``config.json`` + ``model.safetensors``), read with ``weights_only=True`` and loaded strictly."""

from __future__ import annotations

import argparse
from pathlib import Path


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("checkpoint", type=Path, help="official file (daclip_ViT-B-32.pt, universal-ir.pth, ...)")
    parser.add_argument("output", type=Path, help="folder to create")
    parser.add_argument("--kind", default="daclip", help="model family: daclip (default), irsde-unet, nafnet, restormer, promptir, airnet "
                        "(see daclip_kit.compat.OFFICIAL_LOADERS)")
    parser.add_argument("--model", default=None,
                        help="bundled config name (daclip: daclip_ViT-B-32, daclip_ViT-L-14; "
                        "default: detected from the checkpoint)")
    parser.add_argument("--config", type=Path, default=None,
                        help="JSON file with the official config (open_clip model JSON for daclip, "
                        "network_G.setting for irsde-unet)")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing output folder")
    parser.add_argument("--json", action="store_true", help="print the result as JSON")
    parser.set_defaults(func=run)


def _config(args: argparse.Namespace):
    import json

    from ..errors import ConfigError, InputError

    if args.model and args.config:
        raise ConfigError("Give either --model or --config, not both.")
    if args.config is None:
        return args.model
    try:
        return json.loads(args.config.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise InputError(f"Cannot read config {str(args.config)!r}: {exc}") from exc


def run(args: argparse.Namespace) -> int:
    from ..checkpoint import save_pretrained
    from ..compat import load_official
    from ..errors import CheckpointError, ConfigError, InputError
    from . import console

    src, out = args.checkpoint.resolve(), args.output.resolve()
    if not src.is_file():
        raise InputError(f"Checkpoint {str(args.checkpoint)!r} does not exist.")
    if out == src or src.is_relative_to(out):
        raise InputError(f"The output folder {str(out)!r} would replace the input; choose another folder.")
    if out.exists() and not args.overwrite:
        raise CheckpointError(f"{str(out)!r} already exists; pass --overwrite to replace it.")
    model = load_official(args.kind, src, config=_config(args))
    export = getattr(model, "export_config", None)
    if export is None:
        raise ConfigError(f"The {args.kind!r} model has no export_config(); it cannot be saved natively.")
    config = export()
    save_pretrained(model, out, config, overwrite=args.overwrite)
    n_params = sum(p.numel() for p in model.parameters())
    if args.json:
        console.print_json({"kind": args.kind, "checkpoint": str(src), "output": str(out), "parameters": n_params})
    else:
        console.stdout().print(f"converted {src.name} ({args.kind}, {n_params:,} parameters) -> {out}")
    return 0
