"""``daclip-kit score``: PSNR, SSIM and LPIPS of restored images, or of a network run on a paired folder;
without ``--gt``, the no-reference NIQE and CLIP-IQA."""

from __future__ import annotations

import argparse
from pathlib import Path

from ..bench.spec import MetricProtocol
from ..errors import ConfigError
from . import console
from .model_args import add_model_arguments, model_overrides, nonfinite_scope


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--gt", type=Path, metavar="DIR",
                        help="folder of ground-truth images (leave out with no-reference metrics only: "
                             "--metrics niqe,clipiqa)")
    what = parser.add_mutually_exclusive_group(required=True)
    what.add_argument("--pred", type=Path, metavar="DIR", help="folder of restored images to score as they are")
    what.add_argument("--lq", type=Path, metavar="DIR",
                      help="folder of degraded images to restore with --model/--weights, then score")
    add_model_arguments(parser)
    parser.add_argument("--metrics", default="psnr,ssim,lpips",
                        help="comma-separated registered metrics (daclip-kit ls metrics; default psnr,ssim,lpips); "
                             "niqe and clipiqa need no --gt (clipiqa uses the DA-CLIP of --daclip-weights, else of "
                             "--weights, else daclip-vit-b-32)")
    parser.add_argument("--crop-border", type=int, default=4,
                        help="pixels removed from each side for PSNR/SSIM/NIQE (default 4, as the official test)")
    parser.add_argument("--y-channel", action="store_true", help="PSNR/SSIM on BT.601 luma instead of RGB")
    parser.add_argument("--pair-by", choices=("name", "order"), default="name",
                        help="pair images by file stem (default) or by sorted position, as the official loaders")
    parser.add_argument("--limit", type=int, help="score only the first N pairs")
    parser.add_argument("--per-image", action="store_true", help="print every image's values too")
    parser.add_argument("--no-download", action="store_true", help="never download named weights")
    parser.add_argument("--json", action="store_true", help="print JSON (metrics, per-image values, notes)")
    parser.set_defaults(func=run)


def _restorer(args: argparse.Namespace):
    """``(restore function, {model, network_weights, sampler, steps})`` of the chosen model."""
    from ..core.pipeline import per_image_generators
    from ..pipelines.build import build_pipeline

    with nonfinite_scope(args):
        built = build_pipeline(args.model, weights=args.weights, embedder_weights=args.embedder_weights,
                               device=None if args.device == "auto" else args.device, download=not args.no_download,
                               search_dirs=args.weights_dir, overrides=model_overrides(args))
    pipe, recipe = built.pipeline, built.recipe

    def restore(image):
        return pipe(image, generator=per_image_generators(args.seed, image.shape[0])).image

    about = {"model": recipe.name, "network": recipe.backbone, "network_weights": str(built.network_weights),
             "sampler": recipe.sampler or None, "steps": recipe.steps if recipe.sampler else None,
             "device": str(built.device)}
    return restore, about, built.device, built.pipeline


def _clipiqa_embedder(args: argparse.Namespace, pipeline, device) -> object:
    """The DA-CLIP CLIP-IQA runs on: the restoring pipeline's (``--lq``); else ``--daclip-weights``; else the
    one ``--weights`` names or is paired with; else the released ``daclip-vit-b-32`` (all through the one
    model resolver)."""
    from ..core.device import pick_device
    from ..embedders.daclip.provider import DaClipEmbedder
    from ..metrics.clip_quality import load_clipiqa_embedder

    embedder = getattr(pipeline, "embedder", None)
    if isinstance(embedder, DaClipEmbedder):
        return embedder
    ref = args.embedder_weights if args.embedder_weights is not None else args.weights
    if pipeline is None:
        device = pick_device(None if args.device == "auto" else args.device)
    return load_clipiqa_embedder(ref, search_dirs=args.weights_dir, device=device, download=not args.no_download)


def run(args: argparse.Namespace) -> int:
    import dataclasses

    import torch

    from ..metrics.score import score_folders

    if args.limit is not None and args.limit < 1:
        raise ConfigError(f"--limit must be at least 1, got {args.limit}.")
    if args.crop_border < 0:
        raise ConfigError(f"--crop-border must not be negative, got {args.crop_border}.")
    metrics = [m.strip() for m in args.metrics.split(",") if m.strip()]
    if not metrics:
        raise ConfigError("--metrics is empty; name at least one, e.g. --metrics psnr,ssim.")
    protocol = dataclasses.replace(MetricProtocol(), crop_border=args.crop_border, y_channel=args.y_channel)
    restore, about, device, pipeline = (None, {}, "cpu", None) if args.pred else _restorer(args)
    networks = {"clipiqa": _clipiqa_embedder(args, pipeline, device)} if "clipiqa" in metrics else {}
    with console.progress_bar(disable=args.json) as bar, torch.no_grad():
        task = bar.add_task("restoring and scoring" if restore else "scoring", total=None)
        report = score_folders(args.gt, pred=args.pred, lq=args.lq, restore=restore, metrics=metrics,
                               protocol=protocol, device=device, search_dirs=args.weights_dir, by=args.pair_by,
                               limit=args.limit, networks=networks,
                               on_image=lambda i, n, *_: bar.update(task, completed=i, total=n))
    data = {"gt": str(args.gt) if args.gt is not None else None, "inputs": str(args.pred or args.lq),
            "restored_by": about or None,
            "protocol": {"crop_border": protocol.crop_border, "y_channel": protocol.y_channel,
                         "quantize": protocol.quantize}, **report.to_dict()}
    if args.json:
        console.print_json(data, nonfinite="null")
        return 0
    out = console.stdout()
    if about:
        out.print(f"restored by {about['model']} ({about['network_weights']})", markup=False)
    if args.per_image:
        for s in report.images:
            values = ", ".join(f"{k} {v:.4f}" for k, v in s.values.items())
            out.print(f"{s.name}: {values}", markup=False)
    means = ", ".join(f"{k} {v:.4f}" for k, v in report.metrics.items() if v is not None)
    out.print(f"{len(report.images)} image(s): {means or 'no metric computed'}", markup=False)
    for note in report.notes:
        console.warning(note)
    return 0
