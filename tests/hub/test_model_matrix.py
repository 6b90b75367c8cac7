"""A model travels whole: every reference kind x every verb, on one tiny trained restorer.

One ``train restoration`` run (tiny U-Net conditioned on a tiny DA-CLIP of its own, 1 step) is named
every way a user can name it: its run folder, its checkpoint, the checkpoint's ``network-ema``, a
copy of the run elsewhere (the original DA-CLIP deleted), a copied checkpoint (a model folder), and
``hf://`` after a push to the project's local Hub (whole repository and its ``network-ema``). Each
verb must see the same model: restores byte-identical with no ``--daclip-weights`` (offline),
classify identical with the run's own DA-CLIP, the Python API, the bench's row weights, ``train
--init-from`` and ``export``'s metadata equal to the run's config.
"""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import pytest
import torch

from daclip_kit.cli.main import main

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "train"))

from _train_testutil import irsde_config, mini_root

SDE = {"max_sigma": 30.0, "T": 50}  # not the defaults (50 / 100): a swapped SDE cannot pass
WORDS = ["noisy", "hazy", "low-light", "jpeg-compressed"]


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """``(run folder, the DA-CLIP folder it was trained with, an LQ image)``: the DA-CLIP is a copy
    made for this run, so a test may delete it."""
    from _train_testutil import tiny_daclip_folder

    from daclip_kit.embedders.daclip.convert import load_daclip, save_daclip
    from daclip_kit.train.restoration import train_restoration

    root = mini_root(tmp_path_factory)
    base = tmp_path_factory.mktemp("matrix")
    daclip = load_daclip(tiny_daclip_folder(tmp_path_factory))
    daclip.degradations = tuple(WORDS)  # a DA-CLIP with words of its own, as `train daclip` writes
    save_daclip(daclip, base / "my-daclip")
    cfg = irsde_config(root, base / "my-daclip", base / "run", max_steps=1,
                       sampler={"name": "irsde", **SDE})
    train_restoration(cfg)
    lq = min((root / "val" / "noisy" / "LQ").glob("*.png"))
    return base / "run", base / "my-daclip", lq


def _checkpoint(run: Path) -> Path:
    return sorted((run / "checkpoints").iterdir())[-1]


def _restore(ref: str, lq: Path, out: Path) -> bytes:
    assert main(["restore", str(lq), "-o", str(out / "x.png"), "--weights", ref, "--device", "cpu",
                 "--steps", "3", "--no-download"]) == 0
    return (out / "x.png").read_bytes()


def _classify(ref: str, lq: Path, capsys) -> dict:
    capsys.readouterr()
    assert main(["classify", str(lq), "--weights", ref, "--device", "cpu", "--json"]) == 0
    return json.loads(capsys.readouterr().out)


def test_every_reference_kind_restores_and_classifies_the_same_model(trained, tmp_path, capsys, monkeypatch):
    run, daclip, lq = trained
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    checkpoint = _checkpoint(run)
    copy = tmp_path / "copied-run"
    shutil.copytree(run, copy)
    model_folder = tmp_path / "model"
    shutil.copytree(checkpoint, model_folder)
    refs = {"run": run, "checkpoint": checkpoint, "native": checkpoint / "network-ema", "copied run": copy,
            "model folder": model_folder}

    from daclip_kit.model import resolve_model

    kinds = {label: resolve_model(str(ref)).kind for label, ref in refs.items()}
    assert kinds == {"run": "run", "checkpoint": "checkpoint", "native": "native", "copied run": "run",
                     "model folder": "model"}
    reference = _restore(str(checkpoint / "network-ema"), lq, tmp_path / "by-hand-a")
    # by hand: the network and its DA-CLIP named explicitly give the same bytes
    assert main(["restore", str(lq), "-o", str(tmp_path / "explicit" / "x.png"), "--weights",
                 str(checkpoint / "network-ema"), "--daclip-weights", str(daclip), "--device", "cpu", "--steps",
                 "3", "--no-download"]) == 0
    assert (tmp_path / "explicit" / "x.png").read_bytes() == reference
    words = _classify(str(daclip), lq, capsys)
    for label, ref in refs.items():
        assert _restore(str(ref), lq, tmp_path / label.replace(" ", "-")) == reference, label
        assert _classify(str(ref), lq, capsys) == words, label
    assert {t["label"] for t in words[0]["top_k"]} <= set(WORDS)  # the run's own words, not the ten

    # the copy keeps its pair when the original DA-CLIP is gone; the released one is never reached for
    moved = tmp_path / "gone"
    shutil.move(str(daclip), moved)
    try:
        assert _restore(str(copy), lq, tmp_path / "after-move") == reference
        lone = tmp_path / "lone-network"
        shutil.copytree(checkpoint / "network-ema", lone)
        capsys.readouterr()
        assert main(["restore", str(lq), "-o", str(tmp_path / "lone" / "x.png"), "--weights", str(lone),
                     "--device", "cpu", "--no-download"]) == 1
        err = capsys.readouterr().err
        assert "../daclip" in err and "--daclip-weights" in err and "daclip_ViT-B-32.pt" not in err
    finally:
        shutil.move(str(moved), daclip)


def test_the_python_api_bench_and_train_take_the_same_unit(trained, tmp_path):
    import daclip_kit
    from daclip_kit.bench.runs import resolve_model as bench_model
    from daclip_kit.core.pipeline import per_image_generators
    from daclip_kit.io import read_image
    from daclip_kit.train.restoration import resolve_init

    run, _daclip, lq = trained
    checkpoint = _checkpoint(run)
    built = daclip_kit.load(run, device="cpu", settings={"steps": 3})
    assert built.unit.kind == "run" and built.embedder_weights == (checkpoint / "daclip").resolve()
    assert built.pipeline.sampler.config.max_sigma == SDE["max_sigma"] and SDE["T"] == built.pipeline.sampler.config.T
    assert built.unit.words == tuple(WORDS) and built.unit.provenance["step"] == 1
    image = read_image(lq)
    out = built.pipeline(image, generator=per_image_generators(0, 1)).image
    again = daclip_kit.load(checkpoint / "network-ema", device="cpu", settings={"steps": 3})
    assert torch.equal(again.pipeline(image, generator=per_image_generators(0, 1)).image, out)

    from daclip_kit.export import load_model
    from daclip_kit.export.metadata import denoiser_sampling

    for ref in (run, checkpoint, checkpoint / "network-ema"):
        _net, kind, sampler = load_model("irsde-unet", str(ref))
        meta = denoiser_sampling(sampler)
        assert kind == "denoiser" and (meta["sde"]["max_sigma"], meta["sde"]["T"]) == (SDE["max_sigma"], SDE["T"]), ref
        assert meta["sampler"]["name"] == "irsde" and meta["steps"] == SDE["T"]

    row = bench_model(str(run))
    assert row.network == checkpoint / "network-ema" and row.embedder == "daclip"
    assert row.embedder_weights == (checkpoint / "daclip").resolve()
    assert resolve_init(str(run)) == checkpoint / "network-ema"


def test_a_hand_given_daclip_that_does_not_fit_names_both(trained, tmp_path, capsys):
    from daclip_kit.embedders.daclip.convert import load_daclip, save_daclip

    run, daclip, lq = trained
    other = load_daclip(daclip)
    other.degradations = ("rainy", "snowy", "hazy", "noisy")
    save_daclip(other, tmp_path / "other-words")
    assert main(["restore", str(lq), "-o", str(tmp_path / "out"), "--weights", str(run), "--daclip-weights",
                 str(tmp_path / "other-words"), "--device", "cpu", "--no-download"]) == 1
    err = capsys.readouterr().err
    assert "other-words" in err and "../daclip" in err and "rainy" in err


def test_push_pull_restore_is_byte_identical(hub, trained, tmp_path, capsys):
    run, _daclip, lq = trained
    checkpoint = _checkpoint(run)
    assert main(["push", str(run), "me/tiny-irsde"]) == 0
    printed = capsys.readouterr().out
    assert "load with: hf://me/tiny-irsde\n" in printed
    files = hub.repos["me/tiny-irsde"].commits[hub.repos["me/tiny-irsde"].branches["main"]]
    assert {"model_index.json", "daclip/model.safetensors", "network-ema/model.safetensors"} <= set(files)
    # the card's usage line is the one command the loop below runs
    assert "daclip-kit restore IMAGES -o OUT --weights hf://me/tiny-irsde\n" in files["README.md"].data.decode()
    reference = _restore(str(checkpoint / "network-ema"), lq, tmp_path / "local")
    for ref in ("hf://me/tiny-irsde", "hf://me/tiny-irsde/network-ema"):
        assert _restore(ref, lq, tmp_path / ref.replace("/", "_").replace(":", "")) == reference, ref
    from daclip_kit.export import load_model
    from daclip_kit.model import resolve_model

    assert load_model("irsde-unet", "hf://me/tiny-irsde")[2]["config"]["max_sigma"] == SDE["max_sigma"]
    unit = resolve_model("hf://me/tiny-irsde")
    assert unit.kind == "hub" and unit.daclip is not None and unit.daclip.path.name == "daclip"
    assert unit.daclip.sha256 and unit.sampler["config"]["max_sigma"] == SDE["max_sigma"]
