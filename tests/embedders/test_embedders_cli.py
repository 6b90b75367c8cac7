"""``daclip-kit classify``, ``convert`` and ``weights`` on tiny models (in process)."""

from __future__ import annotations

import json

import pytest
import torch
from _embedders_testutil import official_checkpoint, perturbed_daclip, tiny_config

from daclip_kit.cli.main import main
from daclip_kit.types import DEGRADATIONS


@pytest.fixture(scope="module")
def network():
    return perturbed_daclip(seed=3)


@pytest.fixture
def image_files(tmp_path):
    from daclip_kit.io import write_image

    g = torch.Generator().manual_seed(0)
    paths = [tmp_path / "imgs" / f"im{i}.png" for i in range(2)]
    for i, p in enumerate(paths):
        write_image(p, torch.rand(1, 3, 40 + 8 * i, 56, generator=g))
    return paths


@pytest.fixture
def official_file(tmp_path, network):
    path = tmp_path / "tiny_daclip.pt"
    torch.save(official_checkpoint(network.state_dict()), path)
    (tmp_path / "tiny.json").write_text(json.dumps(tiny_config()))
    return path


def err_text(capsys) -> str:
    """stderr with rich's line wrapping undone."""
    return " ".join(capsys.readouterr().err.split())


def run_json(capsys, argv):
    capsys.readouterr()
    assert main(argv) == 0
    return json.loads(capsys.readouterr().out)


def test_convert_then_classify(tmp_path, official_file, image_files, network, capsys):
    out = tmp_path / "native"
    res = run_json(capsys, ["convert", str(official_file), str(out), "--config", str(tmp_path / "tiny.json"), "--json"])
    assert res["parameters"] == sum(p.numel() for p in network.parameters())
    cfg = json.loads((out / "config.json").read_text())
    assert cfg == {"format": "daclip-kit/1", "component": "embedders", "name": "daclip",
                   "config": {"model_config": tiny_config(), "degradations": list(DEGRADATIONS)}}
    assert res["model"] == "daclip"  # recognised from the checkpoint's keys
    assert main(["convert", str(official_file), str(out), "--config", str(tmp_path / "tiny.json")]) == 1
    assert "already exists" in err_text(capsys)

    labels = tmp_path / "labels.txt"
    labels.write_text("# my labels\nrainy\n\nhazy\nnoisy\n")
    rows = run_json(capsys, ["classify", str(image_files[0].parent), "--weights", str(out), "--labels",
                             str(labels), "--top-k", "2", "--device", "cpu", "--json"])
    assert [r["image"] for r in rows] == [str(p) for p in image_files]

    from daclip_kit.embedders.daclip.provider import DaClipConfig, DaClipEmbedder
    from daclip_kit.io import read_image

    emb = DaClipEmbedder(DaClipConfig(device="cpu"), network=network)
    with torch.no_grad():
        probs = emb.classify(read_image(image_files[1]), ["rainy", "hazy", "noisy"]).probs[0]
    best = probs.topk(2)
    assert [t["label"] for t in rows[1]["top_k"]] == [["rainy", "hazy", "noisy"][i] for i in best.indices]
    assert rows[1]["top_k"][0]["prob"] == pytest.approx(float(best.values[0]), abs=1e-5)


def test_classify_with_plain_clip(image_files, tmp_path, monkeypatch, capsys):
    assert main(["classify", str(image_files[0]), "--weights", str(tmp_path / "x.pt"), "--embedder", "clip"]) == 1
    assert "does not exist" in err_text(capsys)
    assert main(["classify", str(image_files[0]), "--embedder", "clip", "--model", "ViT-B-33"]) == 1
    assert "Unknown open_clip model 'ViT-B-33'" in err_text(capsys)
    # no --weights: the OpenAI ViT-B/32 weights, never random ones
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("DACLIP_KIT_CACHE", str(tmp_path / "cache"))
    assert main(["classify", str(image_files[0]), "--embedder", "clip"]) == 1
    assert "clip-vit-b-32-openai.pt" in err_text(capsys)
    # a full ViT-B-32 state dict (random values) in the cache: the plain-CLIP path end to end, not accuracy
    import open_clip

    (tmp_path / "cache").mkdir()
    torch.save({k: v.half() for k, v in open_clip.create_model("ViT-B-32").state_dict().items()},
               tmp_path / "cache" / "clip-vit-b-32-openai.pt")
    rows = run_json(capsys, ["classify", str(image_files[0]), "--embedder", "clip", "--top-k", "10",
                             "--device", "cpu", "--json"])
    probs = [t["prob"] for t in rows[0]["top_k"]]
    assert len(probs) == 10 and sum(probs) == pytest.approx(1.0, abs=1e-4)
    assert probs == sorted(probs, reverse=True)


def test_classify_table_output(tmp_path, official_file, image_files, capsys, monkeypatch):
    out = tmp_path / "native"
    main(["convert", str(official_file), str(out), "--config", str(tmp_path / "tiny.json")])
    # a deep folder on an 80-column terminal: the file names stay whole, the folder goes to the caption
    deep = tmp_path / ("a-long-folder-name-" * 4) / "imgs"
    deep.mkdir(parents=True)
    images = [deep / p.name for p in image_files]
    for src, dst in zip(image_files, images, strict=True):
        dst.write_bytes(src.read_bytes())
    monkeypatch.setenv("COLUMNS", "80")
    capsys.readouterr()
    assert main(["classify", *map(str, images), "--weights", str(out), "--device", "cpu"]) == 0
    text = capsys.readouterr().out
    assert "im0.png" in text and "im1.png" in text and "%" in text
    assert "images in" in text


def test_classify_without_weights_offline(image_files, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("DACLIP_KIT_CACHE", str(tmp_path / "cache"))
    assert main(["classify", str(image_files[0])]) == 1
    err = err_text(capsys)
    assert "daclip_ViT-B-32.pt" in err and "weights fetch daclip-vit-b-32" in err


def test_convert_refuses_missing_input_and_overwriting_input(tmp_path, official_file, capsys):
    assert main(["convert", str(tmp_path / "none.pt"), str(tmp_path / "o")]) == 1
    assert "does not exist" in err_text(capsys)
    assert main(["convert", str(official_file), str(official_file)]) == 1
    assert "would overlap the input" in err_text(capsys)
    assert official_file.is_file()


def test_weights_list_and_fetch_offline(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    (tmp_path / "wild-ir.pth").write_bytes(b"0" * 10)
    rows = run_json(capsys, ["weights", "list", "--cache-dir", str(tmp_path), "--json"])
    by_name = {r["name"]: r for r in rows}
    assert by_name["wild-ir-unet"]["cached"] and not by_name["universal-ir"]["cached"]
    assert by_name["daclip-vit-b-32"]["size"] == 1_744_725_787
    assert main(["weights", "fetch", "universal-ir", "--cache-dir", str(tmp_path)]) == 1
    err = err_text(capsys)
    assert "HF_HUB_OFFLINE" in err and "universal-ir.pth" in err
    monkeypatch.setenv("COLUMNS", "80")
    assert main(["weights", "list", "--cache-dir", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "wild-daclip-vit-l-14" in out and "description" not in out
    assert max(len(line) for line in out.splitlines()) <= 80
    assert main(["weights", "list", "--long", "--cache-dir", str(tmp_path)]) == 0
    assert "MoCo queue" in capsys.readouterr().out
