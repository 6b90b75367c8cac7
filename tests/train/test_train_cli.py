"""``daclip-kit train`` end to end: DA-CLIP, then IR-SDE with it, then ``restore`` with both."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from daclip_kit.cli.main import main
from daclip_kit.io import read_image
from daclip_kit.train.config import load_run_config

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "train"

pytestmark = pytest.mark.usefixtures("one_thread")


def _json(capsys) -> dict:
    return json.loads(capsys.readouterr().out)


@pytest.fixture(scope="module")
def daclip_run(root, tmp_path_factory):
    out = tmp_path_factory.mktemp("cli") / "daclip"
    argv = ["train", "daclip", "--config", str(EXAMPLES / "daclip_tiny.toml"), "--set", f"data.root={root}",
            "--set", "data.batch_size=4", "--out", str(out), "--max-steps", "2", "--json"]
    return out, argv


def test_daclip_then_irsde_then_restore(root, daclip_run, tmp_path, capsys):
    out, argv = daclip_run
    assert main(argv) == 0
    summary = _json(capsys)
    assert summary["step"] == 2 and summary["trainer"] == "daclip"
    daclip_folder = Path(summary["models"]["daclip"])
    assert daclip_folder == out / "checkpoints" / "step-00000002" / "daclip"
    assert (daclip_folder / "model.safetensors").is_file()

    irsde_out = tmp_path / "irsde"
    assert main(["train", "irsde", "--config", str(EXAMPLES / "irsde_tiny.toml"), "--set", f"data.root={root}",
                 "--set", f"embedder.weights={daclip_folder}", "--set", "validation.every=0", "--set",
                 "data.batch_size=2", "--out", str(irsde_out), "--max-steps", "2", "--device", "cpu", "--json"]) == 0
    summary = _json(capsys)
    assert summary["step"] == 2 and set(summary["models"]) == {"daclip", "network", "network-ema"}  # its DA-CLIP too
    assert summary["last"]["step"] == 2 and summary["last"]["loss"] > 0

    lq = min((root / "val" / "noisy" / "LQ").glob("*.png"))
    restored = tmp_path / "restored"
    assert main(["restore", str(lq), "-o", str(restored), "--weights", summary["models"]["network-ema"],
                 "--daclip-weights", str(daclip_folder), "--steps", "2", "--device", "cpu", "--json"]) == 0
    image = read_image(restored / f"{lq.stem}.png")
    assert image.shape == read_image(lq).shape
    assert torch.isfinite(image).all()
    # the trained network with the MR Sampler: the SDE stored with it, 10 network evaluations
    capsys.readouterr()
    assert main(["restore", str(lq), "-o", str(tmp_path / "mrs"), "--weights", summary["models"]["network-ema"],
                 "--daclip-weights", str(daclip_folder), "--sampler", "mrs", "--steps", "10", "--device", "cpu",
                 "--json"]) == 0
    run = _json(capsys)
    assert run["sampler"] == "mrs" and run["steps"] == 10 and run["sampler_config"]["max_sigma"] == 50
    assert not torch.equal(read_image(tmp_path / "mrs" / f"{lq.stem}.png"), image)


def test_resolved_config_is_saved_and_equals_print_config(root, daclip_run, capsys):
    out, argv = daclip_run
    if not (out / "config.toml").is_file():
        assert main(argv) == 0
        capsys.readouterr()
    saved = load_run_config("daclip", out / "config.toml")
    assert saved.data.root == str(root) and saved.max_steps == 2 and saved.out_dir == str(out)
    assert json.loads((out / "config.json").read_text())["data"]["batch_size"] == 4
    assert main([a for a in argv if a != "--json"] + ["--print-config"]) == 0
    assert capsys.readouterr().out == (out / "config.toml").read_text()


def test_output_folder_rules_and_resume(root, tmp_path, capsys):
    out = tmp_path / "run"
    base = ["train", "daclip", "--config", str(EXAMPLES / "daclip_tiny.toml"), "--set", f"data.root={root}",
            "--set", "data.batch_size=4", "--out", str(out), "--json"]
    assert main(base + ["--max-steps", "1"]) == 0
    capsys.readouterr()
    assert main(base + ["--max-steps", "1"]) == 1
    assert "is not empty" in capsys.readouterr().err

    assert main(["train", "daclip", "--resume", str(out), "--max-steps", "2", "--json"]) == 0
    summary = _json(capsys)
    assert summary["step"] == 2 and summary["out_dir"] == str(out)
    assert torch.load(out / "checkpoints" / "step-00000002" / "trainer_state.pt", weights_only=True)["step"] == 2

    assert main(base + ["--max-steps", "1", "--overwrite"]) == 0
    assert _json(capsys)["step"] == 1
    assert sorted(p.name for p in (out / "checkpoints").iterdir()) == ["step-00000001"]


def test_user_errors_exit_1_with_a_message(tmp_path, capsys):
    assert main(["train", "irsde", "--print-config", "--set", "optim.lrr=1"]) == 1
    assert "Did you mean: lr" in capsys.readouterr().err
    assert main(["train", "irsde", "--config", str(tmp_path / "missing.toml")]) == 1
    assert "does not exist" in capsys.readouterr().err
    assert main(["train", "daclip", "--resume", str(tmp_path)]) == 1
    assert "neither a checkpoint folder" in capsys.readouterr().err
    assert main(["train", "daclip", "--print-config", "--max-steps", "0"]) == 1


def test_help_and_print_config_do_not_import_torch():
    code = ("import sys\nfrom daclip_kit.cli.main import main\n"
            "main(['train', 'irsde', '--print-config', '--set', 'optim.lr=1e-4'])\n"
            "print('torch' in sys.modules)")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert "lr = 0.0001" in done.stdout and done.stdout.strip().endswith("False")


def test_a_plain_irsde_trained_with_t20_restores_with_t20_without_daclip(root, tmp_path, capsys):
    """The sampler a network was trained with is saved in its folder and used by `restore`."""
    out = tmp_path / "run"
    assert main(["train", "restoration", "--config", str(EXAMPLES / "irsde_tiny.toml"), "--set", f"data.root={root}",
                 "--set", "data.degradations=noisy", "--set", "data.batch_size=2", "--set", "sampler.T=20",
                 "--set", "network.name=irsde-unet-plain", "--set", "embedder.name=none", "--set",
                 "validation.every=0", "--out", str(out), "--max-steps", "1", "--json"]) == 0
    folder = json.loads(capsys.readouterr().out)["models"]["network-ema"]
    saved = json.loads((Path(folder) / "config.json").read_text())
    assert saved["name"] == "irsde-unet-plain" and saved["sampler"]["config"]["T"] == 20

    lq = min((root / "val" / "noisy" / "LQ").glob("*.png"))
    # a plain IR-SDE restores without DA-CLIP weights (none given, none downloaded)
    assert main(["restore", str(lq), "-o", str(tmp_path / "restored"), "--weights", folder, "--device", "cpu",
                 "--no-download", "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["sampler"] == "irsde" and summary["sampler_config"]["T"] == 20
    assert summary["steps"] == 20 and summary["embedder_weights"] is None
    image = read_image(tmp_path / "restored" / f"{lq.stem}.png")
    assert image.shape == read_image(lq).shape and torch.isfinite(image).all()
