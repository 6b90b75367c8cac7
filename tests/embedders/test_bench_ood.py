"""benchmarks/bench_ood.py: the unknown-degradation check measured as calibrated, on the val split's
photos and on new ones (docs/daclip.md)."""

from __future__ import annotations

import copy
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from daclip_kit.data.mini import build_mini
from daclip_kit.embedders.daclip.convert import save_daclip
from daclip_kit.embedders.daclip.model import DaCLIP
from daclip_kit.embedders.plugin import TINY_CLIP_CONFIG

BENCH = Path(__file__).resolve().parents[2] / "benchmarks" / "bench_ood.py"
KNOWN = ("noisy", "hazy")


@pytest.fixture(scope="module")
def setting(tmp_path_factory):
    """A tiny DA-CLIP knowing two words, a mini root that also holds a third type, a root of drawn scenes."""
    base = tmp_path_factory.mktemp("bench-ood")
    torch.manual_seed(0)
    model = DaCLIP.from_config(copy.deepcopy(TINY_CLIP_CONFIG))
    model.degradations = KNOWN
    save_daclip(model, base / "daclip")
    build_mini(base / "root", size=32, per_type=1, val_per_type=6, composed=0, types=(*KNOWN, "low-light"))
    build_mini(base / "scenes", size=32, per_type=1, val_per_type=3, composed=0, types=(*KNOWN, "low-light"),
               synthetic=True)
    return base


def bench(base: Path, *args: str) -> dict:
    out = base / f"ood-{'-'.join(args).replace('/', '_')}.json"
    done = subprocess.run([sys.executable, str(BENCH), "--weights", str(base / "daclip"), "--root",
                           str(base / "root"), "--k", "1", "--out", str(out), *args],
                          capture_output=True, text=True, timeout=600, env={**os.environ, "HF_HUB_OFFLINE": "1"})
    assert done.returncode == 0, done.stderr[-2000:]
    return json.loads(out.read_text())


def test_new_photos_are_measured_and_whole_photos_left_out(setting):
    by_photo = bench(setting, "--new-photos", str(setting / "scenes"))
    by_image = bench(setting, "--new-photos", str(setting / "scenes"), "--leave-out", "image")
    assert by_photo["unknown"] == ["low-light"] and by_photo["val_images"] == 12
    assert by_photo["leave_out"] == "photo" and by_photo["val_photos"] == 2  # the val split's two photos
    assert by_image["val_photos"] is None
    for name in ("knn(k=1)", "mahalanobis", "max_prob"):
        row = by_photo["results"][name]
        assert 0.0 <= row["known_false_alarm_new_photos"] <= 1.0
        assert set(row["catch_new_photos"]) == {"low-light", "mean"}
    # each val image's reference loses its photo's other crops: its k-th neighbour can only be further
    photo_knn, image_knn = by_photo["results"]["knn(k=1)"], by_image["results"]["knn(k=1)"]
    assert photo_knn["threshold"] >= image_knn["threshold"]
    assert photo_knn["known_false_alarm_new_photos"] <= image_knn["known_false_alarm_new_photos"]
    # max_prob has no reference: how images are left out does not change it
    assert by_photo["results"]["max_prob"] == by_image["results"]["max_prob"]
