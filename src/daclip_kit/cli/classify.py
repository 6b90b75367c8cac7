"""``daclip-kit classify IMG...``: zero-shot degradation classification.

Cosine similarity of the image's degradation embedding (DA-CLIP) or image embedding (plain CLIP)
with the text embeddings of the labels, scaled by the model's learned logit scale, softmax.
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
    parser.add_argument("inputs", nargs="+", metavar="IMG", help="image files or folders")
    parser.add_argument("--embedder", default="daclip", help="embedding provider: daclip (default) or clip")
    parser.add_argument("--weights", "--pretrained", dest="weights", default=None,
                        help="file, native folder or weights name (daclip-kit weights list); clip also takes an "
                        "open_clip tag (default: daclip-vit-b-32; clip: clip-vit-b-32-openai, or the tag openai "
                        "for other --model)")
    parser.add_argument("--model", default=None,
                        help="daclip: bundled config (daclip_ViT-B-32, daclip_ViT-L-14); clip: open_clip model name")
    parser.add_argument("--labels", type=Path, default=None,
                        help="text file with one label per line (default: the 10 DA-CLIP degradations)")
    parser.add_argument("--top-k", type=int, default=3, help="how many labels to show per image (default 3, at least 1)")
    parser.add_argument("--allow-nonfinite", action="store_true",
                        help="load weights holding NaN or Inf and report NaN probabilities (JSON: null) instead "
                        "of failing")
    parser.add_argument("--device", default=None, help="cpu, cuda, ... (default: cuda when available)")
    parser.add_argument("--quantize-input", action="store_true",
                        help="emulate the official uint8 truncation before resizing")
    parser.add_argument("--recursive", action="store_true", help="search folders recursively")
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    parser.set_defaults(func=run)


def read_labels(path: Path | None) -> tuple[str, ...]:
    """Labels from a file (one per line, ``#`` comments and blank lines skipped) or the defaults."""
    if path is None:
        return DEGRADATIONS
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


    if args.top_k < 1:
        raise ConfigError(f"--top-k must be at least 1 (how many labels to show per image), got {args.top_k}.")
    labels = read_labels(args.labels)
    paths = list_images(args.inputs, recursive=args.recursive)
    with nonfinite_weights_allowed(args.allow_nonfinite):
        embedder = build_embedder(args).eval()
    results = []
    with torch.inference_mode(), Progress(console=console.stderr(), transient=True) as progress:
        task = progress.add_task("classifying", total=len(paths))
        text = embedder.label_features(labels)
        for path in paths:
            top = embedder.classify(read_image(path), labels, label_features=text).top_k(args.top_k)[0]
            if not all(math.isfinite(p) for _, p in top):
                if not args.allow_nonfinite:
                    raise DaclipKitError(f"Classifying {str(path)!r} gave NaN or infinite probabilities; the "
                                         "embedder's weights or the image are broken. Check them, or pass "
                                         "--allow-nonfinite to report them (JSON: null).")
                log.warning("%s: NaN or infinite probabilities (reported as %s)", path,
                            "null" if args.json else "nan")
            results.append({"image": str(path),
                            "top_k": [{"label": label, "prob": round(p, 6)} for label, p in top]})
            progress.advance(task)
    if args.json:
        console.print_json(results, nonfinite="null" if args.allow_nonfinite else "error")
        return 0
    from rich.table import Table

    table = Table(title=f"degradation ({args.embedder})")
    table.add_column("image", overflow="fold")
    table.add_column("prediction")
    table.add_column("top-k")
    for r in results:
        best = r["top_k"][0]
        table.add_row(r["image"], f"{best['label']} ({best['prob']:.1%})",
                      ", ".join(f"{t['label']} {t['prob']:.1%}" for t in r["top_k"]))
    console.stdout().print(table)
    return 0
