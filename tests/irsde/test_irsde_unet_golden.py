"""The U-Net against the official network's recorded outputs (tiny random weights)."""

from __future__ import annotations

import pytest
import torch
from _tolerance import PARITY_ATOL

from daclip_kit.backbones.irsde_unet.arch import ConditionalUNet
from daclip_kit.backbones.irsde_unet.config import UNetConfig
from daclip_kit.checkpoint import load_strict
from daclip_kit.factory import create_backbone

FIXTURES = {"universal": "irsde_universal_unet_tiny.golden.pt", "wild": "irsde_wild_unet_tiny.golden.pt"}
ATOL = PARITY_ATOL

pytestmark = pytest.mark.usefixtures("one_thread")



def run(net, x_t, lq, t, **context):
    """The network on any size, padded and cropped by the one padding rule."""
    from daclip_kit.ops.padding import padded_call

    return padded_call(lambda a, b: net(a, b, t, **context), (x_t, lq), net.size_divisor, net.pad_mode)


def _net(golden, which: str, reference_ops: bool) -> tuple[ConditionalUNet, dict]:
    g = golden(FIXTURES[which])
    net = ConditionalUNet(UNetConfig(**g["config"])).eval()
    load_strict(net, g["state_dict"], source=FIXTURES[which])
    return net.use_reference_ops(reference_ops), g


@pytest.mark.parametrize("reference_ops", [False, True], ids=["fast", "reference"])
@pytest.mark.parametrize("which", ["universal", "wild"])
def test_forward_matches_official(golden, which, reference_ops):
    net, g = _net(golden, which, reference_ops)
    i, out = g["inputs"], g["outputs"]
    deg, content = i["text_context"], i["image_context"]
    with torch.no_grad():
        got = {
            "full": run(net, i["xt"], i["cond"], i["time"], degradation=deg, content=content),
            "scalar_time": run(net, i["xt"], i["cond"], 37.0, degradation=deg, content=content),
            "no_context": run(net, i["xt"], i["cond"], i["time"]),
            "image_context_only": run(net, i["xt"], i["cond"], i["time"], content=content),
        }
    for name, value in got.items():
        assert value.shape == (2, 3, 20, 28), name
        torch.testing.assert_close(value, out[name], atol=ATOL, rtol=0, msg=name)
    # The content embedding moves these random-weight outputs by only 3e-5 to 4e-5, so compare its effect on
    # its own: a difference of two outputs, each within ATOL of the official one, is within 2 ATOL of the
    # official difference, which is larger than that (a dropped content path fails)
    effect = out["image_context_only"] - out["no_context"]
    assert effect.abs().max() > 2 * ATOL
    torch.testing.assert_close(got["image_context_only"] - got["no_context"], effect, atol=2 * ATOL, rtol=0)


@pytest.mark.parametrize("which", ["universal", "wild"])
def test_time_embedding_matches_official(golden, which):
    net, g = _net(golden, which, False)
    i = g["inputs"]
    with torch.no_grad():
        torch.testing.assert_close(net.time_mlp(i["time"].float()), g["outputs"]["time_mlp(time)"],
                                   atol=ATOL, rtol=0)
        # an integer tensor, a float tensor and a Python number give the same embedding
        a = net.time_embedding(torch.tensor([37]), 1, torch.device("cpu"))
        b = net.time_embedding(37.0, 1, torch.device("cpu"))
        torch.testing.assert_close(a, b)


def test_prompt_embedding_matches_official(golden):
    net, g = _net(golden, "universal", False)
    i = g["inputs"]
    with torch.no_grad():
        with_prompt = net.time_embedding(i["time"], 2, torch.device("cpu"), i["text_context"])
        plain = net.time_embedding(i["time"], 2, torch.device("cpu"))
    torch.testing.assert_close(with_prompt - plain, g["outputs"]["prompt_embedding"], atol=ATOL, rtol=0)


def test_wild_ignores_degradation(golden):
    net, g = _net(golden, "wild", False)
    i = g["inputs"]
    with torch.no_grad():
        a = run(net, i["xt"], i["cond"], i["time"], content=i["image_context"])
        b = run(net, i["xt"], i["cond"], i["time"], degradation=torch.randn(2, 7), content=i["image_context"])
    torch.testing.assert_close(a, b, atol=0, rtol=0)


def test_registered_variants_build_the_fixture_networks(golden):
    g = golden(FIXTURES["wild"])
    net = create_backbone("irsde-unet-wild", nf=32, ch_mult=[1, 1, 1, 1], context_dim=32)
    load_strict(net, g["state_dict"])
    assert net.accepts == frozenset({"content"})
    g = golden(FIXTURES["universal"])
    net = create_backbone("irsde-unet", nf=32, ch_mult=[1, 1, 1, 1], context_dim=32)
    load_strict(net, g["state_dict"])
    assert net.accepts == frozenset({"degradation", "content"})
    assert net.size_divisor == 16


def test_plain_network_has_no_context_modules():
    net = create_backbone("irsde-unet-plain", nf=32, ch_mult=[1, 1, 1, 1])
    keys = net.state_dict().keys()
    assert not any("transformer_blocks" in k or k.startswith(("prompt", "text_mlp")) for k in keys)
    x = torch.rand(1, 3, 16, 24)
    with torch.no_grad():
        assert run(net, x, x, 5).shape == (1, 3, 16, 24)


def test_gradients_flow_in_training_mode(golden):
    net, g = _net(golden, "universal", False)
    net.train()
    i = g["inputs"]
    out = run(net, i["xt"], i["cond"], i["time"], degradation=i["text_context"], content=i["image_context"])
    out.square().mean().backward()
    grads = {k: p.grad for k, p in net.named_parameters()}
    # with one context token the cross-attention output does not depend on to_q/to_k/norm2
    # (softmax over one key is 1), so the official network's gradients for them are exactly 0
    inert = ("attn2.to_q.", "attn2.to_k.", ".norm2.")
    assert all(v is not None for k, v in grads.items() if not any(s in k for s in inert))
    assert all(v is None or v.abs().max() == 0 for k, v in grads.items() if any(s in k for s in inert))
    # the upsampling convs get gradients through the sub-pixel path
    assert grads["ups.1.3.1.weight"].abs().sum() > 0


def test_missing_content_is_a_clear_error():
    from daclip_kit.errors import ShapeError

    net = ConditionalUNet(UNetConfig(nf=32, ch_mult=(1, 1, 1, 1), context_dim=48))
    x = torch.rand(1, 3, 16, 16)
    with pytest.raises(ShapeError, match="content"):
        net(x, x, 3)
    with pytest.raises(ShapeError, match="content"):
        net(x, x, 3, content=torch.randn(1, 32))


@pytest.mark.parametrize("reference_ops", [False, True], ids=["fast", "reference"])
def test_bf16_autocast_runs_both_paths(golden, reference_ops):
    net, g = _net(golden, "universal", reference_ops)
    i = g["inputs"]
    with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16):
        out = run(net, i["xt"], i["cond"], i["time"], degradation=i["text_context"], content=i["image_context"])
    assert out.dtype == torch.bfloat16
    err = (out.float() - g["outputs"]["full"]).abs().max()
    assert 0 < err < 0.1  # bf16 rounding, measured ~0.046 on both paths


def test_networks_never_pad_and_name_the_fix():
    from daclip_kit.errors import ShapeError

    net = ConditionalUNet(UNetConfig(nf=32, ch_mult=(1, 1), context_dim=0, use_degra_context=False,
                                     use_image_context=False))
    x = torch.rand(1, 3, 10, 12)
    with pytest.raises(ShapeError, match=r"multiples of 4.*padded_call"):
        net(x, x, 3)
    assert run(net, x, x, 3).shape == (1, 3, 10, 12)
