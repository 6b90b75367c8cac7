"""``daclip-kit push FOLDER OWNER/NAME [--private] [--revision R]``: upload a native model folder to
the Hugging Face Hub with a generated model card (:func:`daclip_kit.hub.push_folder`)."""

from __future__ import annotations

import argparse
from pathlib import Path


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("folder", type=Path,
                        help="a native model folder (config.json + model.safetensors), a training checkpoint "
                        "(OUT/checkpoints/step-N) or a run folder (its newest checkpoint)")
    parser.add_argument("repo_id", metavar="OWNER/NAME", help="the Hub model repository (created when missing)")
    parser.add_argument("--private", action="store_true", help="create the repository private")
    parser.add_argument("--revision", metavar="R", default=None,
                        help="branch to commit to (created from main when missing; default main)")
    parser.add_argument("--message", default=None, help="commit message")
    parser.add_argument("--dry-run", action="store_true",
                        help="print the model card and the files that would be uploaded; upload nothing")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..hub import model_card, plan_push, push_folder

    plan = plan_push(args.folder)
    if args.dry_run:
        print(model_card(plan, args.repo_id))
        if plan.index is not None:
            print("would upload model_index.json (the model's components)")
        for model in plan.models:
            prefix = f"{model.repo_path}/" if model.repo_path else ""
            print(f"would upload {model.local} -> {prefix}config.json, {prefix}model.safetensors")
    else:
        result = push_folder(args.folder, args.repo_id, private=args.private, revision=args.revision,
                             message=args.message)
        print(f"pushed {len(result.files)} files to {args.repo_id}: {result.url}")
        for ref in result.refs:
            print(f"load with: {ref}")
    for name in plan.skipped:
        print(f"not uploaded: {name}")
    return 0
