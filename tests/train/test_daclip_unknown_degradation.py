"""End to end with a tiny DA-CLIP (about 30 s on one CPU core): ``train daclip`` records its words
and calibrates the unknown-degradation check (kNN distance in the degradation-embedding space) on
its val set; ``classify`` then flags images of degradations it never saw, and one far from its
training data (a checkerboard), more often than its val images; ``classify --calibrate`` gives the
same threshold from the saved folder."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch
from _train_testutil import TYPES, daclip_run, mini_root, tiny_daclip_folder

from daclip_kit.cli.main import main
from daclip_kit.config import from_dict
from daclip_kit.errors import ConfigError
from daclip_kit.train.config import DaClipTrainConfig
from daclip_kit.train.daclip import train_daclip

pytestmark = pytest.mark.usefixtures("one_thread")
STEPS = 150


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """``(data root, DA-CLIP folder, val LQ images)`` of a tiny run validated (and calibrated) at its end."""
    from daclip_kit.data.mini import build_mini

    base = tmp_path_factory.mktemp("ood")
    root = base / "universal"
    build_mini(root, size=32, per_type=3, val_per_type=4, composed=0, types=TYPES, seed=0)
    torch.manual_seed(0)
    cfg = from_dict(DaClipTrainConfig, daclip_run(root, base / "run", max_steps=STEPS, save_every=STEPS, log_every=50,
                                                  optim={"lr": 3e-3, "warmup_steps": 2},
                                                  validation={"enabled": True, "every": STEPS}))
    result = train_daclip(cfg)
    return root, result.checkpoint / "daclip", sorted((root / "val").glob("*/LQ/*.png")), result


#: Degradations the tiny model is not trained on (the mini set's other types).
HELD_OUT = ("rainy", "snowy", "uncompleted", "motion-blurry", "raindrop", "shadowed")


@pytest.fixture(scope="module")
def held_out(tmp_path_factory) -> list[Path]:
    """Val LQ images of :data:`HELD_OUT` (4 each), of the same photos as the model's val images."""
    from daclip_kit.data.mini import build_mini

    root = tmp_path_factory.mktemp("held-out") / "universal"
    build_mini(root, size=32, per_type=1, val_per_type=4, composed=0, types=HELD_OUT, seed=0)
    return sorted((root / "val").glob("*/LQ/*.png"))


def far_images(folder: Path) -> list[Path]:
    """High-contrast synthetic patterns: nothing like the photos the model was trained on."""
    from daclip_kit.io import write_image

    idx = torch.arange(32)
    checker = ((idx[:, None] // 4 + idx[None, :] // 4) % 2).float().expand(1, 3, 32, 32)
    stripes = (idx % 2).float().view(1, 1, 1, 32).expand(1, 3, 32, 32)
    paths = [folder / "checker.png", folder / "stripes.png"]
    for path, image in zip(paths, (checker, stripes), strict=True):
        write_image(path, image.contiguous())
    return paths


def classify_json(capsys, argv):
    capsys.readouterr()
    assert main(argv) == 0
    captured = capsys.readouterr()
    return json.loads(captured.out), " ".join(captured.err.split())


def test_training_records_words_and_calibration(trained):
    _root, folder, val, result = trained
    cfg = json.loads((folder / "config.json").read_text())["config"]
    assert cfg["degradations"] == sorted(TYPES)
    ood = cfg["ood"]
    assert ood["labels"] == sorted(TYPES) and ood["val_images"] == len(val) == 16
    assert ood["false_alarm_target"] == 0.05 and ood["statistic"] == "knn" and ood["k"] >= 1
    # the mini set's val images are crops of two photos: each scored without its whole photo
    assert ood["val_groups"] == 2
    # 16 val images, 5%: the threshold lies between the two largest distances, so exactly one is flagged
    assert ood["val_false_alarm"] == pytest.approx(1 / 16)
    # the reference embeddings (the val rows', each scored without itself) live beside the weights
    from safetensors.torch import load_file

    from daclip_kit.core.ood import STATE_FILE

    bank = load_file(str(folder / STATE_FILE))["bank"]
    assert ood["reference_images"] == len(bank) == 16 and bank.shape[1] == 32
    assert torch.allclose(bank.norm(dim=1), torch.ones(16), atol=1e-5)
    assert 0.0 <= ood["detection"]["clean (val GT)"] <= 1.0
    (val_record,) = [r for r in result.history if "val_ood_threshold" in r]
    assert val_record["val_ood_threshold"] == pytest.approx(ood["threshold"])


def test_classify_flags_far_images_but_not_most_val_images(trained, held_out, tmp_path, capsys):
    _, folder, val, _ = trained
    far = far_images(tmp_path)
    rows, err = classify_json(capsys, ["classify", *map(str, val), *map(str, far), *map(str, held_out), "--weights",
                                       str(folder), "--device", "cpu", "--json", "--top-k", "1"])
    by_image = {r["image"]: r for r in rows}  # full paths: held-out files share the val files' names
    threshold = json.loads((folder / "config.json").read_text())["config"]["ood"]["threshold"]
    for r in rows:
        assert set(r) >= {"unknown_degradation", "ood_score", "ood_threshold"}
        assert r["ood_threshold"] == pytest.approx(threshold, abs=1e-6)
        assert r["unknown_degradation"] == (r["ood_score"] > r["ood_threshold"])
        assert r["ood_statistic"] == "knn"
        assert r["top_k"][0]["label"] in TYPES  # the model's own words, not the ten
    flagged_val = sum(by_image[str(p)]["unknown_degradation"] for p in val)
    assert flagged_val <= len(val) // 4
    # degradations it never saw are flagged far more often than its own (this 150-step, 32 px model
    # flags 7 of these 24; a model that classifies well separates them better: docs/daclip.md)
    flagged_held = sum(by_image[str(p)]["unknown_degradation"] for p in held_out)
    assert flagged_held >= len(held_out) // 6 and flagged_held / len(held_out) > 2 * flagged_val / len(val)
    assert by_image[str(far[0])]["unknown_degradation"] is True
    # one-pixel stripes land near its hazy images: further than most val images, not flagged
    val_scores = sorted(by_image[str(p)]["ood_score"] for p in val)
    assert by_image[str(far[1])]["ood_score"] > val_scores[len(val) // 2]
    flagged = sum(r["unknown_degradation"] for r in rows)
    assert err.count("looks like none of the model's degradations") == flagged  # one line per flagged image
    assert "checker.png: looks like none" in err and "k-NN distance in the degradation-embedding space" in err


def test_calibrate_command_reproduces_the_training_threshold(trained, tmp_path, capsys):
    root, folder, _, _ = trained
    before = (folder / "config.json").read_bytes()
    report, _ = classify_json(capsys, ["classify", "--calibrate", str(root), "--weights", str(folder), "--out",
                                       str(tmp_path / "recalibrated"), "--device", "cpu", "--json"])
    assert (folder / "config.json").read_bytes() == before  # the source folder is untouched
    trained_ood = json.loads(before)["config"]["ood"]
    assert math.isclose(report["threshold"], trained_ood["threshold"], abs_tol=1e-4)
    assert report["val_false_alarm"] == trained_ood["val_false_alarm"] and report["val_groups"] == 2
    saved = json.loads((tmp_path / "recalibrated" / "config.json").read_text())["config"]["ood"]
    assert saved["threshold"] == report["threshold"]
    # a stricter rate flags more val images, as asked
    again = tmp_path / "recalibrated"
    report, _ = classify_json(capsys, ["classify", "--calibrate", str(root), "--weights", str(again),
                                       "--false-alarm", "0.5", "--device", "cpu", "--json"])
    # (at most the rate asked: val images that tie at the threshold are not flagged)
    assert 0.375 <= report["val_false_alarm"] <= 0.5 and report["threshold"] < trained_ood["threshold"]


def test_calibrate_never_changes_a_file(trained, tmp_path, capsys):
    root, folder, _, _ = trained
    from daclip_kit.checkpoint import read_pretrained_weights

    released = tmp_path / "daclip.pt"
    torch.save(read_pretrained_weights(folder), released)
    capsys.readouterr()
    assert main(["classify", "--calibrate", str(root), "--weights", str(released), "--device", "cpu"]) == 1
    assert "give --out DIR" in " ".join(capsys.readouterr().err.split())
    with pytest.raises(ConfigError, match="--false-alarm must be between 0 and 1"):
        from argparse import Namespace

        from daclip_kit.cli.classify import run_calibration

        run_calibration(Namespace(inputs=[], embedder="daclip", labels=None, weights=str(folder), out=None,
                                  false_alarm=1.5, calibrate=root))


@pytest.fixture(scope="module")
def calibrated_parent(tmp_path_factory):
    """``(data root, parent folder)``: a tiny DA-CLIP calibrated for the mini set's words with a threshold
    above every score, so that with its own weights it flags every image."""
    from daclip_kit.core.ood import calibrate
    from daclip_kit.embedders.daclip.convert import load_daclip
    from daclip_kit.train.calibrate import write_calibrated

    root = mini_root(tmp_path_factory)
    parent = tmp_path_factory.mktemp("parent") / "daclip"
    write_calibrated(load_daclip(tiny_daclip_folder(tmp_path_factory)), calibrate([1.0], sorted(TYPES)), parent)
    return root, parent


def verdict(folder: Path, image: Path):
    """``unknown_degradation`` of ``image`` classified by the DA-CLIP ``folder`` into its own words."""
    from daclip_kit import create_embedder
    from daclip_kit.io import read_image

    emb = create_embedder("daclip", weights=str(folder), device="cpu")
    with torch.no_grad():
        return emb.degradation_report(read_image(image))[0]["unknown_degradation"]


def continued(root: Path, parent: Path, out: Path, validation: dict):
    """``(DA-CLIP folder, history)`` of one step of ``train daclip --init-from parent``."""
    cfg = from_dict(DaClipTrainConfig, daclip_run(root, out, max_steps=1, save_every=1,
                                                  model={"pretrained": str(parent)}, validation=validation))
    result = train_daclip(cfg)
    return result.checkpoint / "daclip", result.history


def test_a_continued_model_saved_without_validation_is_uncalibrated(calibrated_parent, tmp_path, caplog):
    root, parent = calibrated_parent
    image = sorted((root / "val").glob("*/LQ/*.png"))[0]
    assert verdict(parent, image) is True  # the parent's own verdict, with its own weights
    caplog.clear()
    child, _ = continued(root, parent, tmp_path / "run", {"enabled": False})
    config = json.loads((child / "config.json").read_text())["config"]
    assert config["degradations"] == sorted(TYPES)  # the same words as the parent's calibration ...
    assert "ood" not in config  # ... but not the parent's calibration
    assert verdict(child, image) is None  # uncalibrated: no check, not the parent's verdict
    assert "calibration was not measured on the weights being saved" in caplog.text
    assert "checkpoint is uncalibrated" in caplog.text


@pytest.mark.parametrize("every", [1, 5], ids=["validated-at-the-step", "calibrated-at-save"])
def test_a_continued_model_with_val_data_is_calibrated_on_its_own_weights(calibrated_parent, tmp_path, every):
    from daclip_kit.checkpoint import state_dict_sha256
    from daclip_kit.embedders.daclip.convert import load_daclip

    root, parent = calibrated_parent
    child, history = continued(root, parent, tmp_path / "run", {"enabled": True, "every": every})
    assert any("val_loss" in r for r in history) == (every == 1)  # every 5 steps: no validation in 1 step
    ood = json.loads((child / "config.json").read_text())["config"]["ood"]
    own = state_dict_sha256(load_daclip(child))
    assert ood["state_dict_sha256"] == own != state_dict_sha256(load_daclip(parent))
    assert ood["labels"] == sorted(TYPES) and ood["val_images"] == 4  # measured on the mini set's val images
    assert ood["statistic"] == "knn"  # not the parent's (max_prob) calibration
    image = sorted((root / "val").glob("*/LQ/*.png"))[0]
    assert verdict(child, image) in (True, False)
