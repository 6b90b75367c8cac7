"""A ``daclip-kit train`` run folder (or one of its checkpoints) names the model it trained, in
``--weights`` of every verb and in the one model resolver: the newest checkpoint's ``network-ema``."""

from __future__ import annotations

import json

import pytest
import torch

import daclip_kit
from daclip_kit.cli.main import main
from daclip_kit.errors import WeightsNotFoundError
from daclip_kit.model import resolve_model

TINY = {"nf": 32, "ch_mult": [1, 1], "context_dim": 0, "use_degra_context": False, "use_image_context": False}
SDE = {"max_sigma": 50.0, "T": 100, "schedule": "cosine", "eps": 0.005}


def _run(tmp_path):
    """A run folder with checkpoints at steps 2 and 10 (and a half-written 12 with no model), each
    holding ``network`` and ``network-ema``; step 10's EMA is a 3-step student."""
    run = tmp_path / "run"
    for step, steps in ((2, 100), (10, 3)):
        for name in ("network", "network-ema"):
            torch.manual_seed(step)
            net = daclip_kit.create_backbone("irsde-unet", **TINY)
            sampler = {"name": "mrs", "config": {**SDE, "num_sample_steps": steps}}
            daclip_kit.save_network(net, run / "checkpoints" / f"step-{step:08d}" / name, name="irsde-unet",
                                    config=TINY, sampler=sampler)
    (run / "checkpoints" / "step-00000012").mkdir()
    return run


def test_a_run_folder_resolves_to_its_newest_ema_network(tmp_path):
    run = _run(tmp_path)
    newest = run / "checkpoints" / "step-00000010"
    assert resolve_model(run).network == newest / "network-ema"
    older = run / "checkpoints" / "step-00000002"
    assert resolve_model(older).network == older / "network-ema"
    assert resolve_model(newest / "network").network == newest / "network"  # a model folder is itself
    assert resolve_model(run).sampler["config"]["num_sample_steps"] == 3  # step 10's EMA student
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(WeightsNotFoundError, match="holds no model"):
        resolve_model(empty)


def test_restore_takes_a_run_folder(tmp_path, capsys):
    run = _run(tmp_path)
    image = tmp_path / "in.png"
    from PIL import Image

    Image.fromarray((torch.rand(24, 24, 3) * 255).byte().numpy()).save(image)
    code = main(["restore", str(image), "-o", str(tmp_path / "out.png"), "--model", "irsde-unet-plain",
                 "--weights", str(run), "--device", "cpu", "--json"])
    assert code == 0
    assert (tmp_path / "out.png").is_file()
    summary = json.loads(capsys.readouterr().out)
    assert (summary["sampler"], summary["steps"]) == ("mrs", 3)  # step 10's EMA, with its own sampler
