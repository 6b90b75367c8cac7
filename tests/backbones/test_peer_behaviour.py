"""Behaviour of the peer backbones beyond the goldens: padding modes, pipelines on odd sizes,
AirNet's deformable convolution, converters' error messages and the convert CLI."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from daclip_kit import create_backbone
from daclip_kit.checkpoint import load_pretrained_files
from daclip_kit.compat import load_official
from daclip_kit.core.pipeline import RestorationPipeline
from daclip_kit.errors import CheckpointError, ConfigError, ShapeError
from daclip_kit.ops.padding import pad_to_multiple
from daclip_kit.plugins import get_registry
from daclip_kit.types import Conditioning

PEERS = ("nafnet", "nafnet-gopro-w64", "nafnet-sidd-w64", "nafnet-daclip", "restormer",
         "restormer-biasfree", "promptir", "airnet")


def _tiny(name, **extra):
    torch.manual_seed(0)
    return create_backbone(name, **{**dict(get_registry("backbones").get(name).tiny_config), **extra}).eval()


def _perturbed(name, **extra):
    """A tiny network whose zero-initialised branch scales (NAFNet beta/gamma) are non-zero."""
    net = _tiny(name, **extra)
    g = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for p in net.parameters():
            p.add_(0.05 * torch.randn(p.shape, generator=g))
    return net


@pytest.mark.parametrize("name", PEERS)
def test_pipeline_restores_odd_sizes(name):
    net = _tiny(name)
    lq = torch.rand(2, 3, 21, 30, generator=torch.Generator().manual_seed(0))
    out = RestorationPipeline(backbone=net)(lq).image
    assert out.shape == lq.shape and out.min() >= 0 and out.max() <= 1
    single = RestorationPipeline(backbone=net)(lq[1:]).image
    assert torch.allclose(out[1:], single, atol=1e-5)


def test_size_divisors_and_pad_modes():
    assert _tiny("nafnet").size_divisor == _tiny("nafnet", pad_mode="zeros").size_divisor == 4
    assert _tiny("nafnet").pad_mode == "reflect" and _tiny("nafnet", pad_mode="zeros").pad_mode == "constant"
    assert _tiny("restormer").size_divisor == _tiny("promptir").size_divisor == 8
    assert _tiny("airnet").size_divisor == 1


@pytest.mark.parametrize("name", ("nafnet", "restormer", "promptir"))
def test_backbones_never_pad_and_name_the_fix(name):
    with pytest.raises(ShapeError, match="padded_call"):
        _tiny(name)(torch.rand(1, 3, 21, 30))
    with pytest.raises(ShapeError, match="padded_call"):
        _tiny("nafnet", pad_mode="zeros")(torch.rand(1, 3, 21, 30))


@torch.no_grad()
def test_nafnet_zero_padding_mode_pads_with_zeros_and_differs_from_reflect():
    from daclip_kit.ops.padding import padded_call

    reflect = _perturbed("nafnet")
    zeros = _tiny("nafnet", pad_mode="zeros")
    zeros.load_state_dict(reflect.state_dict())
    lq = torch.rand(1, 3, 21, 30, generator=torch.Generator().manual_seed(1))
    a = padded_call(zeros, (lq,), zeros.size_divisor, zeros.pad_mode)
    b = padded_call(reflect, (lq,), reflect.size_divisor, reflect.pad_mode)
    assert a.shape == b.shape == lq.shape
    assert (a - b).abs().max() > 1e-4  # the border treatment really differs
    a_ref = zeros(F.pad(lq, (0, 2, 0, 3)))[..., :21, :30]  # explicit zero pad
    assert torch.equal(a, a_ref)
    b_ref = reflect(pad_to_multiple(lq, 4))[..., :21, :30]
    assert torch.equal(b, b_ref)
    aligned = torch.rand(1, 3, 20, 28)
    assert torch.equal(zeros(aligned), reflect(aligned))


@torch.no_grad()
def test_tlc_falls_back_to_global_pooling_on_small_maps():
    plain = _perturbed("nafnet")
    tlc = _tiny("nafnet", tlc=True)  # train_size 256 -> kernels larger than these maps
    tlc.load_state_dict(plain.state_dict())
    lq = torch.rand(1, 3, 32, 32)
    assert torch.equal(tlc(lq), plain(lq))
    local = _tiny("nafnet", tlc=True, train_size=(8, 8))
    local.load_state_dict(plain.state_dict())
    assert not torch.allclose(local(lq), plain(lq))


def test_airnet_deformable_conv_matches_plain_conv_for_known_offsets():
    net = _tiny("airnet")
    dcn = net.R.body[0].body[0].dgm1.dcn
    x, deg = torch.rand(1, 8, 9, 11), torch.rand(1, 8, 9, 11)
    with torch.no_grad():
        # zero offsets, mask sigmoid(0) = 0.5: half an ordinary 3x3 convolution
        assert torch.allclose(dcn(x, deg), 0.5 * F.conv2d(x, dcn.weight, padding=1), atol=1e-5)
        # every sampling point moved by (+1, +1): the convolution of the shifted image (interior)
        dcn.conv_offset_mask.bias[:18] = 1.0
        shifted = F.conv2d(x[:, :, 1:, 1:], dcn.weight, padding=1)
        assert torch.allclose(dcn(x, deg)[:, :, 1:-2, 1:-2], 0.5 * shifted[:, :, 1:-1, 1:-1], atol=1e-5)


def test_airnet_ignores_conditioning_and_exposes_its_degradation_embedding():
    net = _tiny("airnet")
    lq = torch.rand(2, 3, 13, 17)
    with torch.no_grad():
        out = net(lq)
        assert torch.equal(net(lq, Conditioning(degradation=torch.randn(2, 32))), out)
        assert net.degradation_embedding(lq).shape == (2, 32)


def test_airnet_queue_length_sets_batch_size():
    state = _tiny("airnet", batch_size=3).state_dict()
    assert state["E.E.queue"].shape == (32, 96)
    net = load_official("airnet", state, config={"n_feats": 8, "n_groups": 1, "n_blocks": 1})
    assert net.config.batch_size == 3
    with pytest.raises(CheckpointError, match=r"E\.E\.queue.*batch_size"):
        load_official("airnet", state, config={"n_feats": 8, "n_groups": 1, "n_blocks": 1, "batch_size": 5})


def test_missing_key_is_named():
    state = _tiny("restormer").state_dict()
    del state["output.weight"]
    with pytest.raises(CheckpointError, match=r"Missing keys.*output\.weight"):
        load_official("restormer", {"params": state}, config={"dim": 8, "num_blocks": [1, 1, 1, 1],
                                                               "num_refinement_blocks": 1})


def test_nafnet_mismatch_error_suggests_the_checkpoint_config():
    state = _tiny("nafnet").state_dict()
    with pytest.raises(CheckpointError, match="'enc_blk_nums': \\[1, 1\\]"):
        load_official("nafnet", {"params": state},
                      config={"width": 8, "enc_blk_nums": [1, 1, 1], "dec_blk_nums": [1, 1, 1]})


def test_official_option_files_are_understood():
    state = _tiny("nafnet").state_dict()
    tiny_arch = {"width": 8, "enc_blk_nums": [1, 1], "dec_blk_nums": [1, 1]}
    net = load_official("nafnet-gopro-w64", state, config={**tiny_arch, "train_size": [1, 3, 64, 64]})
    assert net.config.tlc and net.config.train_size == (64, 64) and net.config.pad_mode == "zeros"
    assert not load_official("nafnet", state, config={"type": "NAFNet"}).config.tlc
    with pytest.raises(ConfigError, match="fast_imp"):
        load_official("nafnet", state, config={"type": "NAFNetLocal", "fast_imp": True})
    with pytest.raises(ConfigError, match="decoder=false"):
        load_official("promptir", {}, config={"decoder": False})


def test_convert_cli_writes_a_native_folder(tmp_path):
    from daclip_kit.cli.main import main

    net = _tiny("restormer-biasfree")
    src = tmp_path / "real_denoising.pth"
    torch.save({"params": net.state_dict()}, src)
    config = tmp_path / "cfg.json"
    config.write_text('{"dim": 8, "num_blocks": [1, 1, 1, 1], "num_refinement_blocks": 1}')
    out = tmp_path / "native"
    assert main(["convert", str(src), str(out), "--config", str(config)]) == 0  # recognised: BiasFree keys
    cfg, state = load_pretrained_files(out)
    assert cfg["name"] == "restormer-biasfree" and cfg["config"]["layer_norm_type"] == "BiasFree"
    again = create_backbone("restormer", **cfg["config"]).eval()
    again.load_state_dict(state, strict=True)
    lq = torch.rand(1, 3, 16, 16)
    assert torch.equal(again(lq), net(lq))


def test_convert_recognises_each_release_layout_and_takes_native_folders(tmp_path, capsys):
    """The fingerprints on the specs name the network of a file; a native folder names itself."""
    import json

    from daclip_kit.cli.main import main
    from daclip_kit.pretrained import detect_network

    layouts = {"nafnet": {"params": _tiny("nafnet").state_dict()},
               "restormer": {"params": _tiny("restormer").state_dict()},
               "promptir": {"state_dict": {f"net.{k}": v for k, v in _tiny("promptir").state_dict().items()}},
               "airnet": _tiny("airnet").state_dict(),
               "irsde-unet": create_backbone("irsde-unet", nf=32, ch_mult=(1, 1), context_dim=8).state_dict(),
               "irsde-unet-wild": create_backbone("irsde-unet-wild", nf=32, ch_mult=(1, 1), context_dim=8).state_dict(),
               "irsde-unet-plain": create_backbone("irsde-unet-plain", nf=32, ch_mult=(1, 1)).state_dict()}
    for name, state in layouts.items():
        assert detect_network(state)[0] == name, name
    path = tmp_path / "unknown.pth"
    torch.save({"foo.weight": torch.zeros(2)}, path)
    assert main(["convert", str(path), str(tmp_path / "o")]) == 1
    assert "name the network with --model NAME" in capsys.readouterr().err
    # a native folder converts to a new folder (e.g. to drop a training run's extras)
    src = tmp_path / "nafnet.pth"
    torch.save(layouts["nafnet"], src)
    assert main(["convert", str(src), str(tmp_path / "a")]) == 0
    capsys.readouterr()
    assert main(["convert", str(tmp_path / "a"), str(tmp_path / "b"), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["model"] == "nafnet"
    assert json.loads((tmp_path / "b" / "config.json").read_text())["name"] == "nafnet"
