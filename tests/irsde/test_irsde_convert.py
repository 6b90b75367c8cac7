"""Loading official checkpoints: full-size key lists, files, prefixes and mismatch errors."""

from __future__ import annotations

import json

import pytest
import torch
from _tolerance import PARITY_ATOL

from daclip_kit.backbones.irsde_unet.arch import ConditionalUNet
from daclip_kit.backbones.irsde_unet.config import UNetConfig
from daclip_kit.backbones.irsde_unet.convert import (
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
    from daclip_kit.ops.padding import padded_call

    with torch.no_grad():
        out = padded_call(lambda a, b: net(a, b, i["time"], degradation=i["text_context"], content=i["image_context"]),
                          (i["xt"], i["cond"]), net.size_divisor, net.pad_mode)
    torch.testing.assert_close(out, g["outputs"]["full"], atol=PARITY_ATOL, rtol=0)

    prefixed = {f"module.{k}": v for k, v in g["state_dict"].items()}
    net2 = load_official("irsde-unet", {"state_dict": prefixed}, config={"setting": g["config"]})
    for (k, a), b in zip(net.state_dict().items(), net2.state_dict().values(), strict=True):
        assert torch.equal(a, b), k


def test_missing_keys_are_listed_with_the_likely_setting(golden):
    g = golden("irsde_wild_unet_tiny.golden.pt")
    sd = {f"module.{k}": v for k, v in g["state_dict"].items() if k != "final_conv.bias"}
    with pytest.raises(CheckpointError, match=r"final_conv\.bias"):
        load_official_unet(sd, config=g["config"])
    # loading the Wild-IR weights with the default (universal) config names the right setting
    with pytest.raises(CheckpointError, match=r"prompt.*'scale': 0.5"):
        load_official_unet(g["state_dict"], config={**g["config"], "scale": 1, "use_degra_context": True})


def test_config_from_setting_spellings_and_defaults():
    assert config_from_setting("irsde-unet-wild").scale == 0.5
    universal_upscale = config_from_setting({"in_nc": 3, "out_nc": 3, "nf": 64, "ch_mult": [1, 2, 4, 8],
                                             "context_dim": 512, "use_image_context": True, "upscale": 1})
    assert universal_upscale == UNetConfig()
    # keys left out take the UNetConfig defaults, which are the universal model's
    assert config_from_setting({"nf": 32}) == UNetConfig(nf=32)
    plain = config_from_setting({"in_nc": 3, "out_nc": 3, "nf": 32, "context_dim": None})
    assert not plain.use_degra_context and not plain.use_image_context
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


def test_named_settings_are_the_registered_backbones():
    from daclip_kit.errors import UnknownComponentError

    assert config_from_setting("irsde-unet-wild").scale == 0.5
    assert config_from_setting("irsde-unet") == UNetConfig()
    assert config_from_setting("irsde-unet-plain").context_dim == 0
    with pytest.raises(UnknownComponentError, match="Did you mean: irsde-unet-wild"):
        config_from_setting("irsde-unet-wilde")


def test_load_network_uses_the_spec_converter_and_defaults(golden, tmp_path):
    """One loading path: a released file by registry name, then its native folder by name or alone."""
    import daclip_kit

    g = golden("irsde_wild_unet_tiny.golden.pt")
    path = tmp_path / "wild-tiny.pth"
    torch.save(g["state_dict"], path)
    net = daclip_kit.load_network("irsde-unet-wild", path, config={"nf": 32, "ch_mult": [1, 1, 1, 1],
                                                                    "context_dim": 32})
    assert net.config.scale == 0.5 and not net.config.use_degra_context
    daclip_kit.save_network(net, tmp_path / "native", name="irsde-unet-wild")
    for name in ("irsde-unet-wild", None, "irsde-unet"):  # same architecture family: the folder's config wins
        again = daclip_kit.load_network(name, tmp_path / "native")
        assert again.config == net.config
    with pytest.raises(CheckpointError, match="holds a 'irsde-unet-wild' network, not 'nafnet'"):
        daclip_kit.load_network("nafnet", tmp_path / "native")
