"""``daclip-kit score`` and :mod:`daclip_kit.metrics.score`: scoring a paired folder."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from PIL import Image

import daclip_kit
from daclip_kit.cli.main import main
from daclip_kit.errors import ConfigError, InputError, UnknownComponentError
from daclip_kit.metrics.score import match_pairs, score_folders
from daclip_kit.options import verb_flags
from daclip_kit.plugins import get_registry


def _write(folder, name, arr):
    folder.mkdir(parents=True, exist_ok=True)
    Image.fromarray(arr).save(folder / name)


@pytest.fixture
def folders(tmp_path):
    """GT images and copies with a known error (+/-6 grey levels on a checkerboard)."""
    rng = np.random.default_rng(1)
    for i in range(3):
        gt = rng.integers(20, 236, (24, 32, 3), dtype=np.uint8)
        err = np.where((np.indices(gt.shape[:2]).sum(0) % 2)[..., None] == 0, 6, -6).astype(np.int16)
        _write(tmp_path / "gt", f"im{i}.png", gt)
        _write(tmp_path / "pred", f"im{i}.png", (gt.astype(np.int16) + err).astype(np.uint8))
    return tmp_path


def test_scoring_restored_images_gives_the_psnr_of_their_known_error(folders):
    report = score_folders(folders / "gt", pred=folders / "pred", metrics=["psnr", "ssim"])
    expected = 10 * math.log10(255**2 / 36)  # every pixel off by 6 levels
    assert report.metrics["psnr"] == pytest.approx(expected, abs=1e-6)
    assert [s.name for s in report.images] == ["im0.png", "im1.png", "im2.png"]
    assert all(s.values["psnr"] == pytest.approx(expected, abs=1e-6) for s in report.images)
    assert 0 < report.metrics["ssim"] < 1 and not report.notes


def test_pairs_by_name_or_order_and_their_errors(folders):
    (folders / "pred" / "im2.png").rename(folders / "pred" / "other.png")
    with pytest.raises(InputError, match=r"other\.png.*\(by=order\)"):
        match_pairs(folders / "pred", folders / "gt")
    with verb_flags({"--pair-by"}), pytest.raises(InputError, match=r"other\.png.*\(--pair-by order\)"):
        match_pairs(folders / "pred", folders / "gt")  # under `daclip-kit score`
    pairs = match_pairs(folders / "pred", folders / "gt", by="order")
    assert [(a.name, b.name) for a, b in pairs] == [("im0.png", "im0.png"), ("im1.png", "im1.png"),
                                                    ("other.png", "im2.png")]
    (folders / "gt" / "extra.png").write_bytes((folders / "gt" / "im0.png").read_bytes())
    with pytest.raises(InputError, match="equal counts"):
        match_pairs(folders / "pred", folders / "gt", by="order")
    with pytest.raises(InputError, match="does not exist"):
        match_pairs(folders / "nowhere", folders / "gt")


def test_bad_requests_are_clear_errors(folders):
    with pytest.raises(ConfigError, match="either"):
        score_folders(folders / "gt")
    with pytest.raises(ConfigError, match="restore="):
        score_folders(folders / "gt", lq=folders / "pred")
    with pytest.raises(UnknownComponentError):
        score_folders(folders / "gt", pred=folders / "pred", metrics=["psnr", "psnrr"])
    _write(folders / "small", "im0.png", np.zeros((8, 8, 3), np.uint8))
    with pytest.raises(InputError, match="same size"):
        score_folders(folders / "gt", pred=folders / "small")


def test_a_missing_lpips_network_is_a_note_and_the_other_metrics_are_computed(folders, tmp_path, monkeypatch):
    monkeypatch.setenv("DACLIP_KIT_CACHE", str(tmp_path / "empty-cache"))
    report = score_folders(folders / "gt", pred=folders / "pred")
    assert report.metrics["lpips"] is None and report.metrics["psnr"] > 30
    assert len(report.notes) == 1 and "alexnet-owt-7be5be79.pth" in report.notes[0]


def test_cli_scoring_a_network_equals_scoring_its_restore_outputs(folders, tmp_path, capsys):
    spec = get_registry("backbones").get("nafnet")
    weights = tmp_path / "tiny-nafnet"
    daclip_kit.save_network(daclip_kit.create_backbone("nafnet", **dict(spec.tiny_config)), weights, name="nafnet")
    common = ["--model", "nafnet", "--weights", str(weights), "--device", "cpu"]
    assert main(["restore", str(folders / "pred"), "-o", str(tmp_path / "restored"), *common]) == 0
    capsys.readouterr()
    assert main(["score", "--gt", str(folders / "gt"), "--pred", str(tmp_path / "restored"),
                 "--metrics", "psnr,ssim", "--json"]) == 0
    from_files = json.loads(capsys.readouterr().out)
    assert main(["score", "--gt", str(folders / "gt"), "--lq", str(folders / "pred"), *common,
                 "--metrics", "psnr,ssim", "--json"]) == 0
    direct = json.loads(capsys.readouterr().out)
    assert direct["restored_by"]["model"] == "nafnet" and direct["restored_by"]["network_weights"] == str(weights)
    assert from_files["restored_by"] is None
    for metric in ("psnr", "ssim"):
        assert direct["metrics"][metric] == pytest.approx(from_files["metrics"][metric], abs=1e-9)
    assert [r["image"] for r in direct["images"]] == ["im0.png", "im1.png", "im2.png"]
    # the table output and its errors
    assert main(["score", "--gt", str(folders / "gt"), "--pred", str(folders / "pred"), "--metrics", "psnr",
                 "--per-image"]) == 0
    out = capsys.readouterr().out
    assert "im1.png: psnr 32.5" in out and "3 image(s): psnr 32.5" in out
    assert main(["score", "--gt", str(folders / "gt"), "--pred", str(folders / "pred"), "--limit", "0"]) == 1
    assert "--limit" in capsys.readouterr().err


def test_every_weights_dir_is_searched_for_the_lpips_and_fid_networks(tmp_path, monkeypatch):
    from daclip_kit.bench.spec import MetricProtocol
    from daclip_kit.metrics import inception, perceptual
    from daclip_kit.metrics.meters import MeterContext, make_meter
    from daclip_kit.weights import fetch, get_weight_spec

    monkeypatch.setenv("DACLIP_KIT_CACHE", str(tmp_path / "empty-cache"))
    monkeypatch.setattr(fetch, "_size_problem", lambda spec, path: "")  # stand-in files, not the real sizes
    first, second = tmp_path / "a", tmp_path / "b"
    first.mkdir()
    second.mkdir()
    files = [second / get_weight_spec(name).filename for name in ("lpips-alexnet", "fid-inception")]
    for f in files:
        f.write_bytes(b"stand-in")
    loaded = []
    for module in (perceptual, inception):
        monkeypatch.setattr(module, "_load", lambda path, device: loaded.append(path) or object())
    context = MeterContext(MetricProtocol(), search_dirs=[first, second])  # score --weights-dir a --weights-dir b
    make_meter("lpips", context)
    make_meter("fid", context)
    assert loaded == [str(f) for f in files]


def test_a_file_given_as_pred_says_a_folder_is_expected(folders, capsys):
    file = folders / "pred" / "im0.png"
    assert main(["score", "--gt", str(folders / "gt"), "--pred", str(file), "--metrics", "psnr"]) == 1
    err = capsys.readouterr().err
    assert "does not exist" not in err
    assert "is a file, but scoring expects a folder of images" in " ".join(err.split())
    assert str(folders / "pred") in " ".join(err.split())
