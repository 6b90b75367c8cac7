"""Learning check: does a small run of each training stage actually learn? (CPU, offline)

Run::

    HF_HUB_OFFLINE=1 python benchmarks/bench_learning.py --json learning.json [--minutes 10] [--device cpu]

What it does, through the public training API (``load_run_config`` + ``train_daclip`` /
``train_restoration``) with the tiny run files of ``examples/train`` (the README's training block):

1. builds the offline mini data set (``daclip_kit.data.mini.build_mini``: crops of the photos
   bundled with scikit-image, scikit-learn and matplotlib; the two validation photos are never
   seen in training);
2. **DA-CLIP**: trains the tiny controller (``daclip_tiny.toml``) and classifies the held-out val
   LQ images into the degradation types with the saved folder
   (``create_embedder("daclip", weights=...).classify``): ``accuracy`` vs ``chance = 1/types``;
3. **IR-SDE**: trains the tiny U-Net conditioned on that DA-CLIP on ONE degradation
   (``irsde_tiny.toml``: ``noisy``, Gaussian sigma 50) and restores the held-out val images with
   ``daclip-kit restore --weights .../network-ema`` (the EMA folder the README restores with),
   comparing PSNR (official protocol) with the LQ input's.

The JSON written with ``--json``::

    {"irsde": {"psnr_restored", "psnr_restored_raw", "psnr_lq", "gain_db", "minutes", "steps", ...},
     "daclip": {"accuracy", "chance", "minutes", "steps", ...}, "machine": {...}}

``--minutes`` is the budget of the whole check: the IR-SDE's number of steps is the run file's,
lowered when a short timing run says they would not fit (the cosine schedule always runs to its
end). The exit status is 0 when both goals are met (restored PSNR above the LQ PSNR, accuracy
above twice the chance level), else 1.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from daclip_kit.types import DEGRADATIONS

REPO = Path(__file__).resolve().parents[1]
EXAMPLES = REPO / "examples" / "train"
#: The mini set's degradation types: the ten official words, the classes of the DA-CLIP check
#: (the IR-SDE check uses noisy). The same data as the README's training block.
TYPES = DEGRADATIONS


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--json", type=Path, metavar="PATH", help="write the results here")
    p.add_argument("--minutes", type=float, default=10.0, help="budget for the whole check (default 10)")
    p.add_argument("--device", default="cpu", help="cpu, cuda, cuda:N or auto (default cpu)")
    p.add_argument("--threads", type=int, default=1,
                   help="torch threads (default 1: on a CPU shared with other jobs more threads are often slower)")
    p.add_argument("--work", type=Path, help="keep the data and runs in this (new or empty) folder")
    p.add_argument("--irsde-steps", type=int, help="IR-SDE steps (default: the run file's, fitted to the budget)")
    p.add_argument("--daclip-steps", type=int, help="DA-CLIP steps (default: the run file's)")
    p.add_argument("--per-type", type=int, default=48,
                   help="training pairs per degradation (default 48, as the README's `data mini`)")
    p.add_argument("--val-per-type", type=int, default=4, help="val pairs per degradation (default 4)")
    args = p.parse_args(argv)
    for name in ("minutes", "threads", "per_type", "val_per_type", "irsde_steps", "daclip_steps"):
        value = getattr(args, name)
        if value is not None and value <= 0:
            p.error(f"--{name.replace('_', '-')} must be positive, got {value}")
    return args


def machine_info(threads: int, device: str) -> dict:
    """What the figures were measured on."""
    import torch

    return {"cpu_count": os.cpu_count(), "threads": threads, "device": device,
            "processor": platform.processor() or platform.machine(), "torch": torch.__version__,
            "python": platform.python_version()}


def train_tiny_daclip(root: Path, out_dir: Path, device: str, steps: int | None = None):
    """Train the README's tiny DA-CLIP (``daclip_tiny``) on the mini set ``root``; the
    :class:`~daclip_kit.train.loop.TrainResult` and its run config."""
    from daclip_kit.train import load_run_config, train_daclip

    overrides = [f"data.root={root}", f"out_dir={out_dir}", f"device={device}"]
    if steps:
        overrides.append(f"max_steps={steps}")
    cfg = load_run_config("daclip", EXAMPLES / "daclip_tiny.toml", overrides)
    return train_daclip(cfg), cfg


def check_daclip(root: Path, work: Path, args: argparse.Namespace) -> dict:
    """Train the tiny DA-CLIP and classify the val LQ images."""
    import torch

    from daclip_kit import create_embedder
    from daclip_kit.data.universal import read_captions_csv
    from daclip_kit.io import read_image

    tic = time.perf_counter()
    result, cfg = train_tiny_daclip(root, work / "daclip", args.device, args.daclip_steps)
    minutes = (time.perf_counter() - tic) / 60
    folder = result.checkpoint / "daclip"

    rows = read_captions_csv(root / "daclip_val.csv")
    embedder = create_embedder("daclip", weights=str(folder), device=args.device)
    with torch.no_grad():
        images = torch.cat([read_image(root / r.filepath) for r in rows])
        guesses = [top[0][0] for top in embedder.classify(images, labels=list(TYPES)).top_k(1)]
    per_type: dict[str, list[int]] = {}
    for guess, row in zip(guesses, rows, strict=True):
        per_type.setdefault(row.degradation, []).append(int(guess == row.degradation))
    correct = sum(sum(v) for v in per_type.values())
    last_val = next((r for r in reversed(result.history) if "val_accuracy" in r), {})
    return {"accuracy": correct / len(rows), "chance": 1 / len(TYPES), "images": len(rows),
            "per_type": {k: sum(v) / len(v) for k, v in sorted(per_type.items())},
            "val_accuracy_logged": last_val.get("val_accuracy"), "steps": result.step,
            "batch": cfg.data.batch_size, "minutes": round(minutes, 2), "weights": str(folder)}


def _irsde_config(root: Path, work: Path, daclip: str, args: argparse.Namespace, name: str, steps: int | None,
                  *extra: str):
    from daclip_kit.train import load_run_config

    overrides = [f"data.root={root}", f"out_dir={work / name}", f"device={args.device}",
                 f"embedder.weights={daclip}", *extra]
    if steps is not None:
        overrides += [f"max_steps={steps}", f"save_every={steps}"]
    return load_run_config("restoration", EXAMPLES / "irsde_tiny.toml", overrides)


def fit_steps(root: Path, work: Path, daclip: str, args: argparse.Namespace, seconds: float) -> tuple[int, float]:
    """The run file's steps, or fewer if a 10-step timing run says they would not fit in ``seconds``."""
    from daclip_kit.train import train_restoration

    planned = _irsde_config(root, work, daclip, args, "timing", None).max_steps
    probe = _irsde_config(root, work, daclip, args, "timing", 12, "validation.every=0", "ema.enabled=false")
    marks: list[float] = []
    train_restoration(probe, progress=lambda step, total, record: marks.append(time.perf_counter()))
    shutil.rmtree(work / "timing", ignore_errors=True)
    per_step = (marks[-1] - marks[2]) / (len(marks) - 3)  # steady state, after the first steps
    return max(1, min(planned, int(seconds / per_step))), per_step


def check_irsde(root: Path, work: Path, daclip: str, args: argparse.Namespace, seconds: float) -> dict:
    """Train the tiny IR-SDE on noisy images and restore the val noisy images with its EMA."""
    from daclip_kit.train import train_restoration

    steps, per_step = (args.irsde_steps, None) if args.irsde_steps else fit_steps(root, work, daclip, args, seconds)
    cfg = _irsde_config(root, work, daclip, args, "irsde", steps)
    tic = time.perf_counter()
    result = train_restoration(cfg)
    minutes = (time.perf_counter() - tic) / 60

    from daclip_kit.metrics.score import score_folders

    lq_dir, gt_dir = root / "val" / "noisy" / "LQ", root / "val" / "noisy" / "GT"
    lq_scores = score_folders(gt_dir, pred=lq_dir, metrics=["psnr"])
    scores: dict[str, float] = {"lq": lq_scores.metrics["psnr"]}
    restore_minutes = 0.0
    for model in ("network-ema", "network"):
        out = work / f"restored-{model}"
        cmd = [sys.executable, "-m", "daclip_kit", "restore", str(lq_dir), "-o", str(out), "--weights",
               str(result.checkpoint / model), "--daclip-weights", daclip, "--device", args.device, "--json"]
        env = {**os.environ, "OMP_NUM_THREADS": str(args.threads)}
        tic = time.perf_counter()
        done = subprocess.run(cmd, capture_output=True, text=True, env=env, check=False)
        restore_minutes += (time.perf_counter() - tic) / 60
        if done.returncode:
            raise SystemExit(f"restore failed: {done.stderr.strip()}")
        summary = json.loads(done.stdout)
        scores[model] = score_folders(gt_dir, pred=out, metrics=["psnr"]).metrics["psnr"]
        scores["sampler_steps"] = summary["steps"]
    train_losses = [r["loss"] for r in result.history if "loss" in r]
    return {"psnr_restored": scores["network-ema"], "psnr_restored_raw": scores["network"], "psnr_lq": scores["lq"],
            "gain_db": scores["network-ema"] - scores["lq"], "degradation": "noisy", "images": len(lq_scores.images),
            "steps": result.step, "batch": cfg.data.batch_size, "patch": cfg.data.patch_size,
            "sampler": dict(cfg.sampler.options), "sampler_steps": scores["sampler_steps"],
            "seconds_per_step_timed": per_step, "loss_first": train_losses[0] if train_losses else None,
            "loss_last": train_losses[-1] if train_losses else None, "minutes": round(minutes, 2),
            "restore_minutes": round(restore_minutes, 2), "weights": str(result.checkpoint / "network-ema")}


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    import torch

    from daclip_kit.data.mini import build_mini

    torch.set_num_threads(args.threads)
    start = time.perf_counter()
    work = args.work or Path(tempfile.mkdtemp(prefix="daclip-kit-learning-"))
    if work.exists() and any(work.iterdir()):
        raise SystemExit(f"--work {work} is not empty; choose a new folder.")
    root = work / "mini"
    build_mini(root, size=64, per_type=args.per_type, val_per_type=args.val_per_type, composed=0, types=TYPES,
               seed=0, zoom=4.0)
    results: dict = {"machine": machine_info(args.threads, args.device),
                     "data": {"size": 64, "per_type": args.per_type, "val_per_type": args.val_per_type, "zoom": 4.0,
                              "types": list(TYPES)}}
    results["daclip"] = check_daclip(root, work, args)
    print(f"daclip: accuracy {results['daclip']['accuracy']:.3f} (chance {results['daclip']['chance']:.3f}) "
          f"after {results['daclip']['steps']} steps, {results['daclip']['minutes']:.1f} min", flush=True)
    left = args.minutes * 60 - (time.perf_counter() - start)
    # the IR-SDE gets what is left, less the timing run and the restores (about a tenth)
    results["irsde"] = check_irsde(root, work, results["daclip"]["weights"], args, 0.85 * left - 20)
    r = results["irsde"]
    print(f"irsde: restored {r['psnr_restored']:.2f} dB (EMA; raw {r['psnr_restored_raw']:.2f}) vs LQ "
          f"{r['psnr_lq']:.2f} dB after {r['steps']} steps, {r['minutes']:.1f} min", flush=True)
    results["minutes_total"] = round((time.perf_counter() - start) / 60, 2)
    results["goals_met"] = bool(r["psnr_restored"] > r["psnr_lq"]
                                and results["daclip"]["accuracy"] > 2 * results["daclip"]["chance"])
    if args.json:
        from daclip_kit.io import atomic_write_text

        atomic_write_text(args.json, json.dumps(results, indent=2) + "\n")
    if args.work is None:
        shutil.rmtree(work, ignore_errors=True)
    print(f"total {results['minutes_total']:.1f} min; goals met: {results['goals_met']}")
    return 0 if results["goals_met"] else 1


if __name__ == "__main__":
    sys.exit(main())
