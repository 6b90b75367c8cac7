"""``data prepare`` on small fake source trees in each published layout."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from daclip_kit import InputError
from daclip_kit.cli.main import main
from daclip_kit.data.prepare import prepare
from daclip_kit.data.sources import READERS, TABLE1

_rng = np.random.default_rng(0)


def img(path: Path, size=(24, 32)) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    arr = (_rng.random((size[0], size[1], 3)) * 255).astype(np.uint8)
    Image.fromarray(arr).save(path)


def pairs(lq_dir: Path, gt_dir: Path, lq_names, gt_names, ext=".png") -> None:
    for a, b in zip(lq_names, gt_names, strict=True):
        img(lq_dir / f"{a}{ext}")
        img(gt_dir / f"{b}{ext}")


def make_gopro(root):
    for split, seqs in (("train", ["GOPR0372_07_00", "GOPR0374_11_00"]), ("test", ["GOPR0384_11_00"])):
        for s in seqs:
            pairs(root / split / s / "blur", root / split / s / "sharp", ["000047", "000048"], ["000047", "000048"])
    return {("motion-blurry", "train"): 4, ("motion-blurry", "val"): 2}


def make_reside(root):
    pairs(root / "train/hazy", root / "train/GT", ["0001_0.8_0.2", "0002_0.9_0.1"], ["0001", "0002"])
    pairs(root / "test/hazy", root / "test/GT", ["1400"], ["1400"])
    return {("hazy", "train"): 2, ("hazy", "val"): 1}


def make_div2k(root):
    for n in ("0001", "0002"):
        img(root / "DIV2K_train_HR" / f"{n}.png")
    img(root / "DIV2K_valid_HR" / "0801.png")
    return {("jpeg-compressed", "train"): 3, ("noisy", "train"): 3}


def make_flickr2k(root):
    for n in ("000001", "000002"):
        img(root / "Flickr2K_HR" / f"{n}.png")
    return {("jpeg-compressed", "train"): 2, ("noisy", "train"): 2}


def make_live1(root):
    for n in ("bikes", "building2"):
        img(root / "refimgs" / f"{n}.bmp")
    return {("jpeg-compressed", "val"): 2}


def make_cbsd68(root):
    for n in ("0000", "0001"):
        img(root / "original_png" / f"{n}.png")
    return {("noisy", "val"): 2}


def make_lol(root):
    pairs(root / "our485/low", root / "our485/high", ["2", "5", "10"], ["2", "5", "10"])
    pairs(root / "eval15/low", root / "eval15/high", ["1"], ["1"])
    return {("low-light", "train"): 3, ("low-light", "val"): 1}


def make_raindrop(root):
    pairs(root / "train/data", root / "train/gt", ["0_rain", "1_rain"], ["0_clean", "1_clean"])
    pairs(root / "test_a/data", root / "test_a/gt", ["0_rain"], ["0_clean"], ext=".png")
    return {("raindrop", "train"): 2, ("raindrop", "val"): 1}


def make_rain100h(root):
    for n in (1, 2):
        img(root / "RainTrainH" / f"rain-{n}.png")
        img(root / "RainTrainH" / f"norain-{n}.png")
    pairs(root / "Rain100H/rain/X2", root / "Rain100H/norain", ["norain-001x2", "norain-002x2"],
          ["norain-001", "norain-002"])
    return {("rainy", "train"): 2, ("rainy", "val"): 2}


def make_rain100l(root):
    for n in (1, 2, 3):
        img(root / "RainTrainL" / f"rain-{n}.png")
        img(root / "RainTrainL" / f"norain-{n}.png")
    pairs(root / "Rain100L/input", root / "Rain100L/target", ["1", "2"], ["1", "2"])
    return {("rain100l", "val"): 2}  # Table 5's folder only; RainTrainL is not read


def make_srd(root):
    pairs(root / "train/shadow", root / "train/shadow_free", ["IMG_1", "IMG_2"], ["IMG_1_no_shadow", "IMG_2_no_shadow"],
          ext=".jpg")
    pairs(root / "test/shadow", root / "test/shadow_free", ["_MG_3"], ["_MG_3_free"], ext=".jpg")
    return {("shadowed", "train"): 2, ("shadowed", "val"): 1}


def make_snow100k(root):
    pairs(root / "train/synthetic", root / "train/gt", ["a", "b"], ["a", "b"], ext=".jpg")
    pairs(root / "test/Snow100K-L/synthetic", root / "test/Snow100K-L/gt", ["c"], ["c"], ext=".jpg")
    return {("snowy", "train"): 2, ("snowy", "val"): 1}


def make_celeba(root):
    for n in range(6):
        img(root / "CelebA-HQ-img" / f"{n}.jpg", size=(40, 40))
    return {("uncompleted", "train"): 3, ("uncompleted", "val"): 3}


MAKERS = {
    "gopro": make_gopro, "reside-6k": make_reside, "div2k": make_div2k, "flickr2k": make_flickr2k,
    "live1": make_live1, "cbsd68": make_cbsd68, "lol": make_lol, "raindrop": make_raindrop,
    "rain100h": make_rain100h, "rain100l": make_rain100l, "srd": make_srd, "snow100k": make_snow100k,
    "celeba-hq": make_celeba,
}


def tree_digest(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


def test_every_registered_reader_has_a_fake_tree():
    from daclip_kit import list_components

    assert set(MAKERS) == set(READERS) == set(list_components("datasets"))


@pytest.mark.parametrize("name", sorted(MAKERS))
def test_prepare_each_published_layout(tmp_path, name):
    src = tmp_path / "src"
    expected = MAKERS[name](src)
    before = tree_digest(src)
    out = tmp_path / "universal"
    report = prepare({name: src}, out, seed=0)
    assert tree_digest(src) == before  # sources untouched
    found = {(r.degradation, r.split): r.found for r in report.rows if r.found}
    assert found == expected
    for (deg, split), n in expected.items():
        lq = sorted(p.name for p in (out / split / deg / "LQ").iterdir())
        gt = sorted(p.name for p in (out / split / deg / "GT").iterdir())
        assert lq == gt and len(lq) == n and all(x.endswith(".png") for x in lq)
        for a in lq:
            with Image.open(out / split / deg / "LQ" / a) as x, Image.open(out / split / deg / "GT" / a) as y:
                assert x.size == y.size
    assert report.written == sum(expected.values())


def test_synthetic_lq_are_jpeg_and_noise_of_the_gt(tmp_path):
    src = tmp_path / "div2k"
    make_div2k(src)
    out = tmp_path / "u"
    prepare({"div2k": src}, out)
    gt = np.asarray(Image.open(out / "train/noisy/GT/0001.png"), np.float32)
    noisy = np.asarray(Image.open(out / "train/noisy/LQ/0001.png"), np.float32)
    jpeg = np.asarray(Image.open(out / "train/jpeg-compressed/LQ/0001.png"), np.float32)
    assert 30 < (noisy - gt).std() < 60  # sigma 50 on 0..255, clipped
    import io

    buf = io.BytesIO()
    Image.open(out / "train/jpeg-compressed/GT/0001.png").save(buf, format="JPEG", quality=10)
    assert np.array_equal(jpeg, np.asarray(Image.open(io.BytesIO(buf.getvalue())).convert("RGB"), np.float32))
    # copied GT is bit-identical to the source PNG
    assert (out / "train/noisy/GT/0001.png").read_bytes() == (src / "DIV2K_train_HR/0001.png").read_bytes()


def test_celeba_is_resized_to_256_and_official_masks_are_used(tmp_path):
    src = tmp_path / "celeba"
    make_celeba(src)
    masks = tmp_path / "masks"
    masks.mkdir()
    m = np.full((256, 256, 3), 255, np.uint8)
    m[100:150] = 0
    Image.fromarray(m).save(masks / "000000.png")
    out = tmp_path / "u"
    prepare({"celeba-hq": src}, out, masks=masks)
    lq = np.asarray(Image.open(out / "train/uncompleted/LQ/0.png"))
    assert lq.shape == (256, 256, 3)
    assert (lq[105:145] == 255).all() and not (lq[:90] == 255).all()


def test_missing_partner_is_an_error_listing_the_file(tmp_path):
    src = tmp_path / "lol"
    make_lol(src)
    (src / "our485/high/5.png").unlink()
    out = tmp_path / "u"
    with pytest.raises(InputError, match=r"no clean image for 5\.png") as err:
        prepare({"lol": src}, out)
    assert "--skip-missing" in str(err.value)
    assert not out.exists()  # nothing written before the check
    report = prepare({"lol": src}, out, skip_missing=True)
    assert any("5.png" in m for m in report.missing)
    assert {(r.split, r.found) for r in report.rows if r.degradation == "low-light"} == {("train", 2), ("val", 1)}


def test_wrong_layout_names_the_expected_structure(tmp_path):
    (tmp_path / "gopro").mkdir()
    with pytest.raises(InputError, match=r"blur,sharp"):
        prepare({"gopro": tmp_path / "gopro"}, tmp_path / "u")
    with pytest.raises(InputError, match="does not exist"):
        prepare({"lol": tmp_path / "nowhere"}, tmp_path / "u")


def test_counts_report_against_table1_and_absent_types(tmp_path):
    src = tmp_path / "lol"
    make_lol(src)
    report = prepare({"lol": src}, tmp_path / "u", dry_run=True)
    assert not (tmp_path / "u").exists()
    row = next(r for r in report.rows if r.degradation == "low-light" and r.split == "train")
    assert (row.found, row.expected, row.status) == (3, TABLE1["low-light"][0], "fewer")
    absent = report.absent()
    assert any("motion-blurry" in a and "gopro" in a for a in absent)
    assert not any("low-light" in a for a in absent)


def test_refuses_non_empty_out_and_overlapping_folders(tmp_path):
    src = tmp_path / "lol"
    make_lol(src)
    out = tmp_path / "u"
    out.mkdir()
    (out / "keep.txt").write_text("x")
    with pytest.raises(InputError, match="not empty"):
        prepare({"lol": src}, out)
    prepare({"lol": src}, out, overwrite=True)
    assert (out / "keep.txt").read_text() == "x"
    with pytest.raises(InputError, match="overlaps"):
        prepare({"lol": src}, src / "out")


def test_paper_subset_is_applied_to_snow100k(tmp_path, monkeypatch):
    from daclip_kit.data.sources import Snow100K

    src = tmp_path / "snow"
    make_snow100k(src)
    monkeypatch.setattr(Snow100K, "paper_subset", {"train": 1, "val": 1})
    report = prepare({"snow100k": src}, tmp_path / "u", dry_run=True)
    assert {(r.split, r.found) for r in report.rows if r.degradation == "snowy"} == {("train", 1), ("val", 1)}
    report = prepare({"snow100k": src}, tmp_path / "u", dry_run=True, paper_subsets=False)
    assert {(r.split, r.found) for r in report.rows if r.degradation == "snowy"} == {("train", 2), ("val", 1)}


def test_cli_prepare_several_sources_json_and_errors(tmp_path, capsys):
    make_gopro(tmp_path / "gopro")
    make_cbsd68(tmp_path / "cbsd")
    out = tmp_path / "u"
    rc = main(["data", "prepare", "--source", f"gopro={tmp_path / 'gopro'}", "--source", f"cbsd68={tmp_path / 'cbsd'}",
               "--out", str(out), "--json"])
    assert rc == 0
    data = json.loads(capsys.readouterr().out)
    rows = {(r["split"], r["degradation"]): r for r in data["rows"]}
    assert rows[("train", "motion-blurry")]["found"] == 4 and rows[("val", "noisy")]["sources"] == ["cbsd68"]
    assert rows[("train", "hazy")]["status"] == "missing"
    assert main(["data", "prepare", "--source", f"gopr={tmp_path}", "--out", str(tmp_path / "v")]) == 1
    assert "Did you mean" in capsys.readouterr().err
    assert main(["data", "prepare", "--source", "gopro", "--out", str(tmp_path / "v")]) == 1
    (tmp_path / "gopro/train/GOPR0372_07_00/sharp/000048.png").unlink()
    assert main(["data", "prepare", "--source", f"gopro={tmp_path / 'gopro'}", "--out", str(tmp_path / "w")]) == 1
    assert "no clean image for 000048.png" in capsys.readouterr().err.replace("\n", "")


def test_several_hazy_images_of_one_clean_image_get_distinct_names(tmp_path):
    src = tmp_path / "reside"
    pairs(src / "train/hazy", src / "train/GT", ["0001_0.8_0.2"], ["0001"])
    img(src / "train/hazy/0001_0.9_0.1.png")
    pairs(src / "test/hazy", src / "test/GT", ["9"], ["9"])
    out = tmp_path / "u"
    prepare({"reside-6k": src}, out)
    names = sorted(p.name for p in (out / "train/hazy/LQ").iterdir())
    assert len(names) == 2 and names == sorted(p.name for p in (out / "train/hazy/GT").iterdir())
    lq = [(out / "train/hazy/LQ" / n).read_bytes() for n in names]
    assert lq[0] != lq[1]


def test_rain100l_goes_to_the_table5_folder_only(tmp_path):
    from daclip_kit.bench.tables import TABLE_5

    make_rain100h(tmp_path / "h")
    make_rain100l(tmp_path / "l")
    out = tmp_path / "u"
    report = prepare({"rain100h": tmp_path / "h", "rain100l": tmp_path / "l"}, out)
    assert TABLE_5.datasets() == ["rain100l"]
    # Rain100H alone fills the rainy folders; Rain100L's test pairs are in val/rain100l
    assert len(list((out / "train/rainy/LQ").iterdir())) == 2
    assert len(list((out / "val/rainy/LQ").iterdir())) == 2
    assert len(list((out / "val/rain100l/LQ").iterdir())) == 2 == len(list((out / "val/rain100l/GT").iterdir()))
    assert not (out / "train/rain100l").exists()
    rows = {(r.split, r.degradation): r for r in report.rows}
    assert rows[("val", "rain100l")].found == 2 and rows[("val", "rain100l")].sources == ["rain100l"]
    assert rows[("train", "rainy")].sources == ["rain100h"] and rows[("val", "rainy")].sources == ["rain100h"]
    assert ("train", "rain100l") not in rows and not any("rain100l" in a for a in report.absent())
    # the training folder of the release is not needed
    lonly = tmp_path / "l2"
    pairs(lonly / "Rain100L/rain", lonly / "Rain100L/norain", ["norain-1x2"], ["norain-1"])
    found = {(r.split, r.degradation): r.found for r in prepare({"rain100l": lonly}, tmp_path / "v", dry_run=True).rows
             if r.found}
    assert found == {("val", "rain100l"): 1}
