"""The unknown-degradation calibration as pure functions (hand-computed) and in the model folder."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from tempfile import TemporaryDirectory

import pytest
import torch
from _embedders_testutil import perturbed_daclip

from daclip_kit.checkpoint import state_dict_sha256
from daclip_kit.core.ood import OodCalibration, calibrate, flag_rate, quantile, unknown_report, warning_line
from daclip_kit.errors import ConfigError

VAL = [0.9, 0.1, 0.5, 0.3, 0.7]  # sorted: 0.1 0.3 0.5 0.7 0.9


@pytest.mark.parametrize(("q", "expected"), [
    (0.05, 0.14),   # position 0.05 * 4 = 0.2: 0.1 + 0.2 * (0.3 - 0.1)
    (0.25, 0.3),    # position 1: the second smallest
    (0.5, 0.5),
    (0.6, 0.58),    # position 2.4: 0.5 + 0.4 * 0.2
    (0.0, 0.1),
    (1.0, 0.9),
])
def test_quantile_interpolates_between_order_statistics(q, expected):
    assert quantile(VAL, q) == pytest.approx(expected, abs=1e-12)


def test_calibration_flags_the_chosen_share_of_val():
    cal = calibrate(VAL, ["noisy", "hazy"], false_alarm=0.05, detection={"clean": [0.05, 0.2, 0.95]})
    assert cal.threshold == pytest.approx(0.14)
    assert cal.val_false_alarm == pytest.approx(0.2)  # only 0.1 < 0.14: one image of five
    assert cal.val_images == 5 and cal.labels == ("noisy", "hazy") and cal.false_alarm_target == 0.05
    assert cal.detection == {"clean": pytest.approx(0.3333, abs=1e-4)}  # 0.05 of 0.05, 0.2, 0.95
    assert cal.flags(0.13) and not cal.flags(0.14)
    half = calibrate(VAL, ["noisy"], false_alarm=0.5)
    assert half.threshold == pytest.approx(0.5) and half.val_false_alarm == pytest.approx(0.4)
    assert flag_rate([0.2, 0.4, 0.6, 0.8], 0.5) == 0.5


def test_bad_scores_or_rates_are_refused():
    with pytest.raises(ConfigError, match="no scores"):
        quantile([], 0.05)
    with pytest.raises(ConfigError, match="NaN"):
        quantile([0.5, float("nan")], 0.05)
    with pytest.raises(ConfigError, match=r"\[0, 1\]"):
        quantile(VAL, 1.5)


def test_round_trip_and_strict_reading():
    cal = calibrate(VAL, ["noisy", "hazy"], detection={"clean": [0.05]})
    assert OodCalibration.from_dict(json.loads(json.dumps(cal.to_dict()))) == cal
    data = cal.to_dict()
    with pytest.raises(ConfigError, match="unknown key 'treshold'"):
        OodCalibration.from_dict({**data, "treshold": 0.3})
    with pytest.raises(ConfigError, match="threshold must be a finite number"):
        OodCalibration.from_dict({**data, "threshold": "high"})
    with pytest.raises(ConfigError, match="labels must be a non-empty list"):
        OodCalibration.from_dict({**data, "labels": []})
    with pytest.raises(ConfigError, match="statistic"):
        OodCalibration.from_dict({**data, "statistic": "entropy"})
    digested = calibrate(VAL, ["noisy"], state_dict_sha256="ab" * 32)
    assert digested.to_dict()["state_dict_sha256"] == "ab" * 32 and "state_dict_sha256" not in cal.to_dict()
    assert OodCalibration.from_dict(digested.to_dict()) == digested
    assert digested.measured_on("ab" * 32) and not digested.measured_on("cd" * 32) and not cal.measured_on("ab" * 32)
    with pytest.raises(ConfigError, match="state_dict_sha256 must be the 64 lowercase hex digits"):
        OodCalibration.from_dict({**data, "state_dict_sha256": "AB" * 32})


def test_the_report_of_one_image():
    cal = calibrate(VAL, ["noisy", "hazy"])
    flagged = unknown_report([0.12, 0.08], ["noisy", "hazy"], cal)
    assert flagged == {"unknown_degradation": True, "ood_score": 0.12, "ood_threshold": pytest.approx(0.14)}
    assert unknown_report([0.9, 0.1], ["noisy", "hazy"], cal)["unknown_degradation"] is False
    # other labels than the calibrated ones, or no calibration: no check
    assert unknown_report([0.12, 0.08], ["rainy", "hazy"], cal)["unknown_degradation"] is None
    assert unknown_report([0.12, 0.08], ["noisy", "hazy"], None) == {
        "unknown_degradation": None, "ood_score": 0.12, "ood_threshold": None}
    line = warning_line("a.png", flagged)
    assert "\n" not in line and line.startswith("a.png: looks like none of the model's degradations")


def test_the_calibration_is_written_into_the_model_folder(tmp_path):
    from daclip_kit import create_embedder
    from daclip_kit.train.calibrate import write_calibrated

    cal = calibrate(VAL, ["noisy", "underwater"], false_alarm=0.05)
    write_calibrated(perturbed_daclip(seed=2), cal, tmp_path / "calibrated")
    cfg = json.loads((tmp_path / "calibrated" / "config.json").read_text())
    assert cfg["config"]["ood"]["threshold"] == pytest.approx(0.14)
    assert cfg["config"]["ood"]["val_false_alarm"] == pytest.approx(0.2)
    assert cfg["config"]["degradations"] == ["noisy", "underwater"]
    emb = create_embedder("daclip", weights=str(tmp_path / "calibrated"), device="cpu")
    # the calibration made from scores is written with the digest of the weights it was written beside
    assert cfg["config"]["ood"]["state_dict_sha256"] == state_dict_sha256(emb.model)
    assert emb.ood_calibration == replace(cal, state_dict_sha256=state_dict_sha256(emb.model))
    assert emb.degradations == ("noisy", "underwater")


def test_the_weights_digest_is_that_of_the_values():
    from daclip_kit.embedders.daclip.convert import load_daclip, save_daclip

    model = perturbed_daclip(seed=3)
    digest = state_dict_sha256(model)
    assert len(digest) == 64 and set(digest) <= set("0123456789abcdef")
    assert state_dict_sha256(model) == digest == state_dict_sha256(perturbed_daclip(seed=3))  # deterministic
    assert state_dict_sha256(model.state_dict()) == digest
    assert state_dict_sha256(dict(reversed(model.state_dict().items()))) == digest  # key order does not matter
    assert state_dict_sha256(perturbed_daclip(seed=4)) != digest
    with TemporaryDirectory() as tmp:
        save_daclip(model, Path(tmp) / "daclip")
        reloaded = load_daclip(Path(tmp) / "daclip")  # aliases stored once, read back into both keys
    assert state_dict_sha256(reloaded) == digest
    with torch.no_grad():
        reloaded.visual_control.transformer.zero_modules[0].bias[0] += 1e-6  # one value of one tensor
    assert state_dict_sha256(reloaded) != digest
    state = model.state_dict()
    assert state_dict_sha256({**state, "logit_scale": state["logit_scale"].double()}) != digest  # dtype counts
    assert state_dict_sha256({**state, "logit_scale": state["logit_scale"].reshape(1)}) != digest  # shape counts


def test_a_calibration_of_other_weights_is_neither_written_nor_applied(tmp_path, caplog):
    from daclip_kit import create_embedder
    from daclip_kit.embedders.daclip.convert import save_daclip
    from daclip_kit.train.calibrate import write_calibrated

    model = perturbed_daclip(seed=5)
    cal = calibrate(VAL, ["noisy", "hazy"], state_dict_sha256=state_dict_sha256(model))
    write_calibrated(model, cal, tmp_path / "calibrated")
    with torch.no_grad():
        model.visual_control.conv1.weight[0, 0, 0, 0] += 0.01  # the weights change, the calibration stays
    with pytest.raises(ConfigError, match="measured on other weights"):
        write_calibrated(model, cal, tmp_path / "refused")
    assert not (tmp_path / "refused").exists()
    caplog.clear()
    save_daclip(model, tmp_path / "changed")
    assert "ood" not in json.loads((tmp_path / "changed" / "config.json").read_text())["config"]
    assert "calibration was measured on other weights" in caplog.text and "--calibrate" in caplog.text
    assert model.ood is not None  # the model in memory is not changed by saving it
    assert create_embedder("daclip", weights=str(tmp_path / "changed"), device="cpu").ood_calibration is None

    # a folder whose config.ood names other weights (copied from another model) loads uncalibrated, with a warning
    folder = tmp_path / "calibrated"
    image = torch.rand(1, 3, 32, 32)
    with torch.no_grad():
        assert create_embedder("daclip", weights=str(folder), device="cpu").degradation_report(image)[0][
            "unknown_degradation"] in (True, False)  # its own weights: calibrated
    config = json.loads((folder / "config.json").read_text())
    config["config"]["ood"]["state_dict_sha256"] = state_dict_sha256(model)
    (folder / "config.json").write_text(json.dumps(config))
    caplog.clear()
    emb = create_embedder("daclip", weights=str(folder), device="cpu")
    assert emb.ood_calibration is None
    with torch.no_grad():
        assert emb.degradation_report(image)[0]["unknown_degradation"] is None
    warnings = [r for r in caplog.records if "measured on other weights" in r.getMessage()]
    assert len(warnings) == 1 and str(folder) in warnings[0].getMessage()

    # an older folder's calibration (no digest) is kept, unverified
    del config["config"]["ood"]["state_dict_sha256"]
    (folder / "config.json").write_text(json.dumps(config))
    older = create_embedder("daclip", weights=str(folder), device="cpu").ood_calibration
    assert older == replace(cal, state_dict_sha256=None)
