"""How well the unknown-degradation check catches degradations a DA-CLIP never saw.

Give a DA-CLIP folder trained on some degradation types and a data root (universal layout,
``ROOT/{train,val}/<type>/{LQ,GT}``) that also holds types it was not trained on (held out). The
val LQ images of a held-out type are the unknowns; the model's own types' val images are the known
ones. Both come from the same split, so from the same photos: in the mini data set the train and
val splits use different photos, and a tiny model's degradation embedding still tells photos apart,
so unknowns from the train split would be "caught" for their content (``--unknown-splits train,val``
shows it). For each statistic (``knn`` at several ``k``, ``mahalanobis``,
and the older ``max_prob``) it reports, as JSON:

* ``threshold``, ``val_false_alarm``: the calibration on all val images (as ``classify --calibrate``
  stores it; its false alarm is measured with each val image left out of its own reference);
* ``known_false_alarm``: the share of known val images flagged when the threshold and the reference
  come from the *other* half of the val images (2-fold, averaged): an independent check of the 5%;
* per held-out type ``auroc`` (held-out vs known val scores; 1 = perfectly separated, 0.5 =
  chance) and ``catch`` (the share flagged at the calibrated threshold), ``catch_2fold`` (at the
  2-fold thresholds, averaged), and the means over the held-out types;
* ``clean``: the share of the val images' clean GT flagged.

Example (the tiny stand-in; docs/daclip.md gives the figures)::

    daclip-kit data mini --out /tmp/h2mini --size 64 --per-type 8 --val-per-type 4 --composed 0
    # a root with only the known types' CSV rows, trained on: see docs/daclip.md
    python benchmarks/bench_ood.py --weights RUN/checkpoints/step-00000500/daclip --root /tmp/h2mini \\
        --out ood.json
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import Counter
from pathlib import Path
from typing import Any

import torch

from daclip_kit import create_embedder
from daclip_kit.core.ood import (
    KNN,
    MAHALANOBIS,
    MAX_PROB,
    calibrate_embeddings,
    default_k,
    flag_rate,
    quantile,
    reference_scores,
)
from daclip_kit.data.universal import degradation_folders, scan_universal
from daclip_kit.train.calibrate import embeddings


def auroc(known: list[float], unknown: list[float]) -> float:
    """P(an unknown image scores higher than a known one), ties counted half (Mann-Whitney)."""
    if not known or not unknown:
        return float("nan")
    wins = sum((u > k) + 0.5 * (u == k) for u in unknown for k in known)
    return wins / (len(known) * len(unknown))


def lq_images(root: Path, splits: list[str], types: list[str]) -> dict[str, list[Path]]:
    out: dict[str, list[Path]] = {t: [] for t in types}
    for split in splits:
        present = [t for t in types if t in degradation_folders(root, split)]
        for name, pairs in scan_universal(root, split, present).items():
            out[name] += [Path(p.lq) for p in pairs]
    return out


class Scorer:
    """One statistic: honest val scores, a calibration, and scores of new embeddings."""

    def __init__(self, statistic: str, k: int | None, text: torch.Tensor, scale: float):
        self.statistic, self.k, self.text, self.scale = statistic, k, text, scale

    @property
    def name(self) -> str:
        if self.statistic != KNN:
            return self.statistic
        return f"knn(k={self.k})" if self.k is not None else "knn(default k)"

    def fit(self, val: torch.Tensor, classes: list[str], reference: torch.Tensor | None,
            reference_classes: list[str], false_alarm: float) -> tuple[float, list[float], Any]:
        """``(threshold, honest val scores, scorer of new embeddings)``; higher scores are more unknown."""
        if self.statistic == MAX_PROB:
            scores = self._neg_max_prob(val)
            return quantile(scores, 1 - false_alarm), scores, self._neg_max_prob
        k = self.k
        if self.statistic == KNN and k is None:
            counts = Counter([*classes, *reference_classes])
            k = default_k(len(val) + (len(reference) if reference is not None else 0), min(counts.values()))
        honest, _ = reference_scores(self.statistic, val, classes, reference=reference,
                                     reference_classes=reference_classes, k=k)
        cal = calibrate_embeddings(val, classes, ["x"], statistic=self.statistic, reference=reference,
                                   reference_classes=reference_classes, k=k, false_alarm=false_alarm)
        return cal.threshold, honest, cal.scores

    def _neg_max_prob(self, x: torch.Tensor) -> list[float]:
        probs = (self.scale * torch.nn.functional.normalize(x, dim=-1) @ self.text.T).softmax(dim=-1)
        return (-probs.max(dim=-1).values).tolist()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--weights", required=True, help="the DA-CLIP folder (trained on the known types)")
    parser.add_argument("--root", type=Path, required=True, help="data root holding known and held-out types")
    parser.add_argument("--unknown", default=None,
                        help="held-out types, comma-separated (default: the root's types not among the model's words)")
    parser.add_argument("--reference", default="none", choices=("none", "train"),
                        help="reference embeddings besides the val images: none, or the known types' train LQ images")
    parser.add_argument("--reference-root", type=Path, default=None,
                        help="where the --reference train images are (default --root; e.g. the root the model was "
                        "trained on when --root is a second, larger val set)")
    parser.add_argument("--unknown-splits", default="val",
                        help="the splits whose held-out images are scored (comma-separated; default val)")
    parser.add_argument("--k", default="1,2,3,5", help="the kNN neighbour ranks measured (comma-separated)")
    parser.add_argument("--false-alarm", type=float, default=0.05)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--out", type=Path, default=None, help="write the JSON here too")
    args = parser.parse_args(argv)

    emb = create_embedder("daclip", weights=args.weights, device=args.device).eval()
    known = list(emb.degradations)
    all_types = sorted(set(degradation_folders(args.root, "val")) | set(degradation_folders(args.root, "train")))
    unknown = args.unknown.split(",") if args.unknown else [t for t in all_types if t not in known and "+" not in t]
    if not unknown:
        parser.error("no held-out types: give --unknown or a root with types the model was not trained on")
    with torch.no_grad():
        val_paths = lq_images(args.root, ["val"], known)
        classes = [t for t in known for _ in val_paths[t]]
        val = embeddings(emb, [p for t in known for p in val_paths[t]])
        clean = embeddings(emb, [p.parent.parent / "GT" / p.name for t in known for p in val_paths[t]])
        splits = args.unknown_splits.split(",")
        held = {t: embeddings(emb, ps) for t, ps in lq_images(args.root, splits, unknown).items()}
        ref_root = args.reference_root or args.root
        ref_paths = lq_images(ref_root, ["train"], known) if args.reference == "train" else {}
        reference = embeddings(emb, [p for t in known for p in ref_paths.get(t, [])]) if ref_paths else None
        ref_classes = [t for t in known for _ in ref_paths.get(t, [])]
        text = emb.label_features(known).float().cpu()
    scale = emb.classification_scale()
    fold = [i % 2 for i in range(len(classes))]  # alternate within each type (rows are grouped by type)
    scorers = [Scorer(KNN, None, text, scale)]  # the rank calibrate_embeddings picks for the bank's size
    scorers += [Scorer(KNN, int(k), text, scale) for k in args.k.split(",") if k]
    scorers += [Scorer(MAHALANOBIS, None, text, scale), Scorer(MAX_PROB, None, text, scale)]
    results: dict[str, Any] = {}
    for sc in scorers:
        threshold, honest, score = sc.fit(val, classes, reference, ref_classes, args.false_alarm)
        chosen_k = sc.k if sc.k is not None else (default_k(len(classes) + len(ref_classes),
                                                            min(Counter([*classes, *ref_classes]).values()))
                                                  if sc.statistic == KNN else None)
        row: dict[str, Any] = {"k": chosen_k, "threshold": round(threshold, 4),
                               "val_false_alarm": round(flag_rate(honest, threshold, higher=True), 4),
                               "clean": round(flag_rate(score(clean), threshold, higher=True), 4)}
        fold_fa: list[float] = []
        fold_catch: dict[str, list[float]] = {t: [] for t in unknown}
        for f in (0, 1):
            cal_idx = [i for i in range(len(classes)) if fold[i] != f]
            test_idx = [i for i in range(len(classes)) if fold[i] == f]
            th, _, fscore = sc.fit(val[cal_idx], [classes[i] for i in cal_idx], reference, ref_classes,
                                   args.false_alarm)
            fold_fa.append(flag_rate(fscore(val[test_idx]), th, higher=True))
            for t in unknown:
                fold_catch[t].append(flag_rate(fscore(held[t]), th, higher=True))
        row["known_false_alarm"] = round(sum(fold_fa) / 2, 4)
        per_type = {}
        for t in unknown:
            s = score(held[t])
            per_type[t] = {"images": len(s), "auroc": round(auroc(honest, s), 4),
                           "catch": round(flag_rate(s, threshold, higher=True), 4),
                           "catch_2fold": round(sum(fold_catch[t]) / 2, 4)}
        row["per_type"] = per_type
        for key in ("auroc", "catch", "catch_2fold"):
            row[f"mean_{key}"] = round(sum(v[key] for v in per_type.values()) / len(per_type), 4)
        results[sc.name] = row
    report = {"model": str(args.weights), "root": str(args.root), "known": known, "unknown": unknown,
              "val_images": len(classes), "unknown_splits": splits, "reference": args.reference,
              "reference_images": len(classes) + len(ref_classes), "false_alarm_target": args.false_alarm,
              "results": results}
    text_out = json.dumps(report, indent=2)
    if args.out is not None:
        args.out.write_text(text_out + "\n")
    print(text_out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
