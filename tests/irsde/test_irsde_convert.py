"""Loading official checkpoints: full-size key lists, files, prefixes and mismatch errors."""

from __future__ import annotations

import json

import pytest
import torch

from daclip_kit.backbones.irsde_unet.arch import ConditionalUNet
from daclip_kit.backbones.irsde_unet.config import UNetConfig
from daclip_kit.backbones.irsde_unet.convert import (
    WILD_SETTING,
    config_from_setting,
    infer_setting,
    load_official_unet,
)
from daclip_kit.checkpoint import load_pretrained_files, save_pretrained
from daclip_kit.compat import load_official
from daclip_kit.errors import CheckpointError, ConfigError

pytestmark = pytest.mark.usefixtures("one_thread")



def _zeros_from_keys(path) -> tuple[dict, dict[str, torch.Tensor]]:
    info = json.loads(path.read_text())
    sd = {key: torch.zeros(shape, dtype=getattr(torch, dtype)) for key, shape, dtype in info["state_dict"]}
    return info, sd


@pytest.mark.parametrize("name", ["irsde_universal_unet", "irsde_wild_unet"])
def test_full_size_state_dicts_load_strictly(reference_dir, name):
    info, sd = _zeros_from_keys(reference_dir / f"{name}.keys.json")
    net = load_official("irsde-unet", sd, config=info["config"])
    assert isinstance(net, ConditionalUNet)
    assert list(net.state_dict()) == [k for k, _, _ in info["state_dict"]]
    assert sum(p.numel() for p in net.parameters()) == info["num_params"]
    assert infer_setting(sd) == {**info["config"], **({"scale": 0.5} if "scale" in info["config"] else {})}


def test_load_from_file_and_module_prefixed_dict(golden, tmp_path):
    g = golden("irsde_universal_unet_tiny.golden.pt")
    path = tmp_path / "universal-tiny.pth"
    torch.save(g["state_dict"], path)
    net = load_official_unet(path, config=g["config"])
    i = g["inputs"]
    with torch.no_grad():
        out = net(i["xt"], i["cond"], i["time"], degradation=i["text_context"], content=i["image_context"])
    torch.testing.assert_close(out, g["outputs"]["full"], atol=1e-5, rtol=0)

    prefixed = {f"module.{k}": v for k, v in g["state_dict"].items()}
    net2 = load_official("irsde-unet", {"state_dict": prefixed}, config={"setting": g["config"]})
    for (k, a), b in zip(net.state_dict().items(), net2.state_dict().values()):
        assert torch.equal(a, b), k


def test_missing_keys_are_listed_with_the_likely_setting(golden):
    g = golden("irsde_wild_unet_tiny.golden.pt")
    sd = {f"module.{k}": v for k, v in g["state_dict"].items() if k != "final_conv.bias"}
    with pytest.raises(CheckpointError, match="final_conv.bias"):
        load_official_unet(sd, config=g["config"])
    # loading the Wild-IR weights with the default (universal) config names the right setting
    with pytest.raises(CheckpointError, match=r"prompt.*'scale': 0.5"):
        load_official_unet(g["state_dict"], config={**g["config"], "scale": 1, "use_degra_context": True})


def test_config_from_setting_spellings_and_defaults():
    assert config_from_setting(WILD_SETTING).scale == 0.5
    universal_upscale = config_from_setting({"in_nc": 3, "out_nc": 3, "nf": 64, "ch_mult": [1, 2, 4, 8],
                                             "context_dim": 512, "use_image_context": True, "upscale": 1})
    assert universal_upscale == UNetConfig()
    # keys left out take the official constructor defaults
    assert config_from_setting({"in_nc": 3, "out_nc": 3, "nf": 64}).ch_mult == (1, 2, 4, 4)
    plain = config_from_setting({"in_nc": 3, "out_nc": 3, "nf": 32, "context_dim": None})
    assert not plain.use_degra_context and not plain.use_image_context
    with pytest.raises(ConfigError, match="nf"):
        config_from_setting({"in_nc": 3, "out_nc": 3})
    with pytest.raises(ConfigError, match="Did you mean"):
        config_from_setting({"in_nc": 3, "out_nc": 3, "nf": 64, "context_dimm": 3})
    with pytest.raises(ConfigError, match="multiple of 32"):
        UNetConfig(nf=16)


def test_save_pretrained_round_trip(golden, tmp_path):
    g = golden("irsde_wild_unet_tiny.golden.pt")
    net = load_official_unet(g["state_dict"], config=g["config"])
    save_pretrained(net, tmp_path / "wild-tiny", net.export_config())
    config, sd = load_pretrained_files(tmp_path / "wild-tiny")
    again = ConditionalUNet(UNetConfig(**config)).eval()
    again.load_state_dict(sd, strict=True)
    assert again.config == net.config
    x = torch.rand(1, 3, 32, 32)
    c = torch.randn(1, 32)
    with torch.no_grad():
        torch.testing.assert_close(again(x, x, 4, content=c), net(x, x, 4, content=c), atol=0, rtol=0)


def test_named_settings_and_unknown_name():
    from daclip_kit.backbones.irsde_unet.convert import config_from_setting
    from daclip_kit.errors import ConfigError

    assert config_from_setting("wild-ir").scale == 0.5
    assert config_from_setting("universal").use_degra_context is True
    with pytest.raises(ConfigError, match="Did you mean: wild"):
        config_from_setting("wilde")
