"""Sampler quality study: the 100-step posterior against MRS, Heun and Euler at 5, 10 and 20 network
evaluations (NFE), on an IR-SDE network trained with ``daclip-kit train``. CPU and offline.

Run::

    # a trained network (and its DA-CLIP, if the network is conditioned) and paired val images
    HF_HUB_OFFLINE=1 python benchmarks/bench_samplers.py --network RUN/checkpoints/step-N/network-ema \\
        --embedder DACLIP_RUN/checkpoints/step-M/daclip --data-root /tmp/mini --types noisy --json study.json

    # or let it train the tiny IR-SDE of the learning check first (benchmarks/bench_learning.py)
    HF_HUB_OFFLINE=1 python benchmarks/bench_samplers.py --train --minutes 10 --json study.json

Every setting restores the same images with the same network and per-image seed; the table gives
PSNR and SSIM against the ground truth (official protocol: uint8, 4-pixel border crop), the PSNR
of each output against the 100-step posterior output of the same image (how close a fast sampler
comes to the official sampler), and the seconds per image. Settings (``steps`` = NFE for all):

* ``posterior``: the official DA-CLIP sampler (``irsde``, ``mode="posterior"``), 100 NFE as
  trained, and strided at each NFE;
* ``mrs-ode``: MR Sampler, the paper's default (probability-flow ODE, data prediction, order 2);
* ``mrs-sde``: MR Sampler on the reverse SDE (data prediction, order 2);
* ``heun-sde``, ``heun-ode``: Heun's method (the MRS paper's baseline);
* ``euler-sde``: Euler-Maruyama on the reverse SDE (``irsde``, ``mode="sde"``; the IR-SDE paper's
  sampler, the MRS paper's Euler baseline).

The network's SDE (``max_sigma``, ``T``, ``schedule``, ``eps``) is the one stored in its native
folder by ``daclip-kit train``; every sampler is built with it.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import sys
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import torch

REPO = Path(__file__).resolve().parents[1]

#: (label, sampler, options); each runs at every ``--nfe`` except ``posterior-100``.
FAST = (
    ("posterior", "irsde", {"mode": "posterior"}),
    ("mrs-ode", "mrs", {"solver_type": "ode"}),
    ("mrs-sde", "mrs", {"solver_type": "sde"}),
    ("heun-sde", "heun", {"solver_type": "sde"}),
    ("heun-ode", "heun", {"solver_type": "ode"}),
    ("euler-sde", "irsde", {"mode": "sde"}),
)
SDE_KEYS = ("max_sigma", "T", "schedule", "eps")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--network", type=Path, help="native folder of a trained IR-SDE network (network-ema)")
    p.add_argument("--embedder", type=Path, help="DA-CLIP folder, for a conditioned network")
    p.add_argument("--data-root", type=Path, help="universal layout: <root>/val/<type>/{LQ,GT}")
    p.add_argument("--types", default="noisy", help="comma-separated val folders (default noisy)")
    p.add_argument("--limit", type=int, default=None, help="images per type (default all)")
    p.add_argument("--nfe", type=int, nargs="+", default=[5, 10, 20], help="NFE of the fast settings")
    p.add_argument("--reference-steps", type=int, default=100, help="NFE of the reference posterior (default 100)")
    p.add_argument("--train", action="store_true",
                   help="first train the tiny IR-SDE of benchmarks/bench_learning.py (mini data set)")
    p.add_argument("--minutes", type=float, default=10.0, help="training budget with --train")
    p.add_argument("--work", type=Path, default=None,
                   help="new folder for --train's data and runs, kept afterwards (default: a temporary one)")
    p.add_argument("--device", default="cpu")
    p.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--json", type=Path, metavar="PATH", help="write the rows here")
    return p.parse_args(argv)


def train_tiny(args: argparse.Namespace) -> tuple[Path, Path | None, Path]:
    """Train the learning check's tiny DA-CLIP and IR-SDE (``benchmarks/bench_learning.py``, kept in
    ``--work``); return (network-ema folder, DA-CLIP folder, data root)."""
    import tempfile

    sys.path.insert(0, str(REPO / "benchmarks"))
    import bench_learning

    work = args.work or Path(tempfile.mkdtemp(prefix="bench-samplers-")) / "learning"
    out = work.parent / f"{work.name}.json"
    code = bench_learning.main(["--json", str(out), "--minutes", str(args.minutes), "--device", args.device,
                                "--work", str(work), "--threads", str(args.threads or 1)])
    report = json.loads(out.read_text())
    if code != 0:
        print(f"warning: the tiny run did not reach the learning goals: {report['irsde']}", file=sys.stderr)
    return Path(report["irsde"]["weights"]), Path(report["daclip"]["weights"]), work / "mini"


def build(network: Path, embedder: Path | None, device: str):
    """The pipeline of the trained network and its stored SDE settings."""
    from daclip_kit.errors import WeightsNotFoundError
    from daclip_kit.pipelines.build import build_pipeline
    from daclip_kit.pretrained import native_info

    info = native_info(network)
    if not info.sampler:
        raise SystemExit(f"{network} records no sampler: give a network folder written by `daclip-kit train`.")
    try:
        built = build_pipeline(info.name, weights=network, embedder_weights=embedder, device=device, download=False)
    except WeightsNotFoundError:
        if embedder is None:  # the recipe's released DA-CLIP is not here
            raise SystemExit(f"{info.name} is conditioned on DA-CLIP: pass --embedder (the DA-CLIP folder).") from None
        raise
    sde = {k: v for k, v in built.recipe.sampler_config.items() if k in SDE_KEYS}
    return built.pipeline, sde, info.name


def run_setting(pipe, sampler, steps: int, pairs, device: str, seed: int):
    """Restore every pair with ``sampler`` at ``steps`` NFE; per image (restored uint8-exact tensor, seconds)."""
    from daclip_kit.core.pipeline import per_image_generators
    from daclip_kit.io import read_image

    pipe.sampler = sampler
    outs, seconds = [], []
    for lq_path, _ in pairs:
        lq = read_image(lq_path).to(device)
        t0 = time.perf_counter()
        with torch.no_grad():
            out = pipe(lq, steps=steps, generator=per_image_generators(seed, 1)).image
        out = out.float().cpu().clamp(0, 1)
        seconds.append(time.perf_counter() - t0)
        outs.append((out * 255).round() / 255)  # what a written PNG holds
    return outs, seconds


def _finite(data):
    """``data`` with every NaN or infinite float replaced by ``None`` (valid JSON)."""
    if isinstance(data, float):
        return data if math.isfinite(data) else None
    if isinstance(data, dict):
        return {k: _finite(v) for k, v in data.items()}
    if isinstance(data, list):
        return [_finite(v) for v in data]
    return data


def main(argv: list[str] | None = None) -> int:
    from daclip_kit.bench.data import paired_images
    from daclip_kit.factory import create_sampler
    from daclip_kit.io import read_image
    from daclip_kit.metrics import psnr, ssim

    args = parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.train:
        network, embedder, data_root = train_tiny(args)
    else:
        if args.network is None or args.data_root is None:
            raise SystemExit("Give --network and --data-root (a trained network and paired val images), or --train.")
        network, embedder, data_root = args.network, args.embedder, args.data_root
    pipe, sde, name = build(network, embedder, args.device)
    pairs = [p for t in args.types.split(",") for p in paired_images(data_root, t.strip(), args.limit)]
    gts = [read_image(gt) for _, gt in pairs]

    def score(outs, reference=None):
        row = {"psnr": sum(float(psnr(o, g)) for o, g in zip(outs, gts, strict=True)) / len(outs),
               "ssim": sum(float(ssim(o, g)) for o, g in zip(outs, gts, strict=True)) / len(outs)}
        if reference is not None:
            vs = [float(psnr(o, r, crop_border=0)) for o, r in zip(outs, reference, strict=True)]
            row["psnr_vs_posterior100"] = sum(vs) / len(vs) if all(math.isfinite(v) for v in vs) else math.inf
        return row

    rows = []
    ref_outs, ref_s = run_setting(pipe, create_sampler("irsde", **sde, mode="posterior"), args.reference_steps,
                                  pairs, args.device, args.seed)
    rows.append({"setting": "posterior", "nfe": args.reference_steps, **score(ref_outs),
                 "s_per_img": sum(ref_s) / len(ref_s)})
    lq_row = score([read_image(lq) for lq, _ in pairs])
    for nfe in args.nfe:
        for label, sampler_name, options in FAST:
            sampler = create_sampler(sampler_name, **sde, **options)
            outs, secs = run_setting(pipe, sampler, nfe, pairs, args.device, args.seed)
            rows.append({"setting": label, "nfe": nfe, **score(outs, ref_outs), "s_per_img": sum(secs) / len(secs)})
            print(f"{label:10s} NFE {nfe:3d}: PSNR {rows[-1]['psnr']:.2f}  SSIM {rows[-1]['ssim']:.4f}  "
                  f"vs posterior-{args.reference_steps} {rows[-1]['psnr_vs_posterior100']:.2f} dB  "
                  f"{rows[-1]['s_per_img']:.3f} s/img", file=sys.stderr)

    header = f"{'setting':12s} {'NFE':>4s} {'PSNR':>7s} {'SSIM':>7s} {'vs post-100':>11s} {'s/img':>8s}"
    print(f"{name} ({network}), {len(pairs)} image(s) of {args.types}; LQ input: PSNR {lq_row['psnr']:.2f}, "
          f"SSIM {lq_row['ssim']:.4f}")
    print(header)
    for r in rows:
        vs = r.get("psnr_vs_posterior100")
        vs_text = "-" if vs is None else ("same" if math.isinf(vs) else f"{vs:.2f}")
        print(f"{r['setting']:12s} {r['nfe']:4d} {r['psnr']:7.2f} {r['ssim']:7.4f} {vs_text:>11s} "
              f"{r['s_per_img']:8.3f}")
    if args.json:
        result = {"network": str(network), "embedder": str(embedder) if embedder else None, "sde": sde,
                  "types": args.types, "images": len(pairs), "lq": lq_row, "rows": rows,
                  "machine": {"device": args.device, "torch": torch.__version__, "threads": torch.get_num_threads(),
                              "cpu": platform.processor() or platform.machine()}}
        args.json.write_text(json.dumps(_finite(result), indent=2, allow_nan=False))
    return 0


if __name__ == "__main__":
    sys.exit(main())
