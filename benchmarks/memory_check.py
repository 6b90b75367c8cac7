"""Memory estimate against the measured peak of one forward pass of the universal IR-SDE U-Net.

The estimate is :meth:`RestorationPipeline.activation_memory` (a ``meta`` trace, attention counted
as the kernel PyTorch picks); the measurement is a real forward of the full-size network (random
weights) on the device:

* CUDA: ``torch.cuda.max_memory_allocated`` during the forward minus the memory allocated before
  it (weights and inputs);
* CPU: each size in a fresh process; after building the network and a small warm-up forward the
  peak resident set (``VmHWM``) is reset (``/proc/self/clear_refs``), and the measure is the peak
  during the forward minus the resident set before it. ``MALLOC_MMAP_THRESHOLD_`` makes glibc
  return every large block at once, so the resident set follows the live tensors instead of
  what the allocator keeps for later.

Usage::

    python benchmarks/memory_check.py --device cpu --sizes 128 256
    python benchmarks/memory_check.py --device cuda --sizes 1024 2048 --precision bf16 --json memory.json

Prints one row per size, ``estimate`` beside ``measured`` (GiB) and their ratio.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

NETWORK = "irsde-unet"  # the universal U-Net, full size (nf 64, ch_mult 1,2,4,8, context 512)
WARMUP = 64


def _build(device: str):
    import torch

    import daclip_kit

    torch.manual_seed(0)
    return daclip_kit.create_backbone(NETWORK).to(device).eval()


def _inputs(net, side: int, device: str):
    import torch

    x = torch.rand(1, 3, side, side, device=device)
    emb = torch.randn(1, net.context_dim, device=device)
    return x, torch.tensor([50.0], device=device), emb


def _forward(net, side: int, device: str, precision: str) -> None:
    import torch

    from daclip_kit.core.runtime import autocast

    x, t, emb = _inputs(net, side, device)
    with torch.no_grad(), autocast(precision, torch.device(device)):
        net(x, x, t, degradation=emb, content=emb)


def _status_kib(key: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1])
    raise RuntimeError(f"no {key} in /proc/self/status")


def cpu_child(side: int, precision: str) -> int:
    """Peak bytes above the resident set of one CPU forward at ``side`` (in this process)."""
    net = _build("cpu")
    _forward(net, WARMUP, "cpu", precision)  # one-time allocations (kernels, caches) happen here
    Path("/proc/self/clear_refs").write_text("5")  # reset VmHWM to the current resident set
    before = _status_kib("VmRSS")
    _forward(net, side, "cpu", precision)
    return (_status_kib("VmHWM") - before) * 1024


def measure_cpu(side: int, precision: str = "fp32", timeout: float = 300) -> int:
    """:func:`cpu_child` in a fresh process (so nothing earlier hides the peak)."""
    env = {**os.environ, "MALLOC_MMAP_THRESHOLD_": "65536", "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "1")}
    done = subprocess.run([sys.executable, __file__, "--child", str(side), "--precision", precision],
                          capture_output=True, text=True, env=env, timeout=timeout)
    if done.returncode != 0:
        raise RuntimeError(f"measuring {side}px failed: {done.stderr[-2000:]}")
    return int(done.stdout.strip().splitlines()[-1])


def measure_cuda(net, side: int, precision: str) -> int:
    import torch

    x, t, emb = _inputs(net, side, "cuda")
    torch.cuda.synchronize()
    base = torch.cuda.memory_allocated()
    torch.cuda.reset_peak_memory_stats()
    from daclip_kit.core.runtime import autocast

    with torch.no_grad(), autocast(precision, torch.device("cuda")):
        net(x, x, t, degradation=emb, content=emb)
    torch.cuda.synchronize()
    return torch.cuda.max_memory_allocated() - base


def estimate(net, side: int, precision: str) -> int:
    """The pipeline's estimate of the network's forward at ``side`` (no diffusion state)."""
    import daclip_kit
    from daclip_kit.core.pipeline import RestorationPipeline

    pipe = RestorationPipeline(denoiser=net, sampler=daclip_kit.create_sampler("irsde"))
    return pipe.activation_memory(1, side, side, precision)


def compare(device: str, sizes: list[int], precision: str = "fp32") -> list[dict]:
    """``[{side, estimate_gib, measured_gib, ratio}]`` for each size."""
    net = _build(device if device == "cuda" else "cpu")
    rows = []
    for side in sizes:
        est = estimate(net, side, precision)
        measured = measure_cuda(net, side, precision) if device == "cuda" else measure_cpu(side, precision)
        rows.append({"device": device, "precision": precision, "side": side, "estimate_gib": est / 2**30,
                     "measured_gib": measured / 2**30, "ratio": est / max(measured, 1)})
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", default="cpu", choices=("cpu", "cuda"))
    parser.add_argument("--sizes", type=int, nargs="+", default=[128, 256])
    parser.add_argument("--precision", default="fp32", choices=("fp32", "bf16", "fp16"))
    parser.add_argument("--json", type=Path, help="also write the rows here")
    parser.add_argument("--child", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child is not None:
        print(cpu_child(args.child, args.precision))
        return
    rows = compare(args.device, args.sizes, args.precision)
    for r in rows:
        print(f"{r['device']} {r['precision']} {r['side']}x{r['side']}: estimate {r['estimate_gib']:.3f} GiB, "
              f"measured {r['measured_gib']:.3f} GiB, ratio {r['ratio']:.2f}")
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2) + "\n")


if __name__ == "__main__":
    main()
