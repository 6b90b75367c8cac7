"""Encode latency of the full DA-CLIP ViT-B-32 (random weights; speed only).

Run as a script on any device (fp32, bf16 autocast, torch.compile; median of ``--rounds`` after
warm-up, CUDA synchronised)::

    .venv/bin/python benchmarks/bench_encode.py --device cuda --batch 1 8 --precision fp32 bf16 --compile \\
        --json enc.json

or on the CPU through pytest-benchmark: ``.venv/bin/pytest benchmarks/bench_encode.py --benchmark-only``.

``embed_image`` includes the tensor preprocessing (bicubic resize of a 256x256 image to 224,
centre crop, normalisation) and both towers (controller + controlled CLIP tower).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import pytest
import torch


@pytest.fixture(scope="module")
def embedder():
    from daclip_kit.factory import create_embedder

    torch.manual_seed(0)
    return create_embedder("daclip", model="daclip_ViT-B-32", device="cpu").eval()


@pytest.mark.parametrize("batch", [1, 8])
def test_encode_image_cpu(benchmark, embedder, batch):
    images = torch.rand(batch, 3, 256, 256, generator=torch.Generator().manual_seed(batch))
    benchmark.extra_info.update({"model": "daclip_ViT-B-32", "batch": batch, "threads": torch.get_num_threads(),
                                 "device": "cpu"})

    def encode():
        with torch.inference_mode():
            return embedder.embed_image(images)

    out = benchmark.pedantic(encode, rounds=5 if batch == 1 else 3, warmup_rounds=1)
    assert out.content.shape == out.degradation.shape == (batch, 512)


def test_encode_text_cpu(benchmark, embedder):
    from daclip_kit.types import DEGRADATIONS

    def encode():
        with torch.inference_mode():
            return embedder.embed_text(list(DEGRADATIONS))

    out = benchmark.pedantic(encode, rounds=5, warmup_rounds=1)
    assert out.shape == (10, 512)


def main(argv: list[str] | None = None) -> int:
    from daclip_kit.bench.complexity import median_runtime
    from daclip_kit.core.runtime import autocast
    from daclip_kit.factory import create_embedder

    p = argparse.ArgumentParser(description="DA-CLIP ViT-B-32 image encode latency (random weights)")
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--batch", type=int, nargs="+", default=[1, 8])
    p.add_argument("--precision", nargs="+", default=["fp32", "bf16"], help="fp32, bf16, fp16 (autocast)")
    p.add_argument("--compile", action="store_true", help="also time torch.compile of the image tower")
    p.add_argument("--rounds", type=int, default=None, help="timed rounds (default 20 on CUDA, 3 on the CPU)")
    p.add_argument("--json", help="write the rows to this file")
    args = p.parse_args(argv)
    device = torch.device(args.device)
    rounds = args.rounds or (20 if device.type == "cuda" else 3)
    torch.manual_seed(0)
    emb = create_embedder("daclip", model="daclip_ViT-B-32", device=str(device)).eval()
    variants = [("eager", emb.embed_image)]
    if args.compile:
        compiled = torch.compile(emb.model.encode_image, mode="reduce-overhead" if device.type == "cuda" else None)
        variants.append(("compile", lambda x: compiled(emb.preprocess(x), control=True)))
    rows = []
    for batch in args.batch:
        images = torch.rand(batch, 3, 256, 256, generator=torch.Generator().manual_seed(batch)).to(device)
        for precision in args.precision:
            for name, fn in variants:
                def run(fn=fn, precision=precision, images=images):
                    with torch.inference_mode(), autocast(precision, device):
                        return fn(images)
                t0 = time.perf_counter()
                run()
                first = time.perf_counter() - t0
                seconds = median_runtime(run, repeats=rounds, warmup=2, device=device)
                rows.append({"batch": batch, "precision": precision, "variant": name, "ms": seconds * 1e3,
                             "ms_per_img": seconds * 1e3 / batch, "first_call_s": first})
                print(f"batch {batch:2d} {precision:5s} {name:8s} {seconds * 1e3:9.2f} ms "
                      f"({seconds * 1e3 / batch:.2f} ms/img; first call {first:.1f} s)")
    result = {"device": torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu",
              "torch": torch.__version__, "threads": torch.get_num_threads(), "rows": rows,
              "official_h200_ms": {"batch 1, fp16 autocast": 21.9}}
    if args.json:
        with open(args.json, "w") as f:
            json.dump(result, f, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
