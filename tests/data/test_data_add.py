"""`daclip-kit data add`: a user's own degradation from two folders of pairs."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest
from PIL import Image

from daclip_kit.cli.main import main
from daclip_kit.data.add import FALLBACK_CAPTION, PairProblems, add_degradation, check_name
from daclip_kit.data.check import check_universal
from daclip_kit.data.mini import build_mini
from daclip_kit.data.universal import read_captions_csv
from daclip_kit.errors import ConfigError, InputError


@pytest.fixture(scope="module")
def mini(tmp_path_factory):
    root = tmp_path_factory.mktemp("mini") / "mini"
    build_mini(root, size=32, per_type=1, val_per_type=1, composed=0, types=("noisy", "hazy"), seed=0)
    return root


def _user_folders(base, n=6, *, lq_ext=".png"):
    rng = np.random.default_rng(0)
    lq, gt = base / "lq", base / "gt"
    lq.mkdir(parents=True)
    gt.mkdir(parents=True)
    for i in range(n):
        clean = rng.integers(0, 256, (24, 32, 3), dtype=np.uint8)
        Image.fromarray(clean).save(gt / f"img{i:02d}.png")
        Image.fromarray(255 - clean).save(lq / f"img{i:02d}{lq_ext}")
    return lq, gt


def _copy_of(root, dst):
    import shutil

    shutil.copytree(root, dst)
    return dst


def snapshot(folder):
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def test_add_writes_train_val_and_csv_rows_keeping_the_others(mini, tmp_path):
    root = _copy_of(mini, tmp_path / "root")
    before = {s: read_captions_csv(root / f"daclip_{s}.csv") for s in ("train", "val")}
    others = snapshot(root / "train" / "noisy")
    lq, gt = _user_folders(tmp_path / "user", 6, lq_ext=".jpg")
    report = add_degradation("banding", lq, gt, root, val=2)
    assert report.counts == {"train": 4, "val": 2}
    assert report.caption_source == "fallback"  # transformers is not a test dependency
    assert sorted(p.name for p in (root / "val" / "banding" / "LQ").iterdir()) == \
        sorted(p.name.replace(".png", ".jpg") for p in (root / "val" / "banding" / "GT").iterdir())
    for split, n in (("train", 4), ("val", 2)):
        rows = read_captions_csv(root / f"daclip_{split}.csv")
        assert rows[:len(before[split])] == before[split]
        new = rows[len(before[split]):]
        assert len(new) == n and {r.degradation for r in new} == {"banding"}
        assert {r.caption for r in new} == {FALLBACK_CAPTION}
        assert all((root / split / "banding" / "LQ" / os.path.basename(r.filepath)).is_file() for r in new)
    assert snapshot(root / "train" / "noisy") == others
    check = check_universal(root)
    assert check.ok, check.problems
    assert not check.notes  # 0001.jpg with 0001.png: same stem, no note
    assert not [p for p in root.iterdir() if p.name.startswith(".")]  # no staging folder left


def test_problems_are_listed_one_per_line_and_nothing_is_written(mini, tmp_path):
    root = _copy_of(mini, tmp_path / "root")
    before = snapshot(root)
    lq, gt = _user_folders(tmp_path / "user", 5)
    (lq / "img00.png").write_bytes(b"not an image")
    Image.fromarray(np.zeros((10, 10, 3), np.uint8)).save(gt / "img01.png")  # size differs from its LQ
    Image.fromarray(np.zeros((24, 32, 3), np.uint8)).save(gt / "orphan.png")
    with pytest.raises(PairProblems) as err:
        add_degradation("banding", lq, gt, root)
    lines = err.value.problems
    assert len(lines) == 3
    assert any("orphan.png" in x and "no LQ" in x for x in lines)
    assert any("img00.png" in x and x.startswith("LQ") for x in lines)
    assert any("img01" in x and "32x24" in x and "10x10" in x for x in lines)
    assert snapshot(root) == before

    report = add_degradation("banding", lq, gt, root, skip_bad=True, val=1)
    assert report.counts == {"train": 2, "val": 1} and len(report.skipped) == 3
    assert check_universal(root).ok


def test_existing_name_needs_overwrite_and_overwrite_replaces_it(mini, tmp_path):
    root = _copy_of(mini, tmp_path / "root")
    lq, gt = _user_folders(tmp_path / "user", 6)
    add_degradation("banding", lq, gt, root, val=2)
    with pytest.raises(InputError, match=r"already has the degradation 'banding'.*--overwrite"):
        add_degradation("banding", lq, gt, root, val=1)
    report = add_degradation("banding", lq, gt, root, val_fraction=0.5, overwrite=True)
    assert report.counts == {"train": 3, "val": 3}
    rows = read_captions_csv(root / "daclip_val.csv")
    assert sum(r.degradation == "banding" for r in rows) == 3
    assert len(list((root / "val" / "banding" / "LQ").iterdir())) == 3
    assert check_universal(root).ok


def test_link_new_root_and_relative_csv(tmp_path):
    lq, gt = _user_folders(tmp_path / "user", 4)
    root = tmp_path / "fresh"
    add_degradation("old-scan", lq, gt, root, val=1, link=True)
    placed = next((root / "train" / "old-scan" / "GT").iterdir())
    assert placed.is_symlink() or os.stat(placed).st_ino == os.stat(gt / placed.name).st_ino
    assert check_universal(root).ok
    # a root whose CSV names images relative to itself gets relative rows
    (root / "daclip_val.csv").write_text("filepath\ttitle\nval/old-scan/LQ/x.png\tcat: old-scan\n")
    lq2, gt2 = _user_folders(tmp_path / "user2", 3)
    add_degradation("moire_2", lq2, gt2, root, val=1)
    rows = read_captions_csv(root / "daclip_val.csv")
    assert rows[-1].filepath.startswith("val/moire_2/LQ/")


@pytest.mark.parametrize("name", ["Banding", "a b", "x/y", "-x", "hazy+noisy", "", "a" * 41])
def test_names_are_validated(name):
    with pytest.raises(ConfigError, match="lowercase letters and digits"):
        check_name(name)


def test_val_settings_are_checked(tmp_path):
    lq, gt = _user_folders(tmp_path / "user", 3)
    with pytest.raises(ConfigError, match="none for training"):
        add_degradation("banding", lq, gt, tmp_path / "r", val=3)
    with pytest.raises(ConfigError, match=r"\[0, 1\)"):
        add_degradation("banding", lq, gt, tmp_path / "r", val_fraction=1.5)
    assert not (tmp_path / "r").exists()


def test_cli_add_json_and_check(mini, tmp_path, capsys):
    root = _copy_of(mini, tmp_path / "root")
    lq, gt = _user_folders(tmp_path / "user", 4)
    assert main(["data", "add", "banding", "--lq", str(lq), "--gt", str(gt), "--out", str(root), "--val", "1",
                 "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["counts"] == {"train": 3, "val": 1} and data["name"] == "banding"
    assert main(["data", "check", str(root)]) == 0
    assert main(["data", "add", "Bad Name", "--lq", str(lq), "--gt", str(gt), "--out", str(root)]) != 0
    assert "lowercase letters" in capsys.readouterr().err
