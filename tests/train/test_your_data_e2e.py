"""The documented path of docs/your-data.md, end to end with the tiny models (about 8.5 minutes of CPU
time, one thread per process; longer on a shared machine).

A new degradation (``banding``) given only as two folders of pairs made from the mini set's clean
images; ``data add``; DA-CLIP and the IR-SDE U-Net continued (``--init-from``) from tiny stage-1
runs on the ten; then ``classify`` with the model's own words and ``restore``. One run of
``benchmarks/bench_your_data.py`` (its smallest scale) serves every test of this module.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from daclip_kit.data.check import check_universal
from daclip_kit.types import DEGRADATIONS

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "bench_your_data.py"


@pytest.fixture(scope="module")
def path_run(tmp_path_factory):
    """The results JSON of the whole path, and its work folder."""
    work = tmp_path_factory.mktemp("your-data") / "work"
    out = work.parent / "results.json"
    env = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1"}
    done = subprocess.run([sys.executable, str(SCRIPT), "--work", str(work), "--json", str(out)],
                          capture_output=True, text=True, env=env, timeout=3600, check=False)
    assert out.is_file(), done.stdout + done.stderr
    return json.loads(out.read_text()), work


def test_data_add_result_is_a_valid_universal_folder(path_run):
    results, _work = path_run
    root = Path(results["root"])
    report = check_universal(root)
    assert report.ok, report.problems
    names = {r["degradation"] for r in report.rows}
    assert names == {*DEGRADATIONS, "banding"}
    assert results["irsde"]["val_images_new"] == results["settings"]["val_pairs"]


def test_classify_names_the_new_word_by_default_and_recognises_it(path_run):
    results, _ = path_run
    d = results["daclip"]
    assert "banding" in d["per_word_after"]  # classify ran without --labels: the model's own words
    assert d["accuracy_new"] > 3 * d["chance"], d  # well above chance (1/11)


def test_accuracy_on_the_ten_is_reported_before_and_after(path_run):
    results, _ = path_run
    d = results["daclip"]
    assert set(d["per_word_before"]) == set(DEGRADATIONS)
    assert set(d["per_word_after"]) == {*DEGRADATIONS, "banding"}
    assert d["accuracy_ten_before"] > 1.5 / len(DEGRADATIONS)  # the stage-1 model learnt the ten
    assert d["accuracy_ten_after"] > 1.5 / (len(DEGRADATIONS) + 1)  # and still knows them after


def test_restoring_the_new_degradation_beats_its_input(path_run):
    results, _ = path_run
    r = results["irsde"]
    assert r["psnr_new_restored"] > r["psnr_new_lq"] + 0.5, r
    assert r["psnr_builtin_before"] > r["psnr_builtin_lq"]  # the stage-1 U-Net restores noisy images
