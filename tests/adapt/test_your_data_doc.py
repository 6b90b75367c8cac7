"""docs/your-data.md's offline path runs as written, at a smaller scale (its step counts lowered
through the variables the block reads), and ends with a model that every verb takes."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PAGE = ROOT / "docs" / "your-data.md"


def offline_block() -> str:
    text = PAGE.read_text(encoding="utf-8")
    section = text[text.index("## Offline, on a CPU"):]
    return re.search(r"```bash\n(.*?)```", section, flags=re.S).group(1)


def test_the_offline_path_runs_as_written(tmp_path):
    block = offline_block()
    assert "daclip-kit adapt cast" in block and "$STEPS" in block  # the page still shows adapt, scaled by STEPS
    work = tmp_path / "work"
    path = f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"
    env = {**os.environ, "WORK": str(work), "STEPS": "4", "DACLIP_STEPS": "4", "IRSDE_STEPS": "4",
           "EVAL_STEPS": "1", "PER_TYPE": "20", "PATH": path}
    # not `bash -e`: at 4 steps adapt may lose known degradations, which it reports and exits 1 for
    # (checked below), and the page goes on to classify and restore with the model it wrote
    done = subprocess.run(["bash", "-c", block], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=1800, check=False)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]  # the last command, restore
    assert "error:" not in done.stderr, done.stderr[-3000:]
    report = json.loads((work / "cast-model" / "report.json").read_text())
    lost = report["forgetting"]["lost"]
    assert all(f"warning: {row['degradation']} was lost" in done.stderr for row in lost)
    assert report["preflight"]["plan"]["objective"] == "clean"  # a global colour cast: the preflight's choice
    assert report["data"]["counts"] == {"train": 32, "val": 8}
    assert "cast" in report["naming"]["after"]["words"]
    assert len(list((work / "restored").glob("*.png"))) == 8
    assert "cast" in done.stdout  # classify's table names the model's words, cast among them
