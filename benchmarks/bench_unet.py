"""Speed of the IR-SDE conditional U-Net: one network step (whole restorations:
``benchmarks/bench_restore.py``).

Run as a script (prints a table, optionally JSON)::

    .venv/bin/python benchmarks/bench_unet.py                 # CPU, 256x256, batch 1
    .venv/bin/python benchmarks/bench_unet.py --device cuda --bf16 --batch 1 8 --json out.json

or through pytest-benchmark: ``.venv/bin/pytest benchmarks/bench_unet.py --benchmark-only``.

What is compared. The official module is not installed, so "reference" is this package's
``ConditionalUNet`` with ``use_reference_ops(True)``: the same weights executed with the
official op sequence (NCHW tensors, einsum attention with an explicit softmax, the one-token
cross-attention computed through q/k, nearest upsampling followed by a 3x3 conv, separate
element-wise ops, the ``x.clone()`` skip). Both paths are checked against the official network's
recorded outputs by ``tests/irsde``; "fast" is the default path (channels-last, fused
``scaled_dot_product_attention``, closed-form one-token cross-attention, folded linear attention,
sub-pixel upsampling). Each round runs both paths back to back on the same input in the same
process, so the ratio is robust to machine load; absolute times are not. The official figures
printed beside ours were measured on an H200 (``PERFORMANCE.md``) and are only comparable on
that machine.

Weights are random (speed does not depend on them); the universal configuration (nf 64,
ch_mult 1-2-4-8, context 512) is used unless ``--wild``.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time
from collections.abc import Callable
from contextlib import nullcontext

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import pytest
import torch

#: Official code on one H200, torch 2.11 + CUDA 13 (PERFORMANCE.md), milliseconds or seconds.
OFFICIAL_H200 = {
    "step 256x256 b1 fp32 (ms)": 24.5,
    "step 256x256 b1 bf16 (ms)": 16.0,
    "step 256x256 b8 fp32 (ms)": 39.8,
    "step 256x256 b8 bf16 (ms)": 31.8,
    "step 512x512 b1 fp32 (ms)": 45.9,
    "step 512x512 b1 bf16 (ms)": 22.6,
}


def build_unet(wild: bool = False, device: str = "cpu"):
    from daclip_kit import create_backbone

    torch.manual_seed(0)
    return create_backbone("irsde-unet-wild" if wild else "irsde-unet").to(device).eval()


def _sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def _inputs(net, batch: int, size: int, device: str, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(batch, 3, size, size, generator=g).to(device)
    lq = torch.rand(batch, 3, size, size, generator=g).to(device)
    d = net.config.context_dim or 1
    deg = torch.randn(batch, d, generator=g).to(device) if net.config.use_degra_context else None
    content = torch.randn(batch, d, generator=g).to(device) if net.config.use_image_context else None
    return x, lq, deg, content


def compare(fns: dict[str, Callable[[], object]], rounds: int, device: str, warmup: int = 1) -> dict[str, list[float]]:
    """Run every function ``rounds`` times, interleaved, and return per-round seconds."""
    for fn in fns.values():
        for _ in range(warmup):
            fn()
    _sync(device)
    times: dict[str, list[float]] = {name: [] for name in fns}
    for _ in range(rounds):
        for name, fn in fns.items():
            _sync(device)
            start = time.perf_counter()
            fn()
            _sync(device)
            times[name].append(time.perf_counter() - start)
    return times


def step_benchmark(net, batch: int, size: int, device: str, rounds: int, dtype: str = "fp32") -> dict:
    """One U-Net evaluation, fast vs reference path, same weights and input."""
    x, lq, deg, content = _inputs(net, batch, size, device)
    autocast = (torch.autocast(device_type=device.split(":")[0], dtype=torch.bfloat16)
                if dtype == "bf16" else nullcontext())

    def run(reference: bool):
        def call():
            net.use_reference_ops(reference)
            with torch.inference_mode(), autocast:
                return net(x, lq, 50.0, degradation=deg, content=content)
        return call

    outs = {name: run(ref)().float() for name, ref in (("fast", False), ("reference", True))}
    times = compare({"fast": run(False), "reference": run(True)}, rounds, device)
    net.use_reference_ops(False)
    fast, ref = statistics.median(times["fast"]), statistics.median(times["reference"])
    return {
        "what": f"step {size}x{size} b{batch} {dtype}", "device": device, "batch": batch, "size": size,
        "dtype": dtype, "rounds": rounds, "fast_median_s": fast, "reference_median_s": ref,
        "fast_min_s": min(times["fast"]), "reference_min_s": min(times["reference"]),
        "ratio_median": fast / ref,
        "ratio_of_min": min(times["fast"]) / min(times["reference"]),
        "max_abs_diff": float((outs["fast"] - outs["reference"]).abs().max()),
    }


def _print(rows: list[dict]) -> None:
    try:
        from rich.console import Console
        from rich.table import Table
    except ImportError:  # pragma: no cover
        for r in rows:
            print(r)
        return
    table = Table(title=f"IR-SDE U-Net speed (torch {torch.__version__}, {torch.get_num_threads()} CPU threads)")
    for col in ("what", "device", "fast", "reference", "fast/ref", "check", "official H200"):
        table.add_column(col)
    for r in rows:
        unit, scale = ("ms", 1e3) if r["what"].startswith("step") else ("s", 1.0)
        key = f"{r['what']} ({unit})"
        official = OFFICIAL_H200.get(key)
        check = f"max|diff| {r['max_abs_diff']:.1e}"
        table.add_row(r["what"], r["device"], f"{r['fast_median_s'] * scale:.1f} {unit}",
                      f"{r['reference_median_s'] * scale:.1f} {unit}", f"{r['ratio_median']:.2f}", check,
                      "" if official is None else f"{official} {unit}")
    Console().print(table)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--batch", type=int, nargs="+", default=[1])
    parser.add_argument("--rounds", type=int, default=None, help="timed rounds (default 5 CPU, 20 GPU)")
    parser.add_argument("--wild", action="store_true", help="Wild-IR configuration")
    parser.add_argument("--bf16", action="store_true", help="also time bf16 autocast (GPU)")
    parser.add_argument("--json", help="write the rows to this file")
    args = parser.parse_args(argv)

    gpu = args.device.startswith("cuda")
    rounds = args.rounds or (20 if gpu else 5)
    net = build_unet(args.wild, args.device)
    if gpu:
        net = net.to(memory_format=torch.channels_last)
    dtypes = ("fp32", "bf16") if args.bf16 else ("fp32",)
    rows = [step_benchmark(net, batch, args.size, args.device, rounds, dtype)
            for batch in args.batch for dtype in dtypes]
    _print(rows)
    if args.json:
        info = {"torch": torch.__version__, "threads": torch.get_num_threads(),
                "device_name": torch.cuda.get_device_name() if gpu else "cpu"}
        with open(args.json, "w") as fh:
            json.dump({"machine": info, "rows": rows}, fh, indent=2)
    return 0


# -- pytest-benchmark ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def unet():
    return build_unet()


@pytest.mark.parametrize("path", ["fast", "reference"])
def test_unet_step_256_cpu(benchmark, unet, path):
    x, lq, deg, content = _inputs(unet, 1, 256, "cpu")
    unet.use_reference_ops(path == "reference")
    benchmark.extra_info.update({"path": path, "size": 256, "batch": 1, "threads": torch.get_num_threads()})

    def step():
        with torch.inference_mode():
            return unet(x, lq, 50.0, degradation=deg, content=content)

    out = benchmark.pedantic(step, rounds=3, warmup_rounds=1)
    unet.use_reference_ops(False)
    assert out.shape == (1, 3, 256, 256)


def test_unet_fast_step_is_faster_than_reference(unet):
    row = step_benchmark(unet, 1, 256, "cpu", rounds=3)
    assert row["max_abs_diff"] < 1e-3
    assert row["ratio_of_min"] <= 0.8, row


if __name__ == "__main__":
    raise SystemExit(main())
