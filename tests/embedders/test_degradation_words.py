"""A DA-CLIP knows its own degradation words: recorded in its folder, the default labels of
``classify`` (CLI and API), ``restore``'s report and ``bench``; the released files know the ten."""

from __future__ import annotations

import copy
import json
import shutil
import types

import pytest
import torch
from _embedders_testutil import official_checkpoint, perturbed_daclip, tiny_config

import daclip_kit
from daclip_kit.cli.main import main
from daclip_kit.embedders.daclip.convert import save_daclip
from daclip_kit.errors import CheckpointError
from daclip_kit.types import DEGRADATIONS

#: The ten words plus a new one, in a training label order that is not the official one.
ELEVEN = ("underwater", *sorted(DEGRADATIONS))


@pytest.fixture(scope="module")
def network():
    return perturbed_daclip(seed=7)


@pytest.fixture(scope="module")
def folders(tmp_path_factory, network):
    """``{"eleven": folder recording ELEVEN, "plain": folder recording nothing, "image": a PNG}``."""
    from daclip_kit.io import write_image

    base = tmp_path_factory.mktemp("words")
    model = copy.deepcopy(network)
    model.degradations = ELEVEN
    save_daclip(model, base / "eleven")
    save_daclip(copy.deepcopy(network), base / "plain")
    image = base / "imgs" / "photo.png"
    write_image(image, torch.rand(1, 3, 40, 48, generator=torch.Generator().manual_seed(0)))
    return {"eleven": base / "eleven", "plain": base / "plain", "image": image}


def run_json(capsys, argv):
    capsys.readouterr()
    assert main(argv) == 0
    return json.loads(capsys.readouterr().out)


def direct_probs(network, image, labels):
    """Probabilities of ``labels`` computed from the network itself (not through the CLI or API)."""
    from daclip_kit.embedders.daclip.provider import DaClipConfig, DaClipEmbedder
    from daclip_kit.io import read_image

    emb = DaClipEmbedder(DaClipConfig(device="cpu"), network=copy.deepcopy(network))
    with torch.no_grad():
        probs = emb.classify(read_image(image), list(labels)).probs[0]
    return dict(zip(labels, probs.tolist(), strict=True))


def test_the_folder_records_the_words_in_order(folders):
    cfg = json.loads((folders["eleven"] / "config.json").read_text())
    assert cfg["config"]["degradations"] == list(ELEVEN)
    plain = json.loads((folders["plain"] / "config.json").read_text())
    assert "degradations" not in plain["config"]


def test_cli_classify_lists_the_new_word_by_default(folders, network, capsys):
    rows = run_json(capsys, ["classify", str(folders["image"]), "--weights", str(folders["eleven"]),
                             "--top-k", "11", "--device", "cpu", "--json"])
    got = {t["label"]: t["prob"] for t in rows[0]["top_k"]}
    assert set(got) == set(ELEVEN) and "underwater" in got
    want = direct_probs(network, folders["image"], ELEVEN)
    assert got == pytest.approx(want, abs=1e-5)
    assert rows[0]["unknown_degradation"] is None  # not calibrated: no check, and said so


def test_api_classify_uses_the_models_words(folders, network):
    probs = daclip_kit.classify(str(folders["image"]), weights=folders["eleven"], device="cpu")
    assert set(probs) == set(ELEVEN)
    assert probs == pytest.approx(direct_probs(network, folders["image"], ELEVEN), abs=1e-5)
    emb = daclip_kit.create_embedder("daclip", weights=str(folders["eleven"]), device="cpu")
    assert emb.degradations == ELEVEN


def test_labels_file_still_overrides(folders, network, tmp_path, capsys):
    labels = tmp_path / "labels.txt"
    labels.write_text("snowy\nunderwater\n")
    rows = run_json(capsys, ["classify", str(folders["image"]), "--weights", str(folders["eleven"]),
                             "--labels", str(labels), "--top-k", "5", "--device", "cpu", "--json"])
    got = {t["label"]: t["prob"] for t in rows[0]["top_k"]}
    assert got == pytest.approx(direct_probs(network, folders["image"], ("snowy", "underwater")), abs=1e-5)
    probs = daclip_kit.classify(str(folders["image"]), weights=folders["eleven"], labels=["hazy", "noisy"],
                                device="cpu")
    assert set(probs) == {"hazy", "noisy"}


def test_an_official_file_knows_the_ten(network, tmp_path, capsys):
    path = tmp_path / "daclip_tiny.pt"
    torch.save(official_checkpoint(network.state_dict()), path)
    emb = daclip_kit.create_embedder("daclip", weights=str(path), model_config=tiny_config(), device="cpu")
    assert emb.degradations == DEGRADATIONS
    (tmp_path / "tiny.json").write_text(json.dumps(tiny_config()))
    assert main(["convert", str(path), str(tmp_path / "native"), "--config", str(tmp_path / "tiny.json")]) == 0
    cfg = json.loads((tmp_path / "native" / "config.json").read_text())
    assert cfg["config"]["degradations"] == list(DEGRADATIONS)
    img = tmp_path / "img.png"
    daclip_kit.io.write_image(img, torch.rand(1, 3, 32, 32, generator=torch.Generator().manual_seed(1)))
    rows = run_json(capsys, ["classify", str(img), "--weights", str(tmp_path / "native"), "--top-k", "20",
                             "--device", "cpu", "--json"])
    assert sorted(t["label"] for t in rows[0]["top_k"]) == sorted(DEGRADATIONS)


def test_folders_without_words_give_the_ten(folders, network, tmp_path, capsys):
    rows = run_json(capsys, ["classify", str(folders["image"]), "--weights", str(folders["plain"]),
                             "--top-k", "20", "--device", "cpu", "--json"])
    assert [t["label"] for t in rows[0]["top_k"]] and {t["label"] for t in rows[0]["top_k"]} == set(DEGRADATIONS)
    # the oldest folders: a flat {"kind": "daclip", "model_config": ...} config.json
    old = tmp_path / "old"
    old.mkdir()
    shutil.copy(folders["plain"] / "model.safetensors", old / "model.safetensors")
    (old / "config.json").write_text(json.dumps({"kind": "daclip", "model_config": tiny_config()}))
    emb = daclip_kit.create_embedder("daclip", weights=str(old), device="cpu")
    assert emb.degradations == DEGRADATIONS and emb.ood_calibration is None


@pytest.mark.parametrize("words", ["noisy", [], ["noisy", "noisy"], ["noisy", ""], [3]])
def test_bad_words_are_refused_in_one_line(folders, tmp_path, words):
    bad = tmp_path / "bad"
    shutil.copytree(folders["plain"], bad)
    cfg = json.loads((bad / "config.json").read_text())
    cfg["config"]["degradations"] = words
    (bad / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(CheckpointError, match="'degradations' must be a non-empty list of distinct words") as info:
        daclip_kit.create_embedder("daclip", weights=str(bad), device="cpu")
    assert "\n" not in str(info.value)


def test_restore_reports_the_models_own_word(folders, network, tiny_models, tmp_path, capsys):
    summary = run_json(capsys, ["restore", str(folders["image"]), "-o", str(tmp_path / "out"), "--model",
                                "irsde-universal", "--weights", str(tiny_models["weights"]), "--embedder-weights",
                                str(folders["eleven"]), "--steps", "1", "--device", "cpu", "--json"])
    (record,) = summary["images"]
    probs = direct_probs(network, folders["image"], ELEVEN)
    best = max(probs, key=probs.get)
    assert record["degradation"] == best and record["probability"] == pytest.approx(probs[best], abs=1e-5)
    assert record["unknown_degradation"] is None


def test_bench_classifies_into_the_models_words(folders, network, tmp_path):
    """A Table-2-type accuracy row over a data set named after the new word."""
    from daclip_kit.bench.plan import BenchOptions
    from daclip_kit.bench.runner import _classification_row, build_classifier
    from daclip_kit.bench.spec import MetricProtocol, RowSpec, TableSpec
    from daclip_kit.io import write_image

    root = tmp_path / "bench"
    g = torch.Generator().manual_seed(2)
    for name in ("underwater", "hazy"):
        for i in range(2):
            write_image(root / "val" / name / "LQ" / f"{i}.png", torch.rand(1, 3, 32, 32, generator=g))
    row = RowSpec(label="mine", embedder="daclip", weights=("mine",))

    plan = types.SimpleNamespace(weights={"mine": folders["eleven"]})
    classify = build_classifier(row, plan, BenchOptions(device="cpu"))
    assert classify.degradations == ELEVEN
    table = TableSpec(name="t", title="t", kind="classification", protocol=MetricProtocol(), rows=(row,))
    records: list = []
    values = _classification_row(table, classify, "mine", ["underwater", "hazy"],
                                 BenchOptions(data_root=root, device="cpu"), records, None)
    truth_hits = {"underwater": 0, "hazy": 0}
    for dataset in truth_hits:
        for i in range(2):
            probs = direct_probs(network, root / "val" / dataset / "LQ" / f"{i}.png", ELEVEN)
            truth_hits[dataset] += max(probs, key=probs.get) == dataset
    assert values == {"underwater/accuracy": 50.0 * truth_hits["underwater"],
                      "hazy/accuracy": 50.0 * truth_hits["hazy"]}
    assert len(records) == 4 and {r.values["predicted"] for r in records} <= set(ELEVEN)
