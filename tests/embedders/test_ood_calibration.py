"""The unknown-degradation calibration as pure functions (hand-computed) and in the model folder."""

from __future__ import annotations

import json
import math
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
    with pytest.raises(ConfigError, match="k goes only with the knn statistic"):
        OodCalibration.from_dict({**data, "k": 3})
    digested = calibrate(VAL, ["noisy"], state_dict_sha256="ab" * 32)
    assert digested.to_dict()["state_dict_sha256"] == "ab" * 32 and "state_dict_sha256" not in cal.to_dict()
    assert OodCalibration.from_dict(digested.to_dict()) == digested
    assert digested.measured_on("ab" * 32) and not digested.measured_on("cd" * 32) and not cal.measured_on("ab" * 32)
    with pytest.raises(ConfigError, match="state_dict_sha256 must be the 64 lowercase hex digits"):
        OodCalibration.from_dict({**data, "state_dict_sha256": "AB" * 32})


def test_the_report_of_one_image():
    cal = calibrate(VAL, ["noisy", "hazy"])
    flagged = unknown_report([0.12, 0.08], ["noisy", "hazy"], cal)
    assert flagged == {"unknown_degradation": True, "ood_score": 0.12, "ood_threshold": pytest.approx(0.14),
                       "ood_statistic": "max_prob"}
    assert unknown_report([0.9, 0.1], ["noisy", "hazy"], cal)["unknown_degradation"] is False
    # other labels than the calibrated ones, or no calibration: no check
    assert unknown_report([0.12, 0.08], ["rainy", "hazy"], cal)["unknown_degradation"] is None
    assert unknown_report([0.12, 0.08], ["noisy", "hazy"], None) == {
        "unknown_degradation": None, "ood_score": 0.12, "ood_threshold": None, "ood_statistic": "max_prob"}
    line = warning_line("a.png", flagged)
    assert "\n" not in line and line.startswith("a.png: looks like none of the model's degradations")
    assert "top probability 0.120 < calibrated threshold 0.140" in line


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


# -- the embedding-space statistics ----------------------------------------------------------------

def clusters(n_per: int, centres: torch.Tensor, spread: float, seed: int) -> tuple[torch.Tensor, list[str]]:
    """``n_per`` noisy unit vectors around each of ``centres`` (rows), with the class name of each."""
    g = torch.Generator().manual_seed(seed)
    rows, names = [], []
    for i, c in enumerate(centres):
        rows.append(torch.nn.functional.normalize(c + spread * torch.randn(n_per, len(c), generator=g), dim=-1))
        names += [f"deg{i}"] * n_per
    return torch.cat(rows), names


def axes(dim: int = 16) -> torch.Tensor:
    return torch.eye(dim)


@pytest.mark.parametrize("statistic", ["knn", "mahalanobis"])
def test_an_unknown_cluster_is_flagged_and_the_known_ones_are_not(statistic):
    from daclip_kit.core.ood import calibrate_embeddings

    known_centres, unknown_centre = axes()[:3], axes()[3:4]
    val, classes = clusters(40, known_centres, 0.08, seed=0)
    cal = calibrate_embeddings(val, classes, ["deg0", "deg1", "deg2"], statistic=statistic, false_alarm=0.05)
    assert cal.statistic == statistic and cal.val_images == 120 and cal.reference_images == 120
    assert cal.val_false_alarm == pytest.approx(0.05, abs=0.02)  # each val image scored without itself
    fresh_known, _ = clusters(100, known_centres, 0.08, seed=1)
    unknown, _ = clusters(100, unknown_centre, 0.08, seed=2)
    known_flagged = flag_rate(cal.scores(fresh_known), cal.threshold, higher=True)
    unknown_flagged = flag_rate(cal.scores(unknown), cal.threshold, higher=True)
    assert known_flagged <= 0.12 and unknown_flagged == 1.0
    # a point far from every known cluster (the opposite of a known centre) is flagged
    assert cal.flags(cal.scores(-known_centres[:1])[0])
    # the report of one image: the distance, flagged above the threshold
    report = unknown_report([0.5, 0.3, 0.2], ["deg0", "deg1", "deg2"], cal, unknown[0])
    assert report["unknown_degradation"] is True and report["ood_statistic"] == statistic
    assert report["ood_score"] > report["ood_threshold"] == pytest.approx(cal.threshold, abs=1e-6)
    assert unknown_report([0.5, 0.3, 0.2], ["deg0", "deg1", "deg2"], cal, fresh_known[0])["unknown_degradation"] in (
        False, True)
    # without the embedding (or for other labels) an embedding calibration gives no verdict
    assert unknown_report([0.5, 0.3, 0.2], ["deg0", "deg1", "deg2"], cal)["unknown_degradation"] is None
    assert unknown_report([0.5, 0.5], ["deg0", "x"], cal, unknown[0])["unknown_degradation"] is None
    line = warning_line("a.png", report)
    assert "degradation-embedding space" in line and ">" in line and "\n" not in line


def test_knn_distances_by_hand():
    from daclip_kit.core.ood import knn_scores

    angles = torch.tensor([0.0, 0.1, 0.3, 1.0])
    bank = torch.stack([angles.cos(), angles.sin()], dim=1)
    chord = lambda a, b: 2 * math.sin(abs(a - b) / 2)  # noqa: E731 (distance of two unit vectors)
    query = torch.tensor([[math.cos(0.05), math.sin(0.05)]]) * 3.0  # normalised before measuring
    assert knn_scores(query, bank, 1).item() == pytest.approx(chord(0.05, 0.0), abs=1e-6)
    assert knn_scores(query, bank, 3).item() == pytest.approx(chord(0.05, 0.3), abs=1e-6)
    loo = knn_scores(bank, bank, 1, leave_one_out=True)  # each point's nearest other point
    assert loo.tolist() == pytest.approx([chord(0, .1), chord(.1, 0), chord(.3, .1), chord(1, .3)], abs=1e-6)
    with pytest.raises(ConfigError, match=r"1 <= k <= 3"):
        knn_scores(bank, bank, 4, leave_one_out=True)


def test_mahalanobis_is_shrunk_and_uses_the_shared_covariance():
    from daclip_kit.core.ood import fit_mahalanobis, mahalanobis_scores

    # fewer images than dimensions: the sample covariance is singular, the shrunk one is not
    x, classes = clusters(4, axes(32)[:2], 0.05, seed=3)
    state = fit_mahalanobis(x, classes)
    assert state["means"].shape == (2, 32) and state["precision"].shape == (32, 32)
    assert torch.isfinite(state["precision"]).all()
    assert torch.allclose(state["precision"], state["precision"].T)
    # stretched along one axis: a step along it costs less than the same step across it
    g = torch.Generator().manual_seed(4)
    base = torch.zeros(400, 4)
    base[:, 0] = 1.0
    base[:, 1] = 0.3 * torch.randn(400, generator=g)
    base[:, 2] = 0.02 * torch.randn(400, generator=g)
    state = fit_mahalanobis(base, ["a"] * 400)
    along, across = torch.tensor([[1.0, 0.2, 0.0, 0.0]]), torch.tensor([[1.0, 0.0, 0.2, 0.0]])
    assert mahalanobis_scores(along, **state).item() < mahalanobis_scores(across, **state).item()


def test_an_embedding_calibration_round_trips_with_its_state():
    from daclip_kit.core.ood import STATE_FILE, calibrate_embeddings, check_state

    val, classes = clusters(10, axes(8)[:2], 0.1, seed=5)
    cal = calibrate_embeddings(val, classes, ["deg0", "deg1"], k=2)
    data = json.loads(json.dumps(cal.to_dict()))
    assert data["statistic"] == "knn" and data["k"] == 2 and len(data["state_sha256"]) == 64
    assert cal.description == "k-NN distance (k=2) in the degradation-embedding space"
    assert "bank" not in json.dumps(data)  # the state is not in config.json
    back = OodCalibration.from_dict(data, state=cal.state)
    assert back == cal and torch.equal(back.state["bank"], cal.state["bank"])
    assert back.scores(val[:3]) == pytest.approx(cal.scores(val[:3]))
    with pytest.raises(ConfigError, match="not the one the calibration was measured with"):
        OodCalibration.from_dict(data, state={"bank": cal.state["bank"] * 0.5})
    with pytest.raises(ConfigError, match=r"k must be a positive whole number"):
        OodCalibration.from_dict({**data, "k": 0})
    with pytest.raises(ConfigError, match="state_sha256 is missing"):
        OodCalibration.from_dict({k: v for k, v in data.items() if k != "state_sha256"})
    with pytest.raises(ConfigError, match="holds the tensors bank"):
        check_state("knn", {"means": cal.state["bank"]})
    with pytest.raises(ConfigError, match="do not fit 16-dimensional"):
        check_state("knn", cal.state, dim=16)
    without_state = OodCalibration.from_dict(data)
    with pytest.raises(ConfigError, match=STATE_FILE):
        without_state.scores(val[:1])
    assert unknown_report([1.0], ["deg0", "deg1"], without_state, val[0])["unknown_degradation"] is None
    # an older max_prob calibration reads as it did, and scores probabilities
    old = {"statistic": "max_prob", "threshold": 0.4, "false_alarm_target": 0.05, "val_false_alarm": 0.05,
           "val_images": 20, "labels": ["deg0", "deg1"], "detection": {}}
    legacy = OodCalibration.from_dict(old)
    assert legacy.statistic == "max_prob" and not legacy.uses_embedding and legacy.to_dict() == old
    assert unknown_report([0.3, 0.7], ["deg0", "deg1"], legacy, val[0])["unknown_degradation"] is False
    assert unknown_report([0.35, 0.35], ["deg0", "deg1"], legacy)["ood_statistic"] == "max_prob"


def embedding_calibration(model, statistic: str = "knn"):
    """A calibration of ``model``'s degradation embeddings of random images (labelled by halves)."""
    from daclip_kit.core.ood import calibrate_embeddings

    torch.manual_seed(6)
    with torch.no_grad():
        emb = model.encode_image(torch.randn(12, 3, 32, 32), control=True, normalize=True).degradation
    return calibrate_embeddings(emb, ["noisy"] * 6 + ["hazy"] * 6, ["noisy", "hazy"], statistic=statistic,
                                state_dict_sha256=state_dict_sha256(model))


@pytest.mark.parametrize("statistic", ["knn", "mahalanobis"])
def test_an_embedding_calibration_lives_in_the_model_folder(tmp_path, statistic, caplog):
    from safetensors.torch import load_file, save_file

    from daclip_kit import create_embedder
    from daclip_kit.core.ood import STATE_FILE
    from daclip_kit.embedders.daclip.convert import folder_files, save_daclip
    from daclip_kit.train.calibrate import write_calibrated

    model = perturbed_daclip(seed=7)
    cal = embedding_calibration(model, statistic)
    folder = write_calibrated(model, cal, tmp_path / "calibrated")
    assert sorted(p.name for p in folder.iterdir()) == ["config.json", "model.safetensors", STATE_FILE]
    assert folder_files(folder) == ("config.json", "model.safetensors", STATE_FILE)  # what a copy must take
    stored = load_file(str(folder / STATE_FILE))
    assert set(stored) == set(cal.state) and all(torch.equal(stored[k], cal.state[k]) for k in stored)
    emb = create_embedder("daclip", weights=str(folder), device="cpu")
    assert emb.ood_calibration == cal and emb.ood_calibration is emb.ood_calibration  # parsed once
    image = torch.rand(1, 3, 32, 32)
    with torch.no_grad():
        row = emb.degradation_report(image)[0]
        expected = cal.scores(emb.classify(image).embeddings)[0]
    assert row["ood_statistic"] == statistic and row["unknown_degradation"] == (expected > cal.threshold)
    assert row["ood_score"] == pytest.approx(expected, abs=1e-5)

    # saved again (e.g. by a restorer's checkpoint) the state goes with it; overwritten uncalibrated, it goes
    again = save_daclip(emb.model, tmp_path / "again")
    assert create_embedder("daclip", weights=str(again), device="cpu").ood_calibration == cal
    emb.model.ood = emb.model.ood_state = None
    save_daclip(emb.model, again, overwrite=True)
    assert not (again / STATE_FILE).exists() and folder_files(again) == ("config.json", "model.safetensors")

    # a folder whose state file is missing or is another one loads uncalibrated, with one warning each
    for damage, message in [(lambda: save_file({k: v + 0.01 for k, v in stored.items()}, str(folder / STATE_FILE)),
                             "not the one the calibration was measured with"),
                            (lambda: (folder / STATE_FILE).unlink(), "which is missing")]:
        damage()
        caplog.clear()
        broken = create_embedder("daclip", weights=str(folder), device="cpu")
        assert broken.ood_calibration is None
        with torch.no_grad():
            assert broken.degradation_report(image)[0]["unknown_degradation"] is None
        warnings = [r.getMessage() for r in caplog.records if "uncalibrated" in r.getMessage()]
        assert len(warnings) == 1 and message in warnings[0] and "--calibrate" in warnings[0]


def test_an_embedding_calibration_of_other_weights_or_without_state_is_not_saved(tmp_path, caplog):
    from daclip_kit import create_embedder
    from daclip_kit.core.ood import STATE_FILE
    from daclip_kit.embedders.daclip.convert import save_daclip
    from daclip_kit.train.calibrate import write_calibrated

    model = perturbed_daclip(seed=8)
    cal = embedding_calibration(model)
    write_calibrated(model, cal, tmp_path / "calibrated")
    with torch.no_grad():
        model.visual_control.conv1.weight[0, 0, 0, 0] += 0.01  # other weights: the calibration does not hold
    caplog.clear()
    save_daclip(model, tmp_path / "changed")
    assert "ood" not in json.loads((tmp_path / "changed" / "config.json").read_text())["config"]
    assert not (tmp_path / "changed" / STATE_FILE).exists() and "measured on other weights" in caplog.text
    # a folder whose config.ood names other weights loads uncalibrated (its state file notwithstanding)
    folder = tmp_path / "calibrated"
    config = json.loads((folder / "config.json").read_text())
    config["config"]["ood"]["state_dict_sha256"] = state_dict_sha256(model)
    (folder / "config.json").write_text(json.dumps(config))
    assert create_embedder("daclip", weights=str(folder), device="cpu").ood_calibration is None
    # a knn calibration set on a model without its state is dropped on saving, with a warning
    fresh = perturbed_daclip(seed=9)
    fresh.ood, fresh.ood_state = replace(embedding_calibration(fresh), state=None).to_dict(), None
    caplog.clear()
    save_daclip(fresh, tmp_path / "stateless")
    assert "ood" not in json.loads((tmp_path / "stateless" / "config.json").read_text())["config"]
    assert "no reference state" in caplog.text


def test_the_demo_says_what_the_score_is():
    from daclip_kit.demo.core import unknown_note

    knn = {"unknown_degradation": True, "ood_score": 0.91, "ood_threshold": 0.7, "ood_statistic": "knn"}
    assert "lies 0.91 from the ones it knows (k-NN distance), beyond its calibrated 0.70" in unknown_note(knn)
    old = {"unknown_degradation": True, "ood_score": 0.3, "ood_threshold": 0.45, "ood_statistic": "max_prob"}
    assert "top probability 30%, below its calibrated 45%" in unknown_note(old)
    assert unknown_note({**knn, "unknown_degradation": False}) == ""


def photo_clusters(n_per: int, degradations: torch.Tensor, photo: torch.Tensor, seed: int):
    """``n_per`` images of each degradation centre taken from one photo: the photo's content moves
    them all by the same offset (as a tiny model's embedding does), plus a little noise."""
    g = torch.Generator().manual_seed(seed)
    rows, names = [], []
    for i, c in enumerate(degradations):
        rows.append(torch.nn.functional.normalize(c + photo + 0.02 * torch.randn(n_per, len(c), generator=g), dim=-1))
        names += [f"deg{i}"] * n_per
    return torch.cat(rows), names


@pytest.mark.parametrize("statistic", ["knn", "mahalanobis"])
def test_leaving_whole_photos_out_keeps_the_false_alarm_on_a_new_photo(statistic):
    from daclip_kit.core.ood import calibrate_embeddings

    e = axes()
    known = e[:3]
    photos = [0.5 * e[8], 0.5 * e[9], 0.5 * e[10]]  # equally far apart: the third is "the user's photo"
    parts = [photo_clusters(10, known, photos[p], seed=p) for p in (0, 1)]
    val = torch.cat([x for x, _ in parts])
    classes = [c for _, names in parts for c in names]
    groups = ["flower"] * 30 + ["grace_hopper"] * 30
    words = ["deg0", "deg1", "deg2"]
    by_image = calibrate_embeddings(val, classes, words, statistic=statistic)
    by_photo = calibrate_embeddings(val, classes, words, statistic=statistic, groups=groups)
    assert by_image.val_groups is None and by_photo.val_groups == 2
    assert by_photo.threshold > 3 * by_image.threshold  # the spread between photos, not within one
    new_photo, _ = photo_clusters(20, known, photos[2], seed=7)
    assert flag_rate(by_image.scores(new_photo), by_image.threshold, higher=True) == 1.0  # its content alone
    # (Mahalanobis less so: the covariance of two photos has no spread along a third photo's offset)
    assert flag_rate(by_photo.scores(new_photo), by_photo.threshold, higher=True) <= (
        0.2 if statistic == "knn" else 0.6)
    unknown, _ = photo_clusters(20, e[3:4], photos[2], seed=8)  # an unseen degradation on the new photo
    assert flag_rate(by_photo.scores(unknown), by_photo.threshold, higher=True) == 1.0
    # recorded, read back strictly
    data = json.loads(json.dumps(by_photo.to_dict()))
    assert data["val_groups"] == 2 and "val_groups" not in by_image.to_dict()
    assert OodCalibration.from_dict(data, state=by_photo.state) == by_photo
    with pytest.raises(ConfigError, match="val_groups must be a whole number of at least 2"):
        OodCalibration.from_dict({**data, "val_groups": 1})
    # one photo: nothing beyond the image itself to leave out
    assert calibrate_embeddings(val, classes, words, statistic=statistic, groups=["flower"] * 60) == by_image
    with pytest.raises(ConfigError, match="one source photo per val embedding"):
        calibrate_embeddings(val, classes, words, statistic=statistic, groups=groups[:-1])


def test_knn_leaves_the_whole_photo_out_by_hand():
    from daclip_kit.core.ood import knn_scores

    angles = torch.tensor([0.0, 0.1, 0.3, 1.0])
    bank = torch.stack([angles.cos(), angles.sin()], dim=1)
    chord = lambda a, b: 2 * math.sin(abs(a - b) / 2)  # noqa: E731
    grouped = knn_scores(bank, bank, 1, leave_one_out=True, groups=["a", "a", "b", "b"])
    assert grouped.tolist() == pytest.approx([chord(0, .3), chord(.1, .3), chord(.3, .1), chord(1, .1)], abs=1e-6)
    with pytest.raises(ConfigError, match=r"1 <= k <= 2 \(the reference images outside the scored image's photo"):
        knn_scores(bank, bank, 3, leave_one_out=True, groups=["a", "a", "b", "b"])


def test_the_mini_sets_names_tell_the_photo(tmp_path):
    from daclip_kit.data.mini import mini_stem, source_photo, source_photos

    assert source_photo(tmp_path / f"{mini_stem('grace_hopper', 'val', 49)}.png") == "grace_hopper"
    assert source_photo("x/LQ/coffee_train_0004.png") == "coffee"
    assert source_photo("rain-001.png") is None and source_photo("photo_val_1.png") is None
    assert source_photos(["a_val_0001.png", "b_val_0002.png", "a_val_0003.png"]) == ["photo:a", "photo:b", "photo:a"]
    # a user's own pairs beside the mini set's: each image a group of its own
    assert source_photos(["a_val_0001.png", "img.png", "other.png"]) == ["photo:a", "image:img.png", "image:other.png"]
    assert source_photos(["img.png", "other.png"]) is None
