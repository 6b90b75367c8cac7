"""benchmarks/bench_restore.py runs on the CPU with a tiny model and writes the documented JSON."""

import json
import os
import subprocess
import sys
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "bench_restore.py"
KEYS = {"name", "s_per_img", "img_per_s", "peak_mem_bytes", "psnr_vs_reference", "compile_s"}


def test_tiny_cpu_benchmark_writes_every_setting(tmp_path):
    out = tmp_path / "bench.json"
    cmd = [sys.executable, str(SCRIPT), "--tiny", "--device", "cpu", "--size", "32", "--steps", "2",
           "--repeats", "1", "--batch", "2", "--settings", "reference,eager,batch", "--json", str(out)]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=600,
                          env={**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"})
    assert done.returncode == 0, done.stderr[-2000:]
    result = json.loads(out.read_text())
    rows = {r["name"]: r for r in result["rows"]}
    assert set(rows) == {"reference", "eager", "batch-2"}
    for row in rows.values():
        assert set(row) >= KEYS and row["s_per_img"] > 0 and row["peak_mem_bytes"] > 0
    # the default path computes the same restoration as the official-equivalent loop
    assert rows["eager"]["psnr_vs_reference"] > 60
    assert result["machine"]["device"] == "cpu" and "eager" in done.stdout
