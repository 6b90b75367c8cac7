"""Memory estimate against the measured peak of one forward pass (or, with ``--train``, one
training step: forward and backward) of the universal IR-SDE U-Net.

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

With ``--train`` the estimate is :func:`daclip_kit.ops.memory.peak_step_bytes` (what autograd
keeps, then the backward pass with the parameter gradients it allocates) and the measure is one
``loss.backward()`` of a mean absolute output with the gradients freed before.

Usage::

    python benchmarks/memory_check.py --device cpu --sizes 128 256
    python benchmarks/memory_check.py --device cpu --train --sizes 64 96
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


def _forward(net, side: int, device: str, precision: str, train: bool = False) -> None:
    import torch

    from daclip_kit.core.runtime import autocast

    x, t, emb = _inputs(net, side, device)
    with torch.set_grad_enabled(train), autocast(precision, torch.device(device)):
        out = net(x, x, t, degradation=emb, content=emb)
    if train:
        out.float().abs().mean().backward()
        net.zero_grad(set_to_none=True)


def _status_kib(key: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1])
    raise RuntimeError(f"no {key} in /proc/self/status")


def cpu_child(side: int, precision: str, train: bool = False) -> int:
    """Peak bytes above the resident set of one CPU forward (or training step) at ``side`` (in
    this process)."""
    net = _build("cpu")
    if train:
        net.train()
    _forward(net, WARMUP, "cpu", precision, train)  # one-time allocations (kernels, caches) happen here
    Path("/proc/self/clear_refs").write_text("5")  # reset VmHWM to the current resident set
    before = _status_kib("VmRSS")
    _forward(net, side, "cpu", precision, train)
    return (_status_kib("VmHWM") - before) * 1024


def measure_cpu(side: int, precision: str = "fp32", train: bool = False, timeout: float = 300) -> int:
    """:func:`cpu_child` in a fresh process (so nothing earlier hides the peak)."""
    env = {**os.environ, "MALLOC_MMAP_THRESHOLD_": "65536", "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "1")}
    cmd = [sys.executable, __file__, "--child", str(side), "--precision", precision, *(["--train"] if train else [])]
    done = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=timeout)
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


def estimate(net, side: int, precision: str, train: bool = False) -> int:
    """The pipeline's estimate of the network's forward at ``side`` (no diffusion state), or with
    ``train`` the traced training step's peak (gradients included)."""
    import daclip_kit
    from daclip_kit.core.pipeline import RestorationPipeline
    from daclip_kit.ops.memory import COMPUTE_DTYPES, peak_step_bytes

    if train:
        x, t, emb = _inputs(net, side, "meta")
        device = next(net.parameters()).device
        _, step = peak_step_bytes(net, (x, x, t), {"degradation": emb, "content": emb}, device=device,
                                  dtype=COMPUTE_DTYPES[precision], loss=lambda out: out.float().abs().mean())
        return step
    pipe = RestorationPipeline(denoiser=net, sampler=daclip_kit.create_sampler("irsde"))
    return pipe.activation_memory(1, side, side, precision)


def compare(device: str, sizes: list[int], precision: str = "fp32", train: bool = False) -> list[dict]:
    """``[{side, estimate_gib, measured_gib, ratio}]`` for each size."""
    net = _build(device if device == "cuda" else "cpu")
    if train:
        net.train()
    rows = []
    for side in sizes:
        est = estimate(net, side, precision, train)
        measured = measure_cuda(net, side, precision) if device == "cuda" else measure_cpu(side, precision, train)
        rows.append({"device": device, "precision": precision, "side": side, "train": train,
                     "estimate_gib": est / 2**30, "measured_gib": measured / 2**30, "ratio": est / max(measured, 1)})
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", default="cpu", choices=("cpu", "cuda"))
    parser.add_argument("--sizes", type=int, nargs="+", default=[128, 256])
    parser.add_argument("--precision", default="fp32", choices=("fp32", "bf16", "fp16"))
    parser.add_argument("--train", action="store_true", help="a training step (CPU only) instead of a forward")
    parser.add_argument("--json", type=Path, help="also write the rows here")
    parser.add_argument("--child", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child is not None:
        print(cpu_child(args.child, args.precision, args.train))
        return
    if args.train and args.device != "cpu":
        parser.error("--train is measured on the CPU only")
    rows = compare(args.device, args.sizes, args.precision, args.train)
    for r in rows:
        what = "training step" if r["train"] else "forward"
        print(f"{r['device']} {r['precision']} {what} {r['side']}x{r['side']}: estimate {r['estimate_gib']:.3f} GiB, "
              f"measured {r['measured_gib']:.3f} GiB, ratio {r['ratio']:.2f}")
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2) + "\n")


if __name__ == "__main__":
    main()
