"""Regressions: captions file errors, ``data check`` keys, ``data mini --synthetic`` log, tiny images
in the blur kernels, and the paired-data helpers shared with training."""

from __future__ import annotations

import json
import logging

import numpy as np
import pytest
import torch
from PIL import Image

from daclip_kit import InputError
from daclip_kit.cli.main import main
from daclip_kit.data.captions import read_captions_file
from daclip_kit.data.mini import build_mini
from daclip_kit.data.paired import Pair, PairDataset, flip_transpose, item_generator
from daclip_kit.data.universal import CaptionRow, write_captions_csv
from daclip_kit.degradations.base import kernel_limit
from daclip_kit.degradations.blur import MotionBlur


def _png(path, seed=0, size=(8, 10)):
    path.parent.mkdir(parents=True, exist_ok=True)
    arr = (np.random.default_rng(seed).random((*size, 3)) * 255).astype(np.uint8)
    Image.fromarray(arr).save(path)


@pytest.mark.parametrize("name, text, where", [
    ("c.json", '{"a.png": "a cat",\n "b.png": }', "c.json:2"),
    ("c.jsonl", '{"file": "a.png", "caption": "x"}\n{"file": "b.png", "caption": \n', "c.jsonl:2"),
    ("c.jsonl", '{"file": "a.png", "caption": "x"}\n["b.png", "y"]\n', "c.jsonl:2"),
    ("c.jsonl", '"just a string"\n', "c.jsonl:1"),
])
def test_malformed_captions_file_is_an_input_error_naming_the_line(tmp_path, name, text, where):
    (tmp_path / name).write_text(text)
    with pytest.raises(InputError, match="expected one JSON object") as err:
        read_captions_file(tmp_path / name)
    assert where in str(err.value)


def test_captions_file_errors_reach_the_cli_without_traceback(tmp_path, capsys):
    root = tmp_path / "u"
    _png(root / "train/noisy/LQ/a.png")
    _png(root / "train/noisy/GT/a.png", 1)
    (tmp_path / "c.jsonl").write_text("{not json\n")
    assert main(["data", "caption", str(root), "--captions", str(tmp_path / "c.jsonl")]) == 1
    err = capsys.readouterr().err
    assert "c.jsonl:1" in err and "Traceback" not in err


def test_check_matches_csv_rows_by_split_degradation_and_name(tmp_path, capsys):
    root = tmp_path / "u"
    for deg in ("noisy", "hazy"):
        _png(root / "train" / deg / "LQ" / "a.png")
        _png(root / "train" / deg / "GT" / "a.png", 1)

    def lq(deg):
        return str(root / "train" / deg / "LQ" / "a.png")

    # two rows, both for noisy/a.png: the same bare name as hazy/a.png, but hazy is not listed
    write_captions_csv(root / "daclip_train.csv", [CaptionRow(lq("noisy"), "c", "noisy")] * 2)
    assert main(["data", "check", str(root), "--json"]) == 1
    problems = json.loads(capsys.readouterr().out)["problems"]
    assert any("train/hazy/LQ/a.png" in p and "not listed" in p for p in problems)
    rows = [CaptionRow(lq("noisy"), "c", "noisy"), CaptionRow(lq("hazy"), "c", "hazy")]
    write_captions_csv(root / "daclip_train.csv", rows)
    assert main(["data", "check", str(root), "--json"]) == 0
    # rows written relative to another folder are matched on the same key
    write_captions_csv(root / "daclip_train.csv",
                       [CaptionRow(f"universal/train/{d}/LQ/a.png", "c", d) for d in ("noisy", "hazy")])
    assert main(["data", "check", str(root), "--json"]) == 0


def test_mini_synthetic_does_not_warn_about_missing_photos(tmp_path, caplog):
    with caplog.at_level(logging.WARNING, logger="daclip_kit.data.mini"):
        build_mini(tmp_path / "s", size=24, per_type=1, val_per_type=1, composed=0, types=("noisy",),
                   synthetic=True)
    assert not [r for r in caplog.records if "bundled photos" in r.getMessage()]


def test_mini_without_photos_still_warns(tmp_path, caplog, monkeypatch):
    import daclip_kit.data.mini as mini

    monkeypatch.setattr(mini, "bundled_photos", list)
    with caplog.at_level(logging.WARNING, logger="daclip_kit.data.mini"):
        build_mini(tmp_path / "s", size=24, per_type=1, val_per_type=1, composed=0, types=("noisy",))
    assert [r for r in caplog.records if "bundled photos" in r.getMessage()]


@pytest.mark.parametrize("size, limit", [((1, 1), -1), ((2, 9), -1), ((4, 4), 1), ((5, 7), 3), ((6, 6), 3),
                                         ((7, 64), 5), ((64, 64), 61)])
def test_kernel_limit(size, limit):
    assert kernel_limit(*size) == limit


@pytest.mark.parametrize("size", [(1, 1), (1, 40), (40, 2), (2, 2), (4, 4)])
def test_motion_blur_leaves_images_too_small_for_a_kernel_unchanged(size):
    x = torch.rand(2, 3, *size)
    out = MotionBlur()(x, torch.Generator().manual_seed(0))
    assert torch.equal(out, x)


def test_motion_blur_still_blurs_images_of_side_5():
    x = torch.rand(1, 3, 5, 5)
    out = MotionBlur()(x, torch.Generator().manual_seed(0))
    assert out.shape == x.shape and not torch.equal(out, x)


def test_pair_dataset_uses_the_shared_generator_and_flips(tmp_path):
    _png(tmp_path / "LQ/a.png", 0, (12, 12))
    _png(tmp_path / "GT/a.png", 1, (12, 12))
    ds = PairDataset([Pair(tmp_path / "LQ/a.png", tmp_path / "GT/a.png")], seed=3, augment=True)
    from daclip_kit.io import read_image

    lq, gt = read_image(tmp_path / "LQ/a.png")[0], read_image(tmp_path / "GT/a.png")[0]
    for epoch in range(4):
        ds.set_epoch(epoch)
        exp_lq, exp_gt = flip_transpose(lq, gt, item_generator(3, epoch, 0))
        item = ds[0]
        assert torch.equal(item["lq"], exp_lq) and torch.equal(item["gt"], exp_gt)
    from daclip_kit.train import datasets, transforms

    assert transforms.flip_transpose is flip_transpose and datasets.item_generator is item_generator
