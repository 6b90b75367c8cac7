"""The example distribution in plugins/daclip-kit-tinynet, installed as a real package."""

import json

import pytest
import torch

import daclip_kit
from daclip_kit.cli.main import main
from daclip_kit.types import Conditioning

try:
    from importlib.metadata import version

    TINYNET_VERSION = version("daclip-kit-tinynet")
except Exception:  # pragma: no cover - reported by the test below
    TINYNET_VERSION = None


@pytest.fixture(autouse=True)
def _require_installed():
    if TINYNET_VERSION is None:
        pytest.fail("install the example plugin: pip install -e plugins/daclip-kit-tinynet")


def test_plugins_lists_the_distribution(capsys):
    assert main(["plugins", "--json"]) == 0
    rows = {r["name"]: r for r in json.loads(capsys.readouterr().out)}
    row = rows["tinynet"]
    assert (row["distribution"], row["version"], row["status"]) == ("daclip-kit-tinynet", TINYNET_VERSION, "ok")
    assert set(row["hooks"]) == {"daclip_kit_register_backbones", "daclip_kit_register_adapters",
                                 "daclip_kit_register_weights", "daclip_kit_register_tables"}


def test_create_backbone_from_plugin_with_builtin_and_plugin_adapters():
    net = daclip_kit.create_backbone("tinynet", width=16, context_dim=8)
    assert type(net.adapter).__name__ == "FiLMAdapter"
    swapped = daclip_kit.create_backbone("tinynet", width=16, context_dim=8, adapter="prompt")
    assert type(swapped.adapter).__name__ == "PromptAdapter" and swapped.accepts == {"degradation"}
    lq = torch.rand(1, 3, 16, 16)
    out = net(lq, Conditioning(content=torch.randn(1, 8)))
    assert out.shape == lq.shape


def test_ls_backbones_shows_plugin(capsys):
    assert main(["ls", "backbones", "--json"]) == 0
    rows = {r["name"]: r for r in json.loads(capsys.readouterr().out)}
    assert rows["tinynet"]["distribution"] == "daclip-kit-tinynet"


def _release(path, **config):
    """A TinyNet release file in its authors' layout, written with the plugin's own key mapping."""
    from daclip_kit_tinynet.convert import to_released_keys

    torch.manual_seed(0)
    net = daclip_kit.create_backbone("tinynet", **config)
    torch.save({"generator": to_released_keys(net.state_dict()), "iteration": 7, "config": config}, path)
    return net


def test_plugin_release_loads_through_its_own_converter(tmp_path, capsys):
    """load_network, convert (recognised by the plugin's fingerprint) and pretrained= all use the
    converter on the plugin's spec; daclip-kit knows nothing of the layout."""
    from daclip_kit.errors import CheckpointError

    original = _release(tmp_path / "tinynet_demo.pt", width=8, blocks=1, context_dim=8)
    raw = torch.load(tmp_path / "tinynet_demo.pt", weights_only=True)["generator"]
    assert "conv_in.weight" in raw and "head.weight" not in raw
    loaded = daclip_kit.load_network("tinynet", tmp_path / "tinynet_demo.pt")
    for (k, a), b in zip(original.state_dict().items(), loaded.state_dict().values(), strict=True):
        assert torch.equal(a, b), k
    assert daclip_kit.create_backbone("tinynet", pretrained=str(tmp_path / "tinynet_demo.pt")).config.width == 8
    assert main(["convert", str(tmp_path / "tinynet_demo.pt"), str(tmp_path / "native"), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["model"] == "tinynet"
    again = daclip_kit.load_network(None, tmp_path / "native")
    assert torch.equal(again.head.weight, original.head.weight)
    broken = dict(raw)
    broken.pop("conv_out.bias")
    with pytest.raises(CheckpointError, match=r"tail\.bias"):
        daclip_kit.load_network("tinynet", {"generator": broken, "config": {"width": 8, "blocks": 1, "context_dim": 8}})


def test_plugin_backbone_trains_restores_and_is_a_table8_row(tmp_path, capsys, tiny_models):
    """The whole recipe path with a third-party backbone: train from its release, restore, bench."""
    from daclip_kit.data.mini import build_mini
    from daclip_kit.io import read_image

    _release(tmp_path / "tinynet_demo.pt", width=8, blocks=1, context_dim=32)
    build_mini(tmp_path / "mini", size=32, per_type=2, val_per_type=1, composed=0, types=("noisy",), seed=0)
    run = tmp_path / "run"
    assert main(["train", "restoration", "--set", "network.name=tinynet", "--set", "network.width=8",
                 "--set", "network.blocks=1", "--set", "network.context_dim=32",
                 "--init-from", str(tmp_path / "tinynet_demo.pt"),
                 "--set", f"embedder.weights={tiny_models['daclip']}",
                 "--set", f"data.root={tmp_path / 'mini'}", "--set", "data.degradations=noisy",
                 "--set", "data.batch_size=2", "--set", "data.patch_size=32", "--set", "data.num_workers=0",
                 "--set", "validation.every=0", "--set", "ema.enabled=false", "--max-steps", "2",
                 "--out", str(run), "--device", "cpu", "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    trained = summary["models"]["network"]
    folder = json.loads((run / "checkpoints" / "step-00000002" / "network" / "config.json").read_text())
    assert folder["name"] == "tinynet" and folder["config"]["width"] == 8 and "sampler" not in folder
    start = daclip_kit.load_network("tinynet", tmp_path / "tinynet_demo.pt")
    after = daclip_kit.load_network(None, trained)
    assert not torch.equal(start.head.weight, after.head.weight)  # it trained from the release
    assert start.head.weight.shape == after.head.weight.shape

    lq = next((tmp_path / "mini" / "val" / "noisy" / "LQ").glob("*.png"))
    assert main(["restore", str(lq), "-o", str(tmp_path / "out"), "--model", "tinynet", "--weights", trained,
                 "--daclip-weights", str(tiny_models["daclip"]), "--device", "cpu", "--json"]) == 0
    restored = json.loads(capsys.readouterr().out)
    assert restored["network"] == "tinynet" and restored["sampler"] is None
    assert read_image(tmp_path / "out" / lq.with_suffix(".png").name).shape == read_image(lq).shape

    out = tmp_path / "t8.json"
    assert main(["bench", "--table", "8", "--row", "TinyNet (plugin)", "--size", "32", "--repeats", "0",
                 "--device", "cpu", "--json", str(out)]) == 0
    row = {r["label"]: r for r in json.loads(out.read_text())["rows"]}["TinyNet (plugin)"]
    expected = sum(p.numel() for p in daclip_kit.create_backbone("tinynet").parameters()) / 1e6
    assert row["cells"]["model/params"]["ours"] == pytest.approx(expected)
    assert row["pipeline"] == "tinynet"


def test_the_walkthrough_runs():
    import os
    import subprocess
    import sys
    from pathlib import Path

    script = Path(__file__).resolve().parents[2] / "examples" / "write_a_plugin" / "walkthrough.py"
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "COLUMNS": "200"}
    done = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, env=env, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    for line in ("contract: ok", "1. loaded the release", "2. trained 3 steps", "3. restored", "TinyNet (plugin)"):
        assert line in done.stdout, line
