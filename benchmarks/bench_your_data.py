"""Your data, your degradation: the path of docs/your-data.md, measured with the tiny models (CPU, offline).

Run::

    HF_HUB_OFFLINE=1 python benchmarks/bench_your_data.py --json your-data.json [--work DIR] [--scale 2]

What it does, with the documented commands (each a ``daclip-kit`` subprocess):

1. ``data mini``-style set of the ten built-in degradations (``build_mini``, 64 px);
2. stage-1 "released" models on the ten: the tiny DA-CLIP (``daclip_tiny``) and the tiny IR-SDE on
   ``noisy`` (``irsde_tiny``), standing in for ``daclip-vit-b-32`` and ``universal-ir``;
3. a new degradation given only as two folders of pairs: ``banding`` (horizontal stripes of random
   period, phase, tilt and tint, made here with numpy on the clean images of the mini set);
4. ``daclip-kit data add banding --lq ... --gt ... --out ROOT --val N`` and ``data check``;
5. ``train daclip --init-from <stage-1 run>`` and ``train restoration --init-from <stage-1 run>``
   with the fine-tuning choices of ``daclip_finetune.toml`` / ``irsde_finetune.toml`` (new_share
   0.5, warmup; DA-CLIP at half the learning rate; the tiny U-Net, far from converged after its
   short stage 1, keeps its rate) on the tiny run files; the IR-SDE fine-tune mixes the new
   degradation with the built-in one the stage-1 U-Net knows (``noisy``);
6. ``classify`` (the model's own words) and ``restore`` + PSNR before and after.

The JSON::

    {"daclip": {"accuracy_ten_before", "accuracy_ten_after", "accuracy_new", "chance", "words_after", ...},
     "irsde": {"psnr_new_lq", "psnr_new_restored", "psnr_builtin_lq", "psnr_builtin_before",
               "psnr_builtin_after", ...},
     "minutes": {...}, "machine": {...}, "settings": {...}}

``--scale`` multiplies the data and all step counts (1: the end-to-end test's scale). The exit
status is 0 when the new word is recognised above twice the chance level and the restored new
degradation scores above its LQ input.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from daclip_kit.types import DEGRADATIONS

NEW = "banding"
#: The built-in degradation the stage-1 IR-SDE learns and the fine-tune mixes in.
BUILTIN = "noisy"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--json", type=Path, metavar="PATH", help="write the results here")
    p.add_argument("--work", type=Path, help="keep the data and runs in this (new or empty) folder")
    p.add_argument("--scale", type=float, default=1.0, help="multiply data and steps (default 1: the test's scale)")
    p.add_argument("--device", default="cpu", help="cpu, cuda, ... (default cpu)")
    p.add_argument("--threads", type=int, default=1, help="torch threads per process (default 1)")
    args = p.parse_args(argv)
    if args.scale <= 0 or args.threads < 1:
        p.error("--scale and --threads must be positive")
    return args


def settings(scale: float) -> dict:
    """Data sizes and steps at ``scale`` (1: the end-to-end test)."""
    def s(n: int) -> int:
        return max(1, round(n * scale))

    return {"size": 64, "per_type": s(8), "val_per_type": s(4), "pairs": s(100), "val_pairs": s(20),
            "daclip_steps": s(300), "daclip_finetune_steps": s(150), "irsde_steps": s(300),
            "irsde_finetune_steps": s(400)}


def make_banding(gt_images: list[Path], lq_dir: Path, gt_dir: Path, seed: int = 0) -> None:
    """The user's two folders: each clean image (GT) and a banded copy (LQ) under the same name.
    Bands: ``amp * sin(2 pi (y + tilt x) / period + phase)`` per colour channel scaled by a tint,
    added to the image; ``amp`` 0.3-0.45, period 5-12 px."""
    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(seed)
    lq_dir.mkdir(parents=True)
    gt_dir.mkdir(parents=True)
    for i, src in enumerate(gt_images):
        with Image.open(src) as im:
            clean = np.asarray(im.convert("RGB"), dtype=np.float64) / 255.0
        h, w = clean.shape[:2]
        y, x = np.mgrid[0:h, 0:w].astype(np.float64)
        period, phase = rng.uniform(5, 12), rng.uniform(0, 2 * np.pi)
        tilt, amp = rng.uniform(-0.2, 0.2), rng.uniform(0.3, 0.45)
        tint = rng.uniform(0.6, 1.0, size=3)
        bands = amp * np.sin(2 * np.pi * (y + tilt * x) / period + phase)[..., None] * tint
        lq = np.clip(clean + bands, 0, 1)
        name = f"photo{i:04d}.png"
        Image.fromarray((clean * 255).round().astype(np.uint8)).save(gt_dir / name)
        Image.fromarray((lq * 255).round().astype(np.uint8)).save(lq_dir / name)


def cli(*argv: str, threads: int = 1) -> dict | list | None:
    """Run ``daclip-kit ARGV`` in a subprocess; its JSON output when ``--json`` is passed."""
    env = {**os.environ, "OMP_NUM_THREADS": str(threads), "HF_HUB_OFFLINE": "1"}
    done = subprocess.run([sys.executable, "-m", "daclip_kit", *argv], capture_output=True, text=True, env=env,
                          check=False)
    if done.returncode:
        raise SystemExit(f"daclip-kit {' '.join(argv)} failed ({done.returncode}): {done.stderr.strip()[-2000:]}")
    return json.loads(done.stdout) if "--json" in argv else None


def train(kind: str, recipe: str, out: Path, steps: int, args: argparse.Namespace, *sets: str,
          init_from: Path | None = None) -> dict:
    """``daclip-kit train KIND --config RECIPE ...``; the JSON summary (``models``: native folders)."""
    argv = ["train", kind, "--config", recipe, "--out", str(out), "--max-steps", str(steps), "--device", args.device,
            "--set", f"save_every={steps}", "--json"]
    if init_from is not None:
        argv += ["--init-from", str(init_from)]
    for s in sets:
        argv += ["--set", s]
    return cli(*argv, threads=args.threads)


def classify(folders: list[Path], weights: Path, args: argparse.Namespace) -> dict:
    """Top-1 accuracy per folder name (the truth) of ``daclip-kit classify`` with the model's own
    words (no ``--labels``: those its training recorded)."""
    rows = cli("classify", *map(str, folders), "--weights", str(weights), "--device", args.device, "--top-k", "1",
               "--json", threads=args.threads)
    hits: dict[str, list[int]] = {}
    for r in rows:
        truth = Path(r["image"]).parent.parent.name
        hits.setdefault(truth, []).append(int(r["top_k"][0]["label"] == truth))
    return {name: sum(v) / len(v) for name, v in hits.items()}


def mean_of(per: dict[str, float], names: list[str]) -> float:
    return sum(per[n] for n in names) / len(names)


def restore_psnr(lq: Path, gt: Path, out: Path, network: Path, daclip: Path, args: argparse.Namespace) -> float:
    """PSNR of ``daclip-kit restore`` of the folder ``lq`` (official protocol: ``score_folders``)."""
    from daclip_kit.metrics.score import score_folders

    cli("restore", str(lq), "-o", str(out), "--weights", str(network), "--daclip-weights", str(daclip),
        "--device", args.device, "--json", threads=args.threads)
    return score_folders(gt, pred=out, metrics=["psnr"]).metrics["psnr"]


def run_path(work: Path, args: argparse.Namespace) -> dict:
    """The whole path in ``work``; returns the results."""
    from daclip_kit.data.mini import build_mini
    from daclip_kit.metrics.score import score_folders

    cfg = settings(args.scale)
    minutes: dict[str, float] = {}
    clock = time.perf_counter()

    def lap(name: str) -> None:
        nonlocal clock
        now = time.perf_counter()
        minutes[name] = round((now - clock) / 60, 2)
        clock = now

    root = work / "universal"
    build_mini(root, size=cfg["size"], per_type=cfg["per_type"], val_per_type=cfg["val_per_type"], composed=0, seed=0)
    clean = sorted(root.glob("*/*/GT/*.png"))[: cfg["pairs"]]
    make_banding(clean, work / "user" / "lq", work / "user" / "gt")
    lap("data")

    base_daclip = train("daclip", "daclip_tiny", work / "daclip-base", cfg["daclip_steps"], args,
                        f"data.root={root}", "data.batch_size=32")["models"]["daclip"]  # its small mini set
    lap("train_daclip_base")
    base_irsde = train("restoration", "irsde_tiny", work / "irsde-base", cfg["irsde_steps"], args,
                       f"data.root={root}", f"embedder.weights={base_daclip}", "validation.every=0")
    lap("train_irsde_base")

    added = cli("data", "add", NEW, "--lq", str(work / "user" / "lq"), "--gt", str(work / "user" / "gt"),
                "--out", str(root), "--val", str(cfg["val_pairs"]), "--json")
    cli("data", "check", str(root), "--json")
    lap("data_add")

    ten = [root / "val" / d / "LQ" for d in DEGRADATIONS]
    before = classify(ten, Path(base_daclip), args)

    ft_daclip = train("daclip", "daclip_tiny", work / "daclip-finetune", cfg["daclip_finetune_steps"], args,
                      f"data.root={root}", "data.batch_size=32", "data.new_share=0.5", "optim.lr=5e-4",
                      "optim.warmup_steps=20",
                      init_from=work / "daclip-base")["models"]["daclip"]
    lap("train_daclip_finetune")
    ft_irsde = train("restoration", "irsde_tiny", work / "irsde-finetune", cfg["irsde_finetune_steps"], args,
                     f"data.root={root}", f"data.degradations={BUILTIN},{NEW}", "data.new_share=0.5",
                     "optim.warmup_steps=20", f"embedder.weights={work / 'daclip-finetune'}",
                     "validation.every=0", init_from=work / "irsde-base")
    lap("train_irsde_finetune")

    after = classify([*ten, root / "val" / NEW / "LQ"], Path(ft_daclip), args)
    lap("classify")

    def val(name: str) -> tuple[Path, Path]:
        return root / "val" / name / "LQ", root / "val" / name / "GT"

    new_lq, new_gt = val(NEW)
    b_lq, b_gt = val(BUILTIN)
    irsde = {
        "psnr_new_lq": score_folders(new_gt, pred=new_lq, metrics=["psnr"]).metrics["psnr"],
        "psnr_new_restored": restore_psnr(new_lq, new_gt, work / "restored-new",
                                          Path(ft_irsde["models"]["network-ema"]), Path(ft_daclip), args),
        "psnr_builtin_lq": score_folders(b_gt, pred=b_lq, metrics=["psnr"]).metrics["psnr"],
        "psnr_builtin_before": restore_psnr(b_lq, b_gt, work / "restored-builtin-before",
                                            Path(base_irsde["models"]["network-ema"]), Path(base_daclip), args),
        "psnr_builtin_after": restore_psnr(b_lq, b_gt, work / "restored-builtin-after",
                                           Path(ft_irsde["models"]["network-ema"]), Path(ft_daclip), args),
        "builtin": BUILTIN, "val_images_new": added["counts"]["val"],
    }
    lap("restore")
    daclip = {"accuracy_ten_before": mean_of(before, list(DEGRADATIONS)),
              "accuracy_ten_after": mean_of(after, list(DEGRADATIONS)), "accuracy_new": after[NEW],
              "chance": 1 / (len(DEGRADATIONS) + 1), "per_word_before": before, "per_word_after": after,
              "weights_before": base_daclip, "weights_after": ft_daclip}
    return {"daclip": daclip, "irsde": irsde, "minutes": minutes, "settings": cfg,
            "models": {"daclip": ft_daclip, "irsde": ft_irsde["models"]["network-ema"]}, "root": str(root)}


def machine_info(threads: int, device: str) -> dict:
    import platform

    import torch

    return {"cpu_count": os.cpu_count(), "threads": threads, "device": device,
            "processor": platform.processor() or platform.machine(), "torch": torch.__version__}


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    work = args.work or Path(tempfile.mkdtemp(prefix="daclip-kit-your-data-"))
    if work.exists() and any(work.iterdir()):
        raise SystemExit(f"--work {work} is not empty; choose a new folder.")
    work.mkdir(parents=True, exist_ok=True)
    tic = time.perf_counter()
    results = run_path(work, args)
    results["machine"] = machine_info(args.threads, args.device)
    results["minutes_total"] = round((time.perf_counter() - tic) / 60, 2)
    d, r = results["daclip"], results["irsde"]
    results["goals_met"] = bool(d["accuracy_new"] > 2 * d["chance"] and r["psnr_new_restored"] > r["psnr_new_lq"])
    print(f"DA-CLIP: ten words {d['accuracy_ten_before']:.3f} before, {d['accuracy_ten_after']:.3f} after; "
          f"{NEW} {d['accuracy_new']:.3f} (chance {d['chance']:.3f})")
    print(f"IR-SDE: {NEW} LQ {r['psnr_new_lq']:.2f} dB -> restored {r['psnr_new_restored']:.2f} dB; {BUILTIN} "
          f"LQ {r['psnr_builtin_lq']:.2f}, before {r['psnr_builtin_before']:.2f}, "
          f"after {r['psnr_builtin_after']:.2f} dB")
    print(f"total {results['minutes_total']:.1f} min; goals met: {results['goals_met']}")
    if args.json:
        from daclip_kit.io import atomic_write_text

        atomic_write_text(args.json, json.dumps(results, indent=2) + "\n")
    if args.work is None:
        shutil.rmtree(work, ignore_errors=True)
    return 0 if results["goals_met"] else 1


if __name__ == "__main__":
    sys.exit(main())
