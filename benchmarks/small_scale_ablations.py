"""Table 6 at small scale, offline on the CPU: every ablation model trained briefly on the mini data set
with its bundled run file (tiny networks), then measured by ``bench --table 6 --runs``.

Run::

    HF_HUB_OFFLINE=1 python benchmarks/small_scale_ablations.py --steps 300 --json ablations.json

What it does:

1. builds the offline mini data set with all ten degradations (``daclip_kit.data.mini.build_mini``;
   its val photos never appear in training);
2. trains the tiny DA-CLIP of ``daclip_tiny`` (the DA-CLIP rows' frozen embedder);
3. trains each Table 6 model with its own run file (``table6_nafnet``, ..., ``table6_promptir_content``:
   the same network family, loss and optimizer family as at full scale) with tiny widths, 64 px
   patches, batch 8 and ``--steps`` steps, into ``WORK/runs/<run name>``;
4. runs ``daclip-kit bench --table 6 --runs WORK/runs --data-root WORK/mini`` and prints its table.

The numbers are a small-scale measurement of this toolkit's training and evaluation path, labelled
as such: tiny networks, a few hundred steps, 64 x 64 crops of a few bundled photos. They are not
comparable with the paper's (which trained 26-68 M-parameter networks for hundreds of thousands of
steps on 52,801 pairs); LPIPS and FID show as not computed unless their feature-network weights are
in ``--weights-dir``.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")

#: The tiny settings of each network family (the run files' own settings otherwise).
TINY = {
    "nafnet": ["network.width=16", "network.enc_blk_nums=[1, 1, 1]", "network.dec_blk_nums=[1, 1, 1]",
               "network.middle_blk_num=1"],
    "restormer": ["network.dim=16", "network.num_blocks=[1, 1, 1, 1]", "network.num_refinement_blocks=1"],
    "promptir": ["network.dim=16", "network.num_blocks=[1, 1, 1, 1]", "network.num_refinement_blocks=1",
                 "network.prompt_dims=[16, 32, 64]", "network.prompt_sizes=[16, 8, 4]"],
}
RUNS = ("table6_nafnet", "table6_nafnet_degradation", "table6_nafnet_daclip", "table6_restormer", "table6_promptir",
        "table6_promptir_content")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--steps", type=int, default=300, help="training steps per model (default 300)")
    p.add_argument("--work", type=Path, help="new folder for the data, runs and report (default: temporary)")
    p.add_argument("--weights-dir", type=Path, help="folder with the LPIPS/FID feature-network weights, if any")
    p.add_argument("--threads", type=int, default=1, help="torch threads (default 1)")
    p.add_argument("--json", type=Path, metavar="PATH", help="write the results here")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    import torch
    from bench_learning import machine_info, train_tiny_daclip  # beside this script

    from daclip_kit import load_network
    from daclip_kit.data.mini import build_mini
    from daclip_kit.train import load_run_config, train_restoration

    torch.set_num_threads(args.threads)
    work = args.work or Path(tempfile.mkdtemp(prefix="daclip-kit-ablations-"))
    work.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    root = work / "mini"
    if not root.exists():
        build_mini(root, size=64, per_type=6, val_per_type=2, composed=0, seed=0)
    daclip = train_tiny_daclip(root, work / "daclip", "cpu")[0].checkpoint / "daclip"
    print(f"DA-CLIP (tiny) trained: {daclip}", flush=True)
    trained = {}
    for name in RUNS:
        network = load_run_config("restoration", name).network.name
        sets = list(TINY[network.removesuffix("-daclip")])
        if network.endswith("-daclip"):
            sets += ["network.context_dim=32", f"embedder.weights={daclip}"]
        sets += [f"data.root={root}", "data.batch_size=8", "data.patch_size=64", "data.num_workers=0",
                 "optim.warmup_steps=0", "validation.every=0", "ema.update_every=1", f"save_every={args.steps}",
                 f"max_steps={args.steps}", "log_every=50", "device=cpu",
                 f"out_dir={work / 'runs' / name.replace('_', '-')}"]
        cfg = load_run_config("restoration", name, sets)
        tic = time.perf_counter()
        result = train_restoration(cfg)
        net = load_network(network, result.checkpoint / "network-ema")
        params = sum(p.numel() for p in net.parameters())
        trained[name] = {"network": network, "steps": result.step,
                         "minutes": round((time.perf_counter() - tic) / 60, 2),
                         "loss_last": next((r["loss"] for r in reversed(result.history) if "loss" in r), None),
                         "params": params}
        print(f"{name}: {network}, {result.step} steps, {trained[name]['minutes']} min", flush=True)
    report = work / "table6.json"
    cmd = [sys.executable, "-m", "daclip_kit", "bench", "--table", "6", "--runs", str(work / "runs"),
           "--data-root", str(root), "--device", "cpu", "--json", str(report)]
    if args.weights_dir:
        cmd += ["--weights-dir", str(args.weights_dir)]
    done = subprocess.run(cmd, capture_output=True, text=True, check=False,
                          env={**os.environ, "OMP_NUM_THREADS": str(args.threads)})
    print(done.stdout)
    if done.returncode:
        print(done.stderr, file=sys.stderr)
        return done.returncode
    bench = json.loads(report.read_text())
    rows = {r["label"]: {k: v.get("ours") for k, v in r["cells"].items() if k.startswith("average/")}
            for r in bench["rows"]}
    result = {"scale": "small: tiny networks, mini data set, CPU; not comparable with the paper",
              "steps": args.steps, "trained": trained, "ours": rows,
              "minutes_total": round((time.perf_counter() - t0) / 60, 1),
              "machine": machine_info(args.threads, "cpu")}
    if args.json:
        args.json.write_text(json.dumps(result, indent=2) + "\n")
    print(f"total {result['minutes_total']} min")
    return 0


if __name__ == "__main__":
    sys.exit(main())
