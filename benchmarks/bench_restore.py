"""Whole restorations: the official-equivalent eager fp32 loop against each fast setting.

Run it (prints a table; ``--json PATH`` writes the rows)::

    .venv/bin/python benchmarks/bench_restore.py --tiny                         # CPU, small random model
    .venv/bin/python benchmarks/bench_restore.py --device cpu --size 128 --steps 3
    .venv/bin/python benchmarks/bench_restore.py --device cuda --size 256 --steps 100 --batch 8 --json gpu.json
    .venv/bin/python benchmarks/bench_restore.py --device cuda --sampler mrs --steps 10

Everything runs in one process on the same random weights (speed does not depend on them), the
same input and the same per-image seed, so the ratios are robust to machine load. Settings:

* ``reference``: the official-equivalent loop: the U-Net with ``use_reference_ops(True)`` (the
  official op sequence, NCHW), fp32, eager, batch 1, the sampler stepped by its step formulas one
  call at a time (``IRSDESampler.step`` for irsde), as the official test script does;
* ``eager``: daclip-kit's default: fast ops (channels-last, SDPA, folded attention, sub-pixel
  upsampling) and the fused solver update, fp32;
* ``bf16``: the same under bf16 autocast (the state stays fp32);
* ``compile``: ``torch.compile`` (CUDA graphs on CUDA) with the precision ``auto`` picks;
* ``batch-N``: the best setting at batch ``--batch`` (images per network call).

Per setting the JSON row holds ``name``, ``s_per_img``, ``img_per_s``, ``peak_mem_bytes``
(CUDA: measured; CPU: the pipeline's estimate plus the weights, ``peak_mem_source`` says which),
``psnr_vs_reference`` (dB, same seed; ``inf`` when identical) and ``compile_s`` (the first call's
extra time).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import sys
import time
from collections.abc import Callable

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import torch

#: The official code on one H200 (shared/design/PERFORMANCE.md), seconds per 256x256 image.
OFFICIAL_H200 = {"reference 100 posterior steps, batch 1, fp32": 1.70}
SETTINGS = ("reference", "eager", "bf16", "compile", "batch")


def build(tiny: bool, device: torch.device):
    """A random universal-style U-Net (tiny: nf 32, two levels, 32-d context) and a fixed embedding."""
    import daclip_kit

    torch.manual_seed(0)
    config = {"nf": 32, "ch_mult": (1, 1, 2, 2), "context_dim": 32} if tiny else {}
    net = daclip_kit.create_backbone("irsde-unet", **config).to(device).eval()
    dim = net.config.context_dim
    g = torch.Generator().manual_seed(1)
    return net, torch.randn(1, dim, generator=g).to(device), torch.randn(1, dim, generator=g).to(device)


def reference_loop(net, sampler, lq, degradation, content, steps: int, seed: int) -> torch.Tensor:
    """The official test loop: reference ops, fp32, one sampler step formula at a time."""
    from daclip_kit.ops.padding import padded_call

    net.use_reference_ops(True)
    try:
        gen = torch.Generator().manual_seed(seed)
        solver = sampler.solver(steps)
        x = sampler.noise_state(lq, generator=gen)
        grid = getattr(solver, "grid", None)
        for k, t in enumerate(solver.timesteps):
            eps = padded_call(lambda a, b, t=t: net(a, b, float(t), degradation=degradation, content=content),
                              (x, lq), net.size_divisor, net.pad_mode)
            if grid is not None and hasattr(sampler.config, "mode"):  # irsde: the unfused official formulas
                t_prev = grid[k + 1] if k + 1 < len(grid) else 0
                z = None if sampler.config.mode == "ode" else torch.randn(x.shape, generator=gen).to(x)
                x = sampler.step(eps, grid[k], x, lq, t_prev=t_prev, noise=z).prev_sample
            else:
                x = solver.step(eps, x, lq, lambda like: torch.randn(like.shape, generator=gen).to(like))
        return x.clamp(0, 1)
    finally:
        net.use_reference_ops(False)


def timed(call: Callable[[], torch.Tensor], device: torch.device, repeats: int) -> tuple[float, float, torch.Tensor]:
    """``(first call seconds, median of the next `repeats` calls, output)``."""
    def once() -> tuple[float, torch.Tensor]:
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        t0 = time.perf_counter()
        out = call()
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        return time.perf_counter() - t0, out

    first, out = once()
    times = [once()[0] for _ in range(repeats)]
    return first, statistics.median(times) if times else first, out


def psnr(a: torch.Tensor, b: torch.Tensor) -> float:
    mse = float(((a.float() - b.float()) ** 2).mean())
    return math.inf if mse == 0 else 10 * math.log10(1 / mse)


def run(args: argparse.Namespace) -> dict:
    import daclip_kit
    from daclip_kit.core.pipeline import (
        RestorationPipeline,
        RestoreOptions,
        per_image_generators,
    )
    from daclip_kit.core.runtime import resolve_precision
    from daclip_kit.types import ImageEmbedding

    device = torch.device(args.device)
    net, deg, content = build(args.tiny, device)
    from daclip_kit.components import check_component
    from daclip_kit.config import Component

    options = dict(o.split("=", 1) for o in args.sampler_set)  # typed by the sampler's config
    sampler = daclip_kit.create_sampler(args.sampler, **check_component("samplers", Component(args.sampler, options),
                                                                        "sampler").options)
    steps = args.steps

    class Fixed(torch.nn.Module):
        def embed_image(self, images):
            b = images.shape[0]
            return ImageEmbedding(content.expand(b, -1), deg.expand(b, -1))

    pipe = RestorationPipeline(embedder=Fixed(), denoiser=net, sampler=sampler)
    lq1 = torch.rand(1, 3, args.size, args.size, generator=torch.Generator().manual_seed(2)).to(device)
    weights = sum(p.numel() * p.element_size() for p in net.parameters())
    rows = []

    def add(name: str, call, batch: int, options: RestoreOptions | None):
        if device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(device)
        first, median, out = timed(call, device, args.repeats)
        if device.type == "cuda":
            peak, source = torch.cuda.max_memory_allocated(device), "measured"
        else:
            precision = resolve_precision(options.precision, device) if options else "fp32"
            peak, source = weights + pipe.estimate_memory(batch, args.size, args.size, precision), "estimate"
        rows.append({"name": name, "batch": batch, "s_per_img": median / batch, "img_per_s": batch / median,
                     "peak_mem_bytes": int(peak), "peak_mem_source": source,
                     "psnr_vs_reference": psnr(out[:1], reference), "compile_s": max(0.0, first - median)})

    with torch.no_grad():
        _first, median, reference = timed(lambda: reference_loop(net, sampler, lq1, deg, content, steps, args.seed),
                                         device, args.repeats)
        rows.append({"name": "reference", "batch": 1, "s_per_img": median, "img_per_s": 1 / median,
                     "peak_mem_bytes": int(torch.cuda.max_memory_allocated(device)) if device.type == "cuda"
                     else int(weights + pipe.estimate_memory(1, args.size, args.size)),
                     "peak_mem_source": "measured" if device.type == "cuda" else "estimate",
                     "psnr_vs_reference": math.inf, "compile_s": 0.0})

        def restore(options: RestoreOptions, batch: int = 1):
            lq = lq1.expand(batch, -1, -1, -1).contiguous()
            return lambda: pipe(lq, generator=per_image_generators(args.seed, batch), options=options).image

        best = RestoreOptions(steps=steps)
        if "eager" in args.settings:
            add("eager", restore(best), 1, best)
        if "bf16" in args.settings:
            bf16 = RestoreOptions(steps=steps, precision="bf16")
            add("bf16", restore(bf16), 1, bf16)
        if "compile" in args.settings:
            compiled = RestoreOptions(steps=steps, precision="auto", compile=True)
            add("compile", restore(compiled), 1, compiled)
            best = compiled
        if "batch" in args.settings and args.batch > 1:
            add(f"batch-{args.batch}", restore(best, args.batch), args.batch, best)
    ref = rows[0]["s_per_img"]
    for row in rows:
        row["time_vs_reference"] = row["s_per_img"] / ref
    machine = {"torch": torch.__version__, "device": str(device),
               "device_name": torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu",
               "cpu_threads": torch.get_num_threads()}
    return {"machine": machine, "size": args.size, "steps": steps, "sampler": args.sampler,
            "tiny": args.tiny, "rows": rows, "official_h200": OFFICIAL_H200}


def _print(result: dict) -> None:
    m = result["machine"]
    print(f"restore {result['size']}x{result['size']}, {result['sampler']} {result['steps']} steps, "
          f"{'tiny' if result['tiny'] else 'universal'} U-Net; {m['device_name']}, torch {m['torch']}, "
          f"{m['cpu_threads']} CPU threads")
    print(f"{'setting':<12}{'s/img':>10}{'img/s':>10}{'vs ref':>9}{'peak MiB':>11}{'PSNR vs ref':>13}{'compile s':>11}")
    for r in result["rows"]:
        print(f"{r['name']:<12}{r['s_per_img']:>10.4f}{r['img_per_s']:>10.2f}{r['time_vs_reference']:>9.2f}"
              f"{r['peak_mem_bytes'] / 2**20:>10.0f}{'*' if r['peak_mem_source'] == 'estimate' else ' '}"
              f"{r['psnr_vs_reference']:>13.2f}{r['compile_s']:>11.1f}")
    print("(* estimated peak; CUDA peaks are measured)")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--size", type=int, default=None, help="image side (default 256; 64 with --tiny)")
    parser.add_argument("--batch", type=int, default=8, help="batch of the batched setting (default 8)")
    parser.add_argument("--steps", type=int, default=None, help="network evaluations (default 100; 4 on the CPU)")
    parser.add_argument("--sampler", default="irsde", help="irsde (posterior), mrs, heun, ...")
    parser.add_argument("--sampler-set", action="append", default=[], metavar="KEY=VALUE",
                        help="a sampler setting, e.g. --sampler-set order=1 (repeatable)")
    parser.add_argument("--tiny", action="store_true", help="a small random model (CPU, tests)")
    parser.add_argument("--repeats", type=int, default=3, help="timed runs per setting after the first")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--settings", default=",".join(SETTINGS),
                        help=f"comma-separated subset of {','.join(SETTINGS)} (reference always runs)")
    parser.add_argument("--json", help="write the result to this file")
    args = parser.parse_args(argv)
    args.settings = {s.strip() for s in args.settings.split(",") if s.strip()}
    unknown = args.settings - set(SETTINGS)
    if unknown:
        parser.error(f"unknown settings {sorted(unknown)}; choose from {', '.join(SETTINGS)}")
    args.size = args.size or (64 if args.tiny else 256)
    args.steps = args.steps or (100 if args.device.startswith("cuda") else 4)
    result = run(args)
    _print(result)
    if args.json:
        with open(args.json, "w", encoding="utf-8") as fh:
            json.dump(result, fh, indent=2, default=str)
    return 0


if __name__ == "__main__":
    sys.exit(main())
