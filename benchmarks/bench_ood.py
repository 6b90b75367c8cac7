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
* ``clean``: the share of the val images' clean GT flagged;
* with ``--new-photos ROOT``: ``known_false_alarm_new_photos`` and ``catch_new_photos`` (per type
  and mean), the shares flagged among the known and held-out types' images of a root made from
  *other* photos (for example the mini set's train split, or ``data mini --synthetic`` scenes).
  This is what a user's own photo meets: an embedding that tells photos apart flags them for their
  content (docs/daclip.md).

The calibration leaves each val image's whole source photo out of its reference when the file
names tell the photo (``--leave-out photo``, the default, as ``classify --calibrate`` and ``train
daclip`` do for ``data mini`` sets; ``--leave-out image`` scores each image without itself only).
The held-out images of the same photos then stay near their photo's known images in the bank: read
their ``catch`` under ``--leave-out image``, and the catch on new photos with ``--new-photos``.

Example (the tiny stand-in; docs/daclip.md gives the figures)::

    daclip-kit data mini --out /tmp/h2mini --size 64 --per-type 8 --val-per-type 4 --composed 0
    # a root with only the known types' CSV rows, trained on: see docs/daclip.md
    daclip-kit data mini --synthetic --out /tmp/scenes --size 64 --per-type 1 --val-per-type 12 --composed 0
    python benchmarks/bench_ood.py --weights RUN/checkpoints/step-00000500/daclip --root /tmp/h2mini \\
        --new-photos /tmp/scenes --out ood.json
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import torch

from daclip_kit import create_embedder
from daclip_kit.core.ood import (
    KNN,
    MAHALANOBIS,
    MAX_PROB,
    calibrate_embeddings,
    flag_rate,
    quantile,
    reference_scores,
)
from daclip_kit.data.mini import source_photos
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
        self.last_k: int | None = None

    @property
    def name(self) -> str:
        if self.statistic != KNN:
            return self.statistic
        return f"knn(k={self.k})" if self.k is not None else "knn(default k)"

    def fit(self, val: torch.Tensor, classes: list[str], reference: torch.Tensor | None,
            reference_classes: list[str], false_alarm: float,
            groups: list[str] | None = None) -> tuple[float, list[float], Any]:
        """``(threshold, honest val scores, scorer of new embeddings)``; higher scores are more unknown.
        ``groups``: the val images' source photos, as ``classify --calibrate`` takes them."""
        if self.statistic == MAX_PROB:
            scores = self._neg_max_prob(val)
            return quantile(scores, 1 - false_alarm), scores, self._neg_max_prob
        cal = calibrate_embeddings(val, classes, ["x"], statistic=self.statistic, reference=reference,
                                   reference_classes=reference_classes, k=self.k, false_alarm=false_alarm,
                                   groups=groups)
        honest, _ = reference_scores(self.statistic, val, classes, reference=reference,
                                     reference_classes=reference_classes, k=cal.k,
                                     groups=groups if cal.val_groups else None)
        self.last_k = cal.k
        return cal.threshold, honest, cal.scores

    def _neg_max_prob(self, x: torch.Tensor) -> list[float]:
        probs = (self.scale * torch.nn.functional.normalize(x, dim=-1) @ self.text.T).softmax(dim=-1)
        return (-probs.max(dim=-1).values).tolist()


def new_photo_rates(score: Any, threshold: float, known: torch.Tensor | None,
                    held: dict[str, torch.Tensor]) -> dict[str, Any]:
    """Flag rates on the ``--new-photos`` images: known types (false alarms) and held-out ones."""
    if known is None:
        return {"known_false_alarm_new_photos": None, "catch_new_photos": None}
    catch = {t: round(flag_rate(score(x), threshold, higher=True), 4) for t, x in held.items() if len(x)}
    mean = round(sum(catch.values()) / len(catch), 4) if catch else None
    return {"known_false_alarm_new_photos": round(flag_rate(score(known), threshold, higher=True), 4),
            "catch_new_photos": {**catch, "mean": mean} if catch else None}


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
    parser.add_argument("--new-photos", type=Path, default=None, metavar="ROOT",
                        help="a data root whose images come from photos not in --root's val split: its known "
                        "types measure the false alarm on new photos, its held-out types the catch there")
    parser.add_argument("--new-photos-split", default="val", help="the split of --new-photos read (default val)")
    parser.add_argument("--leave-out", default="photo", choices=("photo", "image"),
                        help="what a val image is scored without when calibrating: its whole source photo where "
                        "the names tell it (default, as classify --calibrate and train daclip), or only itself")
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
        groups = source_photos([p for t in known for p in val_paths[t]]) if args.leave_out == "photo" else None
        val = embeddings(emb, [p for t in known for p in val_paths[t]])
        clean = embeddings(emb, [p.parent.parent / "GT" / p.name for t in known for p in val_paths[t]])
        splits = args.unknown_splits.split(",")
        held_paths = lq_images(args.root, splits, unknown)
        held = {t: embeddings(emb, ps) for t, ps in held_paths.items()}
        new_known = new_held = None
        if args.new_photos is not None:
            new_paths = lq_images(args.new_photos, [args.new_photos_split], known)
            new_known = embeddings(emb, [p for t in known for p in new_paths[t]])
            new_held = {t: embeddings(emb, ps)
                        for t, ps in lq_images(args.new_photos, [args.new_photos_split], unknown).items()}
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
        threshold, honest, score = sc.fit(val, classes, reference, ref_classes, args.false_alarm, groups)
        row: dict[str, Any] = {"k": sc.last_k, "threshold": round(threshold, 4),
                               "val_false_alarm": round(flag_rate(honest, threshold, higher=True), 4),
                               "clean": round(flag_rate(score(clean), threshold, higher=True), 4)}
        fold_fa: list[float] = []
        fold_catch: dict[str, list[float]] = {t: [] for t in unknown}
        for f in (0, 1):
            cal_idx = [i for i in range(len(classes)) if fold[i] != f]
            test_idx = [i for i in range(len(classes)) if fold[i] == f]
            th, _, fscore = sc.fit(val[cal_idx], [classes[i] for i in cal_idx], reference, ref_classes,
                                   args.false_alarm, [groups[i] for i in cal_idx] if groups else None)
            fold_fa.append(flag_rate(fscore(val[test_idx]), th, higher=True))
            for t in unknown:
                fold_catch[t].append(flag_rate(fscore(held[t]), th, higher=True))
        row["known_false_alarm"] = round(sum(fold_fa) / 2, 4)
        row.update(new_photo_rates(score, threshold, new_known, new_held or {}))
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
              "leave_out": args.leave_out, "val_photos": len(set(groups)) if groups else None,
              "new_photos": str(args.new_photos) if args.new_photos else None,
              "results": results}
    text_out = json.dumps(report, indent=2)
    if args.out is not None:
        args.out.write_text(text_out + "\n")
    print(text_out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
