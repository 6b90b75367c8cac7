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
    assert set(row["hooks"]) == {"daclip_kit_register_backbones", "daclip_kit_register_adapters"}


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
