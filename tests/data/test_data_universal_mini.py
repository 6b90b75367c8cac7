"""Universal layout, official CSV format, paired datasets, captions and the mini data set."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from PIL import Image

from daclip_kit import DEGRADATIONS, DaclipKitError, InputError
from daclip_kit.cli.main import main
from daclip_kit.data.captions import (
    blip_captioner,
    read_captions_file,
    write_dataset_csvs,
)
from daclip_kit.data.mini import build_mini
from daclip_kit.data.paired import PairedFolderDataset, pair_folders
from daclip_kit.data.universal import (
    CaptionRow,
    UniversalDataset,
    format_captions_csv,
    make_title,
    read_captions_csv,
    split_title,
    write_captions_csv,
)


@pytest.fixture(scope="module")
def mini(tmp_path_factory):
    root = tmp_path_factory.mktemp("mini") / "universal"
    calls = []
    report = build_mini(root, size=32, per_type=2, val_per_type=1, composed=2, seed=0,
                        progress=lambda done, total: calls.append((done, total)))
    n = 10 * 2 + 2 + 10 * 1 + 2  # per type and composed, train then val
    assert calls == [(k, n) for k in range(1, n + 1)]
    return root, report


def test_title_format_matches_the_official_one():
    assert make_title("a cat on a sofa", "noisy") == "a cat on a sofa: noisy"
    assert split_title("a cat on a sofa: noisy") == ("a cat on a sofa", "noisy")
    assert make_title("note: a sign\twith\ntext", "hazy") == "note - a sign with text: hazy"
    assert split_title(make_title("x: y", "hazy, noisy")) == ("x - y", "hazy, noisy")
    with pytest.raises(InputError):
        split_title("no separator")


def test_csv_text_is_tab_separated_with_header_and_no_index(tmp_path):
    rows = [CaptionRow("/d/train/noisy/LQ/1.png", "a dog", "noisy"),
            CaptionRow("/d/train/hazy/LQ/2.png", 'a "quoted" sign', "hazy")]
    text = format_captions_csv(rows)
    assert text.splitlines()[0] == "filepath\ttitle"
    assert text.splitlines()[1] == "/d/train/noisy/LQ/1.png\ta dog: noisy"
    assert text.splitlines()[2] == '/d/train/hazy/LQ/2.png\t"a ""quoted"" sign: hazy"'  # pandas-style quoting
    assert text.endswith("\n") and "\r" not in text
    path = write_captions_csv(tmp_path / "daclip_train.csv", rows)
    assert read_captions_csv(path) == rows
    (tmp_path / "bad.csv").write_text("path\tcaption\nx\ty: z\n")
    with pytest.raises(InputError, match="header"):
        read_captions_csv(tmp_path / "bad.csv")


def test_mini_writes_the_official_layout_with_all_ten_types_and_composed(mini):
    root, report = mini
    for split, n in (("train", 2), ("val", 1)):
        for deg in DEGRADATIONS:
            lq = sorted(p.name for p in (root / split / deg / "LQ").iterdir())
            gt = sorted(p.name for p in (root / split / deg / "GT").iterdir())
            assert lq == gt and len(lq) == n
        composed = [p.name for p in (root / split).iterdir() if "+" in p.name]
        assert sum(report.counts[split][c] for c in composed) == 2
    with Image.open(next((root / "train/hazy/LQ").iterdir())) as im:
        assert im.size == (32, 32)
    assert len(report.photos) == 13  # all bundled photos (dev extras installed)
    assert report.photos[-2:] == ["flower", "grace_hopper"]  # the val photos, never in train
    train_photos = {p.name.split("_train")[0] for p in (root / "train/noisy/GT").iterdir()}
    val_photos = {p.name.split("_val")[0] for p in (root / "val/noisy/GT").iterdir()}
    assert not train_photos & val_photos


def test_mini_csvs_list_every_lq_with_caption_and_degradation(mini):
    root, _ = mini
    for split in ("train", "val"):
        rows = read_captions_csv(root / f"daclip_{split}.csv")
        lqs = sorted(str(p.resolve()) for p in (root / split).glob("*/LQ/*.png"))
        assert sorted(r.filepath for r in rows) == lqs
        for r in rows:
            folder = r.filepath.split("/")[-3]
            assert r.degradation == folder.replace("+", ", ")
            assert r.caption and ": " not in r.caption


def test_universal_dataset_items_and_captions(mini):
    root, _ = mini
    ds = UniversalDataset(root, "val", crop=16, seed=1)
    assert len(ds) == 10 + 2
    item = ds[0]
    assert item["lq"].shape == item["gt"].shape == (3, 16, 16)
    assert item["lq"].min() >= 0 and item["lq"].max() <= 1
    assert item["degradation"] == "motion-blurry" and item["caption"]
    composed = [ds[i]["degradation"] for i in range(len(ds)) if "," in ds[i]["degradation"]]
    assert len(composed) == 2
    only = UniversalDataset(root, "train", degradations=["noisy"])
    assert len(only) == 2 and only[1]["lq"].shape == (3, 32, 32)
    with pytest.raises(InputError, match="available"):
        UniversalDataset(root, "train", degradations=["foggy"])


def test_dataset_crops_are_deterministic_and_augmentations_consistent(mini):
    root, _ = mini
    a = PairedFolderDataset(root / "train/noisy/LQ", root / "train/noisy/GT", degradation="noisy", crop=12, seed=3,
                            augment=True)
    b = PairedFolderDataset(root / "train/noisy/LQ", root / "train/noisy/GT", degradation="noisy", crop=12, seed=3,
                            augment=True)
    assert torch.equal(a[0]["lq"], b[0]["lq"]) and torch.equal(a[0]["gt"], b[0]["gt"])
    crops = {tuple(a[0]["gt"].flatten()[:5].tolist())}
    for epoch in range(1, 4):
        a.set_epoch(epoch)
        crops.add(tuple(a[0]["gt"].flatten()[:5].tolist()))
    assert len(crops) > 1
    # the LQ crop is taken at the same place as the GT crop: noise residual stays noise-sized
    item = a[1]
    assert float((item["lq"] - item["gt"]).abs().mean()) < 0.25


def test_pairing_errors(tmp_path):
    for d in ("LQ", "GT"):
        (tmp_path / d).mkdir()
    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(tmp_path / "LQ/a.png")
    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(tmp_path / "LQ/b.png")
    Image.fromarray(np.zeros((9, 8, 3), np.uint8)).save(tmp_path / "GT/a.png")
    with pytest.raises(InputError, match=r"Only in LQ: \['b.png'\]"):
        pair_folders(tmp_path / "LQ", tmp_path / "GT")
    (tmp_path / "LQ/b.png").unlink()
    ds = PairedFolderDataset(tmp_path / "LQ", tmp_path / "GT")
    with pytest.raises(InputError, match="same size"):
        ds[0]


def test_caption_from_user_file_and_missing_caption_error(mini, tmp_path):
    root, _ = mini
    gts = sorted({p.name for p in root.glob("*/*/GT/*.png")})
    tsv = tmp_path / "caps.tsv"
    tsv.write_text("filename\tcaption\n" + "".join(f"{n}\tphoto {i}\n" for i, n in enumerate(gts)))
    out = tmp_path / "csv"
    paths = write_dataset_csvs(root, read_captions_file(tsv), relative_to=root, out_dir=out)
    assert [p.name for p in paths] == ["daclip_val.csv", "daclip_train.csv"]
    rows = read_captions_csv(out / "daclip_val.csv")
    assert all(r.filepath.startswith("val/") and r.caption.startswith("photo ") for r in rows)
    (tmp_path / "caps.json").write_text(json.dumps({gts[0]: "only one"}))
    with pytest.raises(InputError, match="no caption"):
        write_dataset_csvs(root, read_captions_file(tmp_path / "caps.json"), out_dir=out)


def test_captions_file_formats(tmp_path):
    (tmp_path / "a.jsonl").write_text('{"file": "x.png", "caption": "a x"}\n')
    assert read_captions_file(tmp_path / "a.jsonl") == {"x.png": "a x"}
    (tmp_path / "o.csv").write_text("filepath\ttitle\n/r/val/noisy/LQ/x.png\ta x: noisy\n")
    assert read_captions_file(tmp_path / "o.csv") == {"/r/val/noisy/LQ/x.png": "a x"}
    (tmp_path / "bad.tsv").write_text("x.png\n")
    with pytest.raises(InputError, match="name<TAB>caption"):
        read_captions_file(tmp_path / "bad.tsv")


def test_blip_without_transformers_or_weights_is_a_clear_error():
    with pytest.raises(DaclipKitError, match=r"caption|weights"):
        blip_captioner("Salesforce/blip-image-captioning-large")


def test_cli_mini_check_and_caption(tmp_path, capsys):
    root = tmp_path / "m"
    assert main(["data", "mini", "--out", str(root), "--size", "24", "--per-type", "1", "--val-per-type", "1",
                 "--composed", "0", "--types", "noisy,hazy", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["counts"] == {"train": {"noisy": 1, "hazy": 1}, "val": {"noisy": 1, "hazy": 1}}
    assert main(["data", "check", str(root), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["problems"] == []
    assert main(["data", "mini", "--out", str(root)]) == 1
    assert "--overwrite" in capsys.readouterr().err
    caps = tmp_path / "caps.json"
    caps.write_text(json.dumps({p.name: "a thing" for p in root.glob("*/*/GT/*.png")}))
    assert main(["data", "caption", str(root), "--captions", str(caps)]) == 0
    assert read_captions_csv(root / "daclip_train.csv")[0].caption == "a thing"
    (root / "daclip_val.csv").unlink()
    assert main(["data", "check", str(root)]) == 1


def test_mini_falls_back_to_drawn_scenes(tmp_path):
    report = build_mini(tmp_path / "s", size=24, per_type=1, val_per_type=1, composed=0, types=("noisy",),
                        synthetic=True)
    assert report.photos[0].startswith("scene")
    assert (tmp_path / "s/daclip_train.csv").is_file()
