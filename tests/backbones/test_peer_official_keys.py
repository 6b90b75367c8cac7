"""Full-size peer networks have exactly the official keys, shapes and dtypes, and the official
containers load strictly through ``load_official``."""

from __future__ import annotations

import json

import pytest
import torch

from daclip_kit import create_backbone
from daclip_kit.compat import load_official

# keys file -> (registry name, config, official container)
CASES = {
    "nafnet_gopro_w64": ("nafnet-gopro-w64", {}, "params"),
    "nafnet_sidd_w64": ("nafnet-sidd-w64", {}, "params"),
    "restormer_default": ("restormer", {}, "params"),
    "restormer_biasfree": ("restormer-biasfree", {}, "params"),
    "promptir_allinone": ("promptir", {}, "lightning"),
    "airnet_all": ("airnet", {"batch_size": 5}, "raw"),
}
LOADER = {"nafnet-gopro-w64": "nafnet", "nafnet-sidd-w64": "nafnet", "restormer": "restormer",
          "restormer-biasfree": "restormer", "promptir": "promptir", "airnet": "airnet"}


def _keys(reference_dir, stem):
    return json.loads((reference_dir / "peers" / f"{stem}.keys.json").read_text())


def _listing(module):
    return [[k, list(v.shape), str(v.dtype).removeprefix("torch.")] for k, v in module.state_dict().items()]


@pytest.mark.parametrize("stem", sorted(CASES))
def test_full_size_keys_shapes_dtypes_in_order(reference_dir, stem):
    ref = _keys(reference_dir, stem)
    name, config, _ = CASES[stem]
    with torch.device("meta"):
        net = create_backbone(name, **config)
    assert _listing(net) == ref["state_dict"]
    assert sum(p.numel() for p in net.parameters()) == ref["num_params"]


@pytest.mark.parametrize("stem", sorted(CASES))
def test_official_container_loads_strictly(reference_dir, stem):
    ref = _keys(reference_dir, stem)
    name, _, container = CASES[stem]
    state = {k: torch.full(shape, 0.5 if dtype == "float32" else 1, dtype=getattr(torch, dtype))
             for k, shape, dtype in ref["state_dict"]}
    if container == "params":
        ckpt = {"params": {f"module.{k}": v for k, v in state.items()}}
    elif container == "lightning":
        ckpt = {"epoch": 119, "global_step": 1, "state_dict": {f"net.{k}": v for k, v in state.items()}}
    else:
        ckpt = state
    net = load_official(LOADER[name], ckpt)
    assert not net.training
    assert _listing(net) == ref["state_dict"]
    first = ref["state_dict"][0][0]
    assert torch.all(net.state_dict()[first] == 0.5)
    if name == "nafnet-gopro-w64":  # architecture read from the keys; official zero padding
        assert net.config.enc_blk_nums == (1, 1, 1, 28) and net.config.pad_mode == "zeros"
    if name == "restormer-biasfree":
        assert net.config.layer_norm_type == "BiasFree"
    if name == "airnet":
        assert net.config.batch_size == 5
