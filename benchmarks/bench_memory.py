"""Does ``--max-memory`` bound the peak, and what does tiling cost? Whole restorations under budgets.

For each image size and each budget, one restoration runs in a fresh process through the public
path (``RestorationPipeline`` with ``max_memory=``, which plans the tiles as ``daclip-kit restore
--max-memory`` does) and its peak memory is measured:

* CPU: the peak resident set of the restore: ``VmHWM`` of ``/proc/self/status`` after resetting
  it to the current resident set (writing ``5`` to ``/proc/self/clear_refs``) just before the
  restore, minus ``VmRSS`` at that moment; where the reset is not available, a thread samples
  ``VmRSS`` every 2 ms instead (the output says which). glibc's allocator runs with its defaults,
  as it does under the CLI, so what it keeps from freed blocks counts;
* CUDA: ``torch.cuda.max_memory_allocated`` after ``reset_peak_memory_stats`` minus the memory
  allocated before the restore.

The process's memory before the restore (interpreter, torch, the loaded weights, the input) is
not part of the budget and is reported beside it. At each size one more run gets a budget the
whole image fits in (its estimate over ``BUDGET_FRACTION``, rounded up to 0.25 GiB) and is not
tiled; the tiled runs' time over its time is the tiling overhead.

Goals (exit status 1 when one is missed): peak / budget <= 1.2 for every run, and tiled time /
untiled time < 1.3 at every size where both ran.

The network: the U-Net of ``irsde_tiny.toml`` (nf 32, ch_mult 1-2-2, 32-d context: 1.54 M
parameters, random weights: memory and speed do not depend on them) conditioned by the tiny
DA-CLIP of the tests (random weights; a fixed embedding where open_clip is missing), the IR-SDE
posterior sampler (T 100) for ``--steps`` network evaluations; the input is the bundled astronaut
photo (256 px) resized to each size.

Usage::

    python benchmarks/bench_memory.py                                  # CPU: 1024 and 2048 px, 512M,1G,2G
    python benchmarks/bench_memory.py --sizes 1024 --budgets 1G --json memory.json
    python benchmarks/bench_memory.py --device cuda --json "$OUT/bench_memory.json"
"""

from __future__ import annotations

import argparse
import gc
import json
import math
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")

ROOT = Path(__file__).resolve().parents[1]
IMAGE = ROOT / "examples" / "images" / "astronaut.png"
NETWORK = {"nf": 32, "ch_mult": (1, 2, 2), "context_dim": 32}  # irsde_tiny.toml's U-Net
PEAK_GOAL = 1.2  # peak / budget
OVERHEAD_GOAL = 1.3  # tiled time / untiled time
GIB = 2**30


# -- measuring (in the child process) ----------------------------------------------------------


def _status_kib(key: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1])
    raise RuntimeError(f"no {key} in /proc/self/status")


class CpuPeak:
    """Peak resident set above the one at :meth:`start`: ``VmHWM`` reset through
    ``/proc/self/clear_refs``, or a thread sampling ``VmRSS`` where that cannot be reset."""

    def __init__(self) -> None:
        self.method = ""
        self.before = 0
        self._sampled = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        gc.collect()
        try:
            Path("/proc/self/clear_refs").write_text("5")
            reset = _status_kib("VmHWM") <= _status_kib("VmRSS") + 1024  # the reset took
        except OSError:
            reset = False
        self.before = _status_kib("VmRSS")
        if reset:
            self.method = "VmHWM after clear_refs"
            return
        self.method = "VmRSS sampled every 2 ms"
        self._sampled = self.before
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()

    def _sample(self) -> None:
        while not self._stop.wait(0.002):
            self._sampled = max(self._sampled, _status_kib("VmRSS"))

    def stop(self) -> int:
        """Peak bytes above the resident set at :meth:`start`."""
        if self._thread is not None:
            self._stop.set()
            self._thread.join()
            peak = max(self._sampled, _status_kib("VmRSS"))
        else:
            peak = _status_kib("VmHWM")
        return (peak - self.before) * 1024


def _embedder(device):
    """The tiny DA-CLIP (random weights), or a fixed 32-d embedding where open_clip is missing."""
    import torch

    import daclip_kit
    from daclip_kit.types import ImageEmbedding

    try:
        from daclip_kit.embedders.plugin import TINY_CLIP_CONFIG

        return daclip_kit.create_embedder("daclip", model_config=TINY_CLIP_CONFIG, device=str(device)), "tiny DA-CLIP"
    except (ImportError, daclip_kit.errors.DaclipKitError):
        pass
    g = torch.Generator().manual_seed(1)
    content, degradation = (torch.randn(1, NETWORK["context_dim"], generator=g).to(device) for _ in range(2))

    class Fixed(torch.nn.Module):
        def embed_image(self, images):
            b = images.shape[0]
            return ImageEmbedding(content.expand(b, -1), degradation.expand(b, -1))

    return Fixed(), "fixed embedding (open_clip missing)"


def child(spec: dict) -> dict:
    """One restoration of ``spec["side"]`` px under ``spec["budget"]`` bytes (``None``: a budget the
    whole image fits in), measured in this process."""
    import logging

    import torch
    import torch.nn.functional as F

    import daclip_kit
    from daclip_kit.core.pipeline import BUDGET_FRACTION, RestorationPipeline, RestoreOptions, tile_count
    from daclip_kit.core.runtime import resolve_precision
    from daclip_kit.io import read_image

    logging.getLogger("daclip_kit").setLevel(logging.ERROR)  # the random-weights warnings
    device = torch.device(spec["device"])
    torch.manual_seed(0)
    net = daclip_kit.create_backbone("irsde-unet", **NETWORK).to(device).eval()
    embedder, embedder_name = _embedder(device)
    pipe = RestorationPipeline(embedder=embedder, denoiser=net, sampler=daclip_kit.create_sampler("irsde"))
    side, steps = spec["side"], spec["steps"]
    precision = resolve_precision(spec["precision"], device)
    photo = read_image(IMAGE)
    lq = F.interpolate(photo, size=(side, side), mode="bicubic", align_corners=False).clamp_(0, 1).to(device)
    del photo
    need = pipe.estimate_memory(1, side, side, precision)
    budget = spec["budget"]
    if budget is None:  # the untiled run: a budget the whole image fits in
        budget = math.ceil(need / BUDGET_FRACTION / (GIB / 4)) * (GIB / 4)
        from daclip_kit.ops.memory import available_bytes

        if budget > available_bytes(device):
            return {"skipped": f"the untiled run needs a {budget / GIB:.2f} GiB budget; "
                               f"{available_bytes(device) / GIB:.2f} GiB are free"}
    budget = int(budget)
    options = RestoreOptions(steps=steps, precision=spec["precision"], max_memory=budget)
    with torch.no_grad():  # one-time allocations (kernels, caches, the embedder's first call)
        pipe(lq[..., :64, :64], options=options, generator=torch.Generator().manual_seed(0))
    generator = torch.Generator().manual_seed(0)
    if device.type == "cuda":
        torch.cuda.synchronize(device)
        gc.collect()
        before = torch.cuda.memory_allocated(device)
        torch.cuda.reset_peak_memory_stats(device)
        method = "torch.cuda.max_memory_allocated"
        cpu_seconds = None
        t0 = time.perf_counter()
        out = pipe(lq, options=options, generator=generator).image
        torch.cuda.synchronize(device)
        seconds = time.perf_counter() - t0
        peak = torch.cuda.max_memory_allocated(device) - before
        baseline = before
    else:
        meter = CpuPeak()
        meter.start()
        t0, c0 = time.perf_counter(), time.process_time()
        out = pipe(lq, options=options, generator=generator).image
        seconds, cpu_seconds = time.perf_counter() - t0, time.process_time() - c0
        peak = meter.stop()
        method, baseline = meter.method, meter.before * 1024
    assert out.shape == lq.shape and bool(torch.isfinite(out).all())
    tile = pipe.plan_tile(1, side, side, options, device, precision)  # the plan the run made (estimates cached)
    planned = pipe.estimate_memory(1, side, side, precision, tile=tile)
    return {"side": side, "budget": budget, "untiled_run": spec["budget"] is None, "tile": tile,
            "tiles": 1 if tile is None else tile_count(side, tile, spec["overlap"]) ** 2,
            "planned": planned, "untiled_estimate": need, "peak": int(peak), "peak_over_budget": peak / budget,
            "seconds": seconds, "cpu_seconds": cpu_seconds, "baseline": int(baseline), "method": method,
            "embedder": embedder_name,
            "precision": precision, "threads": torch.get_num_threads(), "torch": torch.__version__,
            "device_name": torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu",
            "parameters": sum(p.numel() for p in net.parameters())}


# -- driving (the parent process) ----------------------------------------------------------------


def run_one(spec: dict, timeout: float) -> dict:
    cmd = [sys.executable, __file__, "--child", json.dumps(spec)]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT / "src"), os.environ.get("PYTHONPATH", "")])}
    try:
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env)
    except subprocess.TimeoutExpired:
        return {**spec, "error": f"timed out after {timeout:.0f} s"}
    if done.returncode != 0:
        return {**spec, "error": done.stderr.strip()[-1500:] or f"exit {done.returncode}"}
    return json.loads(done.stdout.strip().splitlines()[-1])


def evaluate(rows: list[dict]) -> tuple[list[str], list[str]]:
    """Fill in each tiled row's ``overhead`` (its time over the untiled run's at its size);
    ``(goal lines, missed goals)``."""
    missed: list[str] = []
    untiled = {r["side"]: r for r in rows if r.get("untiled_run") and "seconds" in r}
    for r in rows:
        if "error" in r:
            missed.append(f"{r['side']} px, budget {r['budget']}: the run failed: {r['error']}")
            continue
        if "skipped" in r:
            continue
        if r["peak_over_budget"] > PEAK_GOAL:
            missed.append(f"{r['side']} px under {r['budget'] / GIB:.2f} GiB: peak {r['peak'] / GIB:.2f} GiB "
                          f"= {r['peak_over_budget']:.2f} x the budget (goal <= {PEAK_GOAL})")
        base = untiled.get(r["side"])
        if r["tile"] is not None and base is not None:
            r["overhead_wall"] = r["seconds"] / base["seconds"]
            r["overhead"] = r["overhead_wall"]
            if r.get("cpu_seconds") and base.get("cpu_seconds"):  # the CPU: the process's time, not the load's
                r["overhead_cpu"] = r["cpu_seconds"] / base["cpu_seconds"]
                r["overhead"] = r["overhead_cpu"]
            if r["overhead"] >= OVERHEAD_GOAL:
                missed.append(f"{r['side']} px in {r['tiles']} tiles of {r['tile']} px: {r['overhead']:.2f} x the "
                              f"untiled time (goal < {OVERHEAD_GOAL})")
    goals = [f"peak / budget <= {PEAK_GOAL} for every run",
             f"tiled / untiled time < {OVERHEAD_GOAL} at each size (CPU: process CPU time; CUDA: wall time)"]
    return goals, missed


def _progress(row: dict) -> str:
    if "seconds" not in row:
        return str(row.get("error") or row.get("skipped"))
    tiles = "untiled" if row["tile"] is None else f"{row['tiles']} tiles of {row['tile']} px"
    return (f"{tiles}, peak {row['peak'] / GIB:.3f} GiB of {row['budget'] / GIB:.2f} GiB, "
            f"{row['seconds']:.1f} s")


def _print(result: dict) -> None:
    rows = [r for r in result["rows"] if "seconds" in r]
    first = rows[0] if rows else {}
    print(f"bench_memory: irsde-unet nf 32, ch_mult 1-2-2, 32-d context ({first.get('parameters', 0) / 1e6:.2f} M "
          f"parameters, random weights) + {first.get('embedder', '?')}; irsde posterior, {result['steps']} step(s), "
          f"{first.get('precision', result['precision'])}; {first.get('device_name', result['device'])}, "
          f"{first.get('threads', '?')} threads, torch {first.get('torch', '?')}")
    print(f"peak: {first.get('method', '?')}, above the process before the restore (fresh process per run)")
    print(f"{'size':>6} {'budget GiB':>11} {'tiles':>10} {'planned':>8} {'peak GiB':>9} {'peak/budget':>12} "
          f"{'wall s':>8} {'cpu s':>8} {'tiled/untiled':>14} {'before GiB':>11}")
    for r in result["rows"]:
        if "seconds" not in r:
            what = r.get("error") or r.get("skipped")
            print(f"{r['side']:>6} {'untiled' if r['budget'] is None else r['budget'] / GIB:>11} -- {what}")
            continue
        tiles = "untiled" if r["tile"] is None else f"{r['tiles']} x {r['tile']}"
        overhead = "-"
        if "overhead" in r:  # the ratio the goal is on, and the other one beside it
            overhead = (f"{r['overhead_cpu']:.2f} ({r['overhead_wall']:.2f})" if "overhead_cpu" in r
                        else f"{r['overhead_wall']:.2f}")
        cpu = "-" if r.get("cpu_seconds") is None else f"{r['cpu_seconds']:.1f}"
        print(f"{r['side']:>6} {r['budget'] / GIB:>11.2f} {tiles:>10} {r['planned'] / GIB:>8.2f} "
              f"{r['peak'] / GIB:>9.3f} {r['peak_over_budget']:>12.2f} {r['seconds']:>8.1f} {cpu:>8} {overhead:>14} "
              f"{r['baseline'] / GIB:>11.2f}")
    if any("overhead_cpu" in r for r in result["rows"]):
        print("tiled/untiled: of the process CPU time (of the wall time in brackets; a shared machine's load moves it)")
    for goal in result["goals"]:
        print(f"goal: {goal}")
    for line in result["missed"]:
        print(f"MISSED: {line}")
    if not result["missed"]:
        print("all goals met")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", default="cpu", choices=("cpu", "cuda"))
    parser.add_argument("--sizes", type=int, nargs="+", default=[1024, 2048], help="image sides (default 1024 2048)")
    parser.add_argument("--budgets", default="512M,1G,2G", help="comma-separated --max-memory values (default "
                        "512M,1G,2G); an untiled run is added at each size")
    parser.add_argument("--steps", type=int, default=None,
                        help="network evaluations per restore (default 1 on the CPU, 10 on CUDA)")
    parser.add_argument("--precision", default="auto", help="fp32, bf16, fp16 or auto (bf16 on CUDA, fp32 on the CPU)")
    parser.add_argument("--no-untiled", action="store_true", help="leave out the untiled runs (no overhead figures)")
    parser.add_argument("--timeout", type=float, default=1200, help="seconds per run (default 1200)")
    parser.add_argument("--json", type=Path, help="write the result here")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        sys.path.insert(0, str(ROOT / "src"))
        print(json.dumps(child(json.loads(args.child))))
        return 0
    sys.path.insert(0, str(ROOT / "src"))
    from daclip_kit.config import parse_size

    args.steps = args.steps or (10 if args.device == "cuda" else 1)
    budgets = [parse_size(b.strip(), "--budgets") for b in args.budgets.split(",") if b.strip()]
    base = {"device": args.device, "steps": args.steps, "precision": args.precision, "overlap": 32}
    rows = []
    started = time.perf_counter()
    for side in args.sizes:
        for budget in [*budgets, *([] if args.no_untiled else [None])]:
            row = run_one({**base, "side": side, "budget": budget}, args.timeout)
            rows.append(row)
            print(f"  {side} px, budget {'untiled' if budget is None else budget / GIB}: {_progress(row)}",
                  file=sys.stderr, flush=True)
    goals, missed = evaluate(rows)
    result = {"device": args.device, "sizes": args.sizes, "budgets": budgets, "steps": args.steps,
              "precision": args.precision, "network": {"name": "irsde-unet", **NETWORK}, "sampler": "irsde",
              "rows": rows, "goals": goals, "missed": missed, "wall_s": time.perf_counter() - started}
    _print(result)
    if args.json:
        args.json.write_text(json.dumps(result, indent=2, default=str) + "\n")
    return 1 if missed else 0


if __name__ == "__main__":
    sys.exit(main())
