"""Full-size official layouts: key lists of daclip_vit_b32/l14.keys.json and strict loading."""

from __future__ import annotations

import json

import pytest
import torch
from _embedders_testutil import official_checkpoint

from daclip_kit.compat import load_official
from daclip_kit.embedders.daclip.architectures import model_config
from daclip_kit.embedders.daclip.model import DaCLIP
from daclip_kit.errors import CheckpointError


def _keys(reference_dir, name):
    return json.loads((reference_dir / name).read_text())


@pytest.fixture(scope="module")
def b32_keys(reference_dir):
    return _keys(reference_dir, "daclip_vit_b32.keys.json")


@pytest.fixture(scope="module")
def b32_checkpoint(b32_keys):
    """Random values for every official key, the vision tower stored once and aliased, as the
    official pickle does; wrapped as a DDP training checkpoint."""
    g = torch.Generator().manual_seed(0)
    sd = {}
    for key, shape, dtype in b32_keys["state_dict"]:
        assert dtype == "float32"
        if key.startswith("visual."):
            sd[key] = sd["clip." + key]
        else:
            sd[key] = torch.rand(shape, generator=g)
    return official_checkpoint(sd)


@pytest.mark.parametrize("config, keys_file", [("daclip_ViT-B-32", "daclip_vit_b32.keys.json"),
                                               ("daclip_ViT-L-14", "daclip_vit_l14.keys.json")])
def test_bundled_configs_give_the_official_layout(reference_dir, config, keys_file):
    ref = _keys(reference_dir, keys_file)
    assert model_config(config) == ref["config"]
    with torch.device("meta"):
        model = DaCLIP.from_config(model_config(config))
    got = [[k, list(v.shape), str(v.dtype).removeprefix("torch.")] for k, v in model.state_dict().items()]
    assert got == ref["state_dict"]
    assert sum(p.numel() for p in model.parameters()) == ref["num_params"]


def test_b32_official_checkpoint_loads_strictly_from_memory_and_file(b32_checkpoint, tmp_path):
    path = tmp_path / "daclip_ViT-B-32.pt"
    torch.save(b32_checkpoint, path)
    model = load_official("daclip", path)  # config detected from the checkpoint
    sd = b32_checkpoint["state_dict"]
    own = model.state_dict()
    assert len(own) == 631
    for key in ("logit_scale", "clip.logit_scale", "visual_control.transformer.zero_modules.11.weight",
                "visual_control.transformer.transformer.resblocks.0.attn.in_proj_weight", "visual.proj"):
        assert torch.equal(own[key], sd["module." + key]), key
    assert model.visual is model.clip.visual
    del model
    model = load_official("daclip", b32_checkpoint, config=model_config("daclip_ViT-B-32"))
    assert torch.equal(model.state_dict()["clip.token_embedding.weight"], sd["module.clip.token_embedding.weight"])


def test_b32_missing_key_is_named(b32_checkpoint):
    ckpt = dict(b32_checkpoint)
    dropped = ("module.visual_control.transformer.zero_modules.7.bias", "module.visual.ln_post.bias")
    ckpt["state_dict"] = {k: v for k, v in b32_checkpoint["state_dict"].items() if k not in dropped}
    ckpt["state_dict"]["module.extra.weight"] = torch.zeros(1)
    with pytest.raises(CheckpointError) as info:
        load_official("daclip", ckpt, config="daclip_ViT-B-32")
    msg = str(info.value)
    assert "visual_control.transformer.zero_modules.7.bias" in msg
    assert "visual.ln_post.bias" in msg
    assert "Missing keys (2)" in msg and "Unexpected keys (1): extra.weight" in msg


def test_wrong_config_reports_shapes(reference_dir):
    from _embedders_testutil import perturbed_daclip, tiny_config

    sd = perturbed_daclip().state_dict()
    cfg = tiny_config()
    cfg["embed_dim"] = 16
    with pytest.raises(CheckpointError, match="Shape mismatches"):
        load_official("daclip", sd, config=cfg)
