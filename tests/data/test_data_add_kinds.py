"""`daclip-kit data add` warns, one line per pair, about files training reads differently from how
they are stored: an alpha channel (dropped) and LQ/GT of other channels or bit depths. These are
warnings: the pairs are written, and `--skip-bad` still leaves out only pairs with problems."""

from __future__ import annotations

import json

import numpy as np
from PIL import Image

from daclip_kit.cli.main import main
from daclip_kit.data.add import add_degradation

H, W = 16, 20


def _folders(base, n=3):
    """``n`` plain pairs (8-bit RGB PNGs) in ``base/lq`` and ``base/gt``."""
    rng = np.random.default_rng(0)
    lq, gt = base / "lq", base / "gt"
    lq.mkdir(parents=True)
    gt.mkdir(parents=True)
    for i in range(n):
        clean = rng.integers(0, 256, (H, W, 3), dtype=np.uint8)
        Image.fromarray(clean).save(gt / f"p{i}.png")
        Image.fromarray(255 - clean).save(lq / f"p{i}.png")
    return lq, gt


def _warnings(err: str) -> list[str]:
    return [line for line in err.splitlines() if line.startswith("warning:")]


def test_plain_pairs_give_no_warning(tmp_path):
    lq, gt = _folders(tmp_path / "user")
    report = add_degradation("banding", lq, gt, tmp_path / "root", val=1, captions="none")
    assert report.warnings == []


def test_an_rgba_gt_is_one_warning_line_and_the_pair_is_written(tmp_path, capsys):
    lq, gt = _folders(tmp_path / "user")
    rgba = np.random.default_rng(1).integers(0, 256, (H, W, 4), dtype=np.uint8)
    Image.fromarray(rgba).save(gt / "p1.png")
    assert main(["data", "add", "banding", "--lq", str(lq), "--gt", str(gt), "--out", str(tmp_path / "root"),
                 "--val", "1", "--captions", "none", "--json"]) == 0
    out, err = capsys.readouterr()
    lines = _warnings(err)
    assert len(lines) == 1
    assert "pair p1" in lines[0] and "GT p1.png has an alpha channel (RGBA)" in lines[0] and "drops" in lines[0]
    report = json.loads(out)
    assert report["warnings"] == [lines[0].removeprefix("warning: ")]
    assert sum(report["counts"].values()) == 3  # a warning, not a problem: the pair is written


def test_an_la_lq_is_one_warning_line(tmp_path):
    lq, gt = _folders(tmp_path / "user")
    gray = np.random.default_rng(2).integers(0, 256, (H, W), dtype=np.uint8)
    Image.fromarray(np.stack([gray, gray], axis=2)).save(lq / "p0.png")  # LA
    report = add_degradation("banding", lq, gt, tmp_path / "root", val=1, captions="none")
    assert len(report.warnings) == 1
    line = report.warnings[0]
    assert line.startswith("pair p0:") and "LQ p0.png has an alpha channel (LA)" in line
    assert "8-bit grayscale" in line and "8-bit colour" in line  # gray LQ with colour GT: also a mismatch


def test_a_16_bit_gray_gt_with_an_8_bit_colour_lq_is_one_warning_line(tmp_path):
    lq, gt = _folders(tmp_path / "user")
    deep = np.random.default_rng(3).integers(0, 65536, (H, W), dtype=np.uint16)
    Image.fromarray(deep).save(gt / "p2.png")  # I;16
    report = add_degradation("banding", lq, gt, tmp_path / "root", val=1, captions="none")
    assert report.warnings == [
        "pair p2: LQ p2.png is 8-bit colour but GT p2.png is 16-bit grayscale; both are read as RGB in [0, 1], so "
        "the network also learns that difference (convert one of them if it is not intended)"]
    assert sum(report.counts.values()) == 3


def test_skip_bad_leaves_out_problems_and_keeps_warned_pairs(tmp_path):
    lq, gt = _folders(tmp_path / "user", n=4)
    (lq / "p0.png").write_bytes(b"not an image")  # a problem
    rgba = np.random.default_rng(4).integers(0, 256, (H, W, 4), dtype=np.uint8)
    Image.fromarray(rgba).save(lq / "p3.png")  # a warning
    report = add_degradation("banding", lq, gt, tmp_path / "root", val=1, captions="none", skip_bad=True)
    assert len(report.skipped) == 1 and "p0.png" in report.skipped[0]
    assert len(report.warnings) == 1 and report.warnings[0].startswith("pair p3:")
    assert sum(report.counts.values()) == 3
