"""benchmarks/bench_samplers.py: every sampler setting on a network folder written as training writes it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import daclip_kit
from daclip_kit.data.mini import build_mini

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "bench_samplers.py"


def test_the_study_runs_every_setting_at_every_nfe(tmp_path):
    build_mini(tmp_path / "mini", size=32, per_type=1, val_per_type=2, composed=0, types=("noisy",), seed=0)
    net = daclip_kit.create_backbone("irsde-unet-plain", nf=32, ch_mult=(1, 1))
    sde = {"max_sigma": 50, "T": 20, "schedule": "cosine", "eps": 0.005}
    daclip_kit.save_network(net, tmp_path / "net", name="irsde-unet-plain", sampler={"name": "irsde", "config": sde})
    out = tmp_path / "study.json"
    cmd = [sys.executable, str(SCRIPT), "--network", str(tmp_path / "net"), "--data-root", str(tmp_path / "mini"),
           "--types", "noisy", "--nfe", "2", "4", "--reference-steps", "20", "--threads", "1", "--json", str(out)]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=600, env={**os.environ, "HF_HUB_OFFLINE": "1"})
    assert done.returncode == 0, done.stderr[-2000:]
    result = json.loads(out.read_text())
    assert result["sde"] == sde and result["images"] == 2
    rows = {(r["setting"], r["nfe"]): r for r in result["rows"]}
    labels = ("posterior", "mrs-ode", "mrs-sde", "heun-sde", "heun-ode", "euler-sde")
    assert set(rows) == {("posterior", 20)} | {(label, n) for label in labels for n in (2, 4)}
    for r in rows.values():
        assert -1 <= r["ssim"] <= 1 and r["s_per_img"] > 0 and r["psnr"] > 0
    # the strided posterior at the reference's own NFE would be the reference; at fewer NFE it differs
    assert rows[("posterior", 4)]["psnr_vs_posterior100"] < 80
    assert "mrs-ode" in done.stdout and "LQ input" in done.stdout
