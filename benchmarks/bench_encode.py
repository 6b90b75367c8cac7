"""Encode latency of the full DA-CLIP ViT-B-32 on the CPU (random weights; speed only).

Run: ``.venv/bin/pytest benchmarks/bench_encode.py --benchmark-only``

``embed_image`` includes the tensor preprocessing (bicubic resize of a 256x256 image to 224,
centre crop, normalisation) and both towers (controller + controlled CLIP tower).
"""

from __future__ import annotations

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import pytest  # noqa: E402
import torch  # noqa: E402


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
