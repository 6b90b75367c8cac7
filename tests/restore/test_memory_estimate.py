"""Memory estimates count what the kernels allocate (issue 20): attention as the kernel PyTorch picks
allocates it, checked against the measured peak of real CPU forwards of the universal U-Net."""

import json
import logging
import os
import subprocess
import sys
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

import daclip_kit
from daclip_kit.core.pipeline import RestorationPipeline, RestoreOptions, tile_count
from daclip_kit.ops.memory import FusedAttention, peak_activation_bytes, peak_step_bytes, sdpa_backend

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "memory_check.py"


class SelfAttention(nn.Module):
    def __init__(self, dim: int = 32, heads: int = 2, dropout: float = 0.0):
        super().__init__()
        self.qkv, self.heads, self.dropout = nn.Linear(dim, 3 * dim), heads, dropout

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, N, dim)
        b, n, d = x.shape
        q, k, v = self.qkv(x).view(b, n, 3, self.heads, d // self.heads).permute(2, 0, 3, 1, 4)
        return F.scaled_dot_product_attention(q, k, v, dropout_p=self.dropout).transpose(1, 2).reshape(b, n, d)


def test_fused_attention_holds_no_n_by_n_matrix_but_the_math_fallback_does():
    n, dim, heads = 4096, 32, 2
    matrix = heads * n * n * 4  # 128 MiB of float32 scores
    x = torch.empty(1, n, dim)
    assert sdpa_backend("cpu", torch.float32, (1, heads, n, 16), (1, heads, n, 16), (1, heads, n, 16)) == "flash"
    fused = peak_activation_bytes(SelfAttention(dim, heads).eval(), (x,))
    assert fused < matrix / 50  # qkv, output and log-sum-exp: about 1.6 MiB
    # dropout makes PyTorch take the math kernel, which materialises the scores: so does the trace
    math = peak_activation_bytes(SelfAttention(dim, heads, dropout=0.1).eval(), (x,))
    assert math > matrix
    # training: the fused kernel saves q, k, v, out and the log-sum-exp, never the scores
    forward, step = peak_step_bytes(SelfAttention(dim, heads), (x,))
    assert forward < matrix / 20 and step < matrix / 20
    mode = FusedAttention("cpu", torch.float32)
    with mode:
        SelfAttention(dim, heads)(torch.rand(1, 8, dim))
    assert mode.calls == {"flash": 1}


def test_estimate_matches_the_measured_cpu_peak_of_the_universal_unet(tmp_path):
    out = tmp_path / "memory.json"
    done = subprocess.run([sys.executable, str(SCRIPT), "--device", "cpu", "--sizes", "128", "192", "--json", str(out)],
                          capture_output=True, text=True, timeout=600,
                          env={**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1"})
    assert done.returncode == 0, done.stderr[-2000:]
    rows = json.loads(out.read_text())
    assert [r["side"] for r in rows] == [128, 192]
    for row in rows:
        assert row["measured_gib"] > 0.02, row  # a real forward was measured
        assert 0.7 <= row["ratio"] <= 1.5, row
    assert "estimate" in done.stdout and "measured" in done.stdout


def test_the_universal_unet_estimate_has_no_attention_matrix():
    net = daclip_kit.create_backbone("irsde-unet").eval()
    pipe = RestorationPipeline(denoiser=net, sampler=daclip_kit.create_sampler("irsde"))
    gib = pipe.activation_memory(1, 512, 512) / 2**30
    # 0.75 GiB without the 64x64-token score matrices (2.33 GiB with them); a real CPU forward: 0.76 GiB
    assert 0.6 < gib < 1.0


def test_the_tiling_decision_is_logged_in_one_line(caplog):
    net = daclip_kit.create_backbone("irsde-unet-plain", nf=32, ch_mult=(1, 1)).eval()
    pipe = RestorationPipeline(denoiser=net, sampler=daclip_kit.create_sampler("irsde", T=10))
    whole = pipe.estimate_memory(1, 512, 512)
    opts = RestoreOptions(max_memory=int(0.6 * whole / 0.8))
    with caplog.at_level(logging.INFO, logger="daclip_kit.core.pipeline"):
        tile = pipe.plan_tile(1, 512, 512, opts, torch.device("cpu"), "fp32")
    lines = [r.getMessage() for r in caplog.records if r.getMessage().startswith("tiling")]
    planned = pipe.estimate_memory(1, 512, 512, tile=tile)
    count = tile_count(512, tile, opts.tile_overlap) ** 2
    # the budget as given (not the fraction the plan aims at), beside what the plan and the whole image need
    assert lines == [f"tiling 512x512 in {count} tiles of {tile} px: ~{planned / 2**30:.2f} GiB planned of the "
                     f"{opts.max_memory / 2**30:.2f} GiB budget; untiled ~{whole / 2**30:.2f} GiB"]
