"""The unknown-degradation calibration as pure functions (hand-computed) and in the model folder."""

from __future__ import annotations

import json

import pytest
from _embedders_testutil import perturbed_daclip

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
    assert emb.ood_calibration == cal and emb.degradations == ("noisy", "underwater")
