"""``daclip-kit classify IMG...``: zero-shot degradation classification.

Cosine similarity of the image's degradation embedding (DA-CLIP) or image embedding (plain CLIP)
with the text embeddings of the labels, scaled by the model's learned logit scale, softmax. The
labels are the model's own degradation words (recorded in its folder; the ten for the released
models) unless ``--labels`` gives others. A calibrated model flags images that look like none of
its words (``unknown_degradation``, one warning line each; :mod:`daclip_kit.core.ood`).

``daclip-kit classify --calibrate ROOT --weights MODEL [--out DIR]`` calibrates that check on
``ROOT/val`` and stores it in the model's folder (``DIR``, or the native folder ``MODEL`` itself).
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from ..checkpoint import nonfinite_weights_allowed
from ..errors import ConfigError, DaclipKitError, InputError
from ..factory import create_embedder
from ..io import list_images, read_image
from ..types import DEGRADATIONS
from . import console

log = logging.getLogger(__name__)

#: Named weights used by ``--embedder daclip`` when ``--weights`` is not given, per ``--model``.
DEFAULT_WEIGHTS = {"daclip_ViT-B-32": "daclip-vit-b-32", "daclip_ViT-L-14": "wild-daclip-vit-l-14"}


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("inputs", nargs="*", metavar="IMG", help="image files or folders")
    parser.add_argument("--embedder", default="daclip", help="embedding provider: daclip (default) or clip")
    parser.add_argument("--weights", "--pretrained", dest="weights", default=None,
                        help="file, native folder or weights name (daclip-kit weights list); clip also takes an "
                        "open_clip tag (default: daclip-vit-b-32; clip: clip-vit-b-32-openai, or the tag openai "
                        "for other --model)")
    parser.add_argument("--model", default=None,
                        help="daclip: bundled config (daclip_ViT-B-32, daclip_ViT-L-14); clip: open_clip model name")
    parser.add_argument("--labels", type=Path, default=None,
                        help="text file with one label per line (default: the model's own degradation words, "
                        "recorded in its folder; the 10 DA-CLIP degradations for the released models)")
    parser.add_argument("--top-k", type=int, default=3,
                        help="how many labels to show per image (default 3, at least 1)")
    parser.add_argument("--allow-nonfinite", action="store_true",
                        help="load weights holding NaN or Inf and report NaN probabilities (JSON: null) instead "
                        "of failing")
    parser.add_argument("--device", default=None, help="cpu, cuda, ... (default: cuda when available)")
    parser.add_argument("--quantize-input", action="store_true",
                        help="emulate the official uint8 truncation before resizing")
    parser.add_argument("--recursive", action="store_true", help="search folders recursively")
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    parser.add_argument("--calibrate", type=Path, default=None, metavar="ROOT",
                        help="instead of classifying, calibrate the unknown-degradation check on ROOT/val (universal "
                        "layout) and store it with the model: in --out, or in the native folder --weights")
    parser.add_argument("--out", type=Path, default=None, metavar="DIR",
                        help="with --calibrate: the new model folder to write (needed when --weights is a file or a "
                        "name: released files are never changed)")
    parser.add_argument("--false-alarm", type=float, default=None, metavar="RATE",
                        help="with --calibrate: share of val images flagged as unknown (default 0.05)")
    parser.add_argument("--statistic", choices=("knn", "mahalanobis", "max_prob"), default=None,
                        help="with --calibrate: the score, in DA-CLIP's degradation-embedding space: knn (default; "
                        "the distance to the k-th nearest reference embedding) or mahalanobis (to the nearest "
                        "degradation); "
                        "max_prob: the top probability (the older, weaker check)")
    parser.add_argument("--reference", default=None, metavar="SPLIT",
                        help="with --calibrate: also use the LQ images of ROOT/SPLIT (e.g. train) as reference "
                        "embeddings (default: the val images only, each scored without itself)")
    parser.add_argument("--overwrite", action="store_true", help="with --calibrate --out: replace an existing folder")
    parser.set_defaults(func=run)


def read_labels(path: Path | None, default: tuple[str, ...] = DEGRADATIONS) -> tuple[str, ...]:
    """Labels from a file (one per line, ``#`` comments and blank lines skipped) or ``default``."""
    if path is None:
        return default
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError as exc:
        raise InputError(f"Cannot read labels file {str(path)!r}: {exc}") from exc
    labels = tuple(s.strip() for s in lines if s.strip() and not s.strip().startswith("#"))
    if not labels:
        raise InputError(f"Labels file {str(path)!r} holds no labels (one per line).")
    return labels


def build_embedder(args: argparse.Namespace):

    weights = args.weights
    if weights is None and args.embedder == "daclip":
        weights = DEFAULT_WEIGHTS.get(args.model or "daclip_ViT-B-32", "daclip-vit-b-32")
    elif weights is None and args.embedder == "clip":  # never classify with random weights
        weights = "clip-vit-b-32-openai" if args.model in (None, "ViT-B-32") else "openai"
    cfg = {"weights": weights, "device": args.device, "quantize_input": args.quantize_input}
    if args.model:
        cfg["model"] = args.model
    return create_embedder(args.embedder, **cfg)


def run(args: argparse.Namespace) -> int:
    import math

    import torch
    from rich.progress import Progress

    from ..core.ood import unknown_report, warning_line

    if args.top_k < 1:
        raise ConfigError(f"--top-k must be at least 1 (how many labels to show per image), got {args.top_k}.")
    if args.calibrate is not None:
        return run_calibration(args)
    for name in ("out", "false_alarm", "statistic", "reference"):
        if getattr(args, name) is not None:
            raise ConfigError(f"--{name.replace('_', '-')} goes with --calibrate ROOT; drop it to classify images.")
    if not args.inputs:
        raise ConfigError("Give the images to classify (files or folders), or --calibrate ROOT.")
    paths = list_images(args.inputs, recursive=args.recursive)
    with nonfinite_weights_allowed(args.allow_nonfinite):
        embedder = build_embedder(args).eval()
    labels = read_labels(args.labels, tuple(embedder.degradations))
    calibration = embedder.ood_calibration
    results = []
    with torch.inference_mode(), Progress(console=console.stderr(), transient=True) as progress:
        task = progress.add_task("classifying", total=len(paths))
        text = embedder.label_features(labels)
        for path in paths:
            result = embedder.classify(read_image(path), labels, label_features=text)
            top = result.top_k(args.top_k)[0]
            if not all(math.isfinite(p) for _, p in top):
                if not args.allow_nonfinite:
                    raise DaclipKitError(f"Classifying {str(path)!r} gave NaN or infinite probabilities; the "
                                         "embedder's weights or the image are broken. Check them, or pass "
                                         "--allow-nonfinite to report them (JSON: null).")
                log.warning("%s: NaN or infinite probabilities (reported as %s)", path,
                            "null" if args.json else "nan")
            embedding = result.embeddings[0] if result.embeddings is not None else None
            ood = unknown_report(result.probs[0].tolist(), labels, calibration, embedding)
            if ood["unknown_degradation"]:
                console.warning(warning_line(str(path), ood))
            results.append({"image": str(path),
                            "top_k": [{"label": label, "prob": round(p, 6)} for label, p in top], **ood})
            progress.advance(task)
    if args.json:
        console.print_json(results, nonfinite="null" if args.allow_nonfinite else "error")
        return 0
    from rich.table import Table

    folder, names = _shown_names([r["image"] for r in results])
    table = Table(title=f"degradation ({args.embedder})", caption=f"images in {folder}" if folder else None)
    table.add_column("image", overflow="fold")
    table.add_column("prediction")
    table.add_column("top-k")
    for r, name in zip(results, names, strict=True):
        best = r["top_k"][0]
        unknown = ", unknown degradation" if r["unknown_degradation"] else ""
        table.add_row(name, f"{best['label']} ({best['prob']:.1%}){unknown}",
                      ", ".join(f"{t['label']} {t['prob']:.1%}" for t in r["top_k"]))
    console.stdout().print(table)
    return 0


def _shown_names(images: list[str]) -> tuple[str | None, list[str]]:
    """The table's image column: names relative to the one folder all images share (and that folder),
    so a narrow terminal folds the folder into the caption instead of splitting every file name."""
    import os

    parents = {os.path.dirname(image) for image in images}
    if len(images) < 2 or len(parents) != 1 or not next(iter(parents)):
        return None, list(images)
    return parents.pop(), [os.path.basename(image) for image in images]


def run_calibration(args: argparse.Namespace) -> int:
    """``--calibrate ROOT``: measure the val set, write the calibrated model folder, print the figures."""
    from ..core.ood import DEFAULT_FALSE_ALARM, DEFAULT_STATISTIC
    from ..pretrained import is_native_folder
    from ..train.calibrate import calibrate_embedder, write_calibrated

    if args.inputs:
        raise ConfigError("--calibrate ROOT takes no images; classify them in a second call.")
    if args.embedder != "daclip":
        raise ConfigError(f"--calibrate stores the calibration in a DA-CLIP folder; --embedder {args.embedder} "
                          "has none.")
    if args.labels is not None:
        raise ConfigError("--calibrate uses the model's own degradation words; drop --labels.")
    if args.weights is None:
        raise ConfigError("--calibrate needs --weights MODEL (a native folder, a file or a weights name).")
    native = is_native_folder(args.weights)
    if args.out is None and not native:
        raise ConfigError(f"--weights {args.weights} is not a native model folder, so it is not changed; give "
                          "--out DIR for the calibrated copy.")
    rate = DEFAULT_FALSE_ALARM if args.false_alarm is None else args.false_alarm
    if not 0.0 < rate < 1.0:
        raise ConfigError(f"--false-alarm must be between 0 and 1 (a share of val images), got {rate}.")
    embedder = build_embedder(args).eval()
    statistic = getattr(args, "statistic", None) or DEFAULT_STATISTIC
    calibration = calibrate_embedder(embedder, args.calibrate, false_alarm=rate, statistic=statistic,
                                     reference=getattr(args, "reference", None))
    out = args.out if args.out is not None else Path(args.weights)
    write_calibrated(embedder.model, calibration, out, overwrite=args.overwrite or args.out is None)
    report = {"model": str(out), **calibration.to_dict()}
    if args.json:
        console.print_json(report)
    else:
        detection = ", ".join(f"{k}: {v:.1%}" for k, v in calibration.detection.items())
        console.stdout().print(
            f"calibrated {out}: threshold {calibration.threshold:.4f} on the {calibration.description}; flags "
            f"{calibration.val_false_alarm:.1%} of {calibration.val_images} val images"
            + (f" (each scored without its photo's, {calibration.val_groups} groups)" if calibration.val_groups else "")
            + (f"; flags {detection}" if detection else ""))
    return 0
