"""Outputs of the official NAFNet / Restormer / PromptIR code (recorded goldens) are reproduced."""

from __future__ import annotations

import pytest
import torch
from _tolerance import PARITY_ATOL

from daclip_kit.compat import load_official
from daclip_kit.core.pipeline import RestorationPipeline
from daclip_kit.ops.padding import crop_to, pad_to_multiple

ATOL = PARITY_ATOL


def _check(got: torch.Tensor, want: torch.Tensor) -> None:
    assert got.shape == want.shape
    assert (got - want).abs().max().item() < ATOL


def run(net, x):
    """The network on any size, padded with its own pad mode and cropped back."""
    from daclip_kit.ops.padding import padded_call

    return padded_call(net, (x,), net.size_divisor, net.pad_mode)


@pytest.fixture
def nafnet_golden(golden):
    return golden("peers/nafnet_tiny.golden.pt")


def test_nafnet_y_with_official_zero_padding(nafnet_golden):
    g = nafnet_golden
    net = load_official("nafnet", {"params": g["state_dict"]}, config=g["config"])
    assert net.config.pad_mode == "zeros" and net.pad_mode == "constant" and not net.config.tlc
    with torch.no_grad():
        _check(run(net, g["inputs"]["x"]), g["outputs"]["y"])


def test_nafnet_tlc_reproduces_nafnetlocal(nafnet_golden):
    g = nafnet_golden
    cfg = {**g["config"], "type": "NAFNetLocal", "train_size": g["tlc_train_size"]}
    net = load_official("nafnet", {"params": g["state_dict"]}, config=cfg)
    kernels = {name: list(m.kernel_size) for name, m in net.named_modules() if name.endswith("sca.0")}
    assert kernels == {k: list(v) for k, v in g["tlc_kernel_sizes"].items()}
    with torch.no_grad():
        y_tlc = run(net, g["inputs"]["x"])
    _check(y_tlc, g["outputs"]["y_tlc"])
    # the TLC effect is larger than the tolerance, so the comparison above can tell them apart
    assert (y_tlc - g["outputs"]["y"]).abs().max() > 3 * ATOL


def test_nafnet_through_the_pipeline_keeps_official_padding(nafnet_golden):
    g = nafnet_golden
    net = load_official("nafnet", {"params": g["state_dict"]}, config=g["config"])
    out = RestorationPipeline(backbone=net)(g["inputs"]["x"]).image
    _check(out, g["outputs"]["y"].clamp(0, 1))


def test_restormer_y_and_demo_padding(golden):
    g = golden("peers/restormer_tiny.golden.pt")
    net = load_official("restormer", {"params": g["state_dict"]}, config=g["config"])
    x_odd = g["inputs"]["x_odd"]
    with torch.no_grad():
        _check(run(net, g["inputs"]["x"]), g["outputs"]["y"])
        padded = pad_to_multiple(x_odd, net.size_divisor)
        _check(crop_to(net(padded), *x_odd.shape[-2:]), g["outputs"]["y_odd_demo_pad"])
    _check(RestorationPipeline(backbone=net)(x_odd).image, g["outputs"]["y_odd_demo_pad"].clamp(0, 1))


def test_promptir_y_from_a_lightning_checkpoint(golden):
    g = golden("peers/promptir_tiny.golden.pt")
    ckpt = {"epoch": 3, "global_step": 120, "pytorch-lightning_version": "2.1.0",
            "state_dict": {f"net.{k}": v for k, v in g["state_dict"].items()}}
    net = load_official("promptir", ckpt, config=g["config"])
    with torch.no_grad():
        _check(run(net, g["inputs"]["x"]), g["outputs"]["y"])


def test_nafnet_golden_from_a_basicsr_file_with_ddp_prefix(nafnet_golden, tmp_path):
    g = nafnet_golden
    path = tmp_path / "NAFNet-tiny.pth"
    torch.save({"params": {f"module.{k}": v for k, v in g["state_dict"].items()}, "iter": 1000}, path)
    net = load_official("nafnet", path)  # architecture read from the keys
    assert net.config.width == 16 and net.config.enc_blk_nums == (1, 1)
    with torch.no_grad():
        _check(run(net, g["inputs"]["x"]), g["outputs"]["y"])
