"""NAFNet + DA-CLIP: zero-initialised conditioning equals the plain NAFNet; both roles act."""

from __future__ import annotations

import json

import pytest
import torch

from daclip_kit import create_backbone
from daclip_kit.errors import CheckpointError, ShapeError, UnknownComponentError
from daclip_kit.types import Conditioning

TINY = {"width": 8, "middle_blk_num": 2, "enc_blk_nums": (1, 1), "dec_blk_nums": (1, 2)}
D = 16


def _perturb(module, seed):
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in module.parameters():
            p.add_(0.05 * torch.randn(p.shape, generator=g))


def _cond(batch, seed=0):
    g = torch.Generator().manual_seed(seed)
    return Conditioning(degradation=torch.randn(batch, D, generator=g), content=torch.randn(batch, D, generator=g))


@pytest.fixture
def plain():
    torch.manual_seed(0)
    net = create_backbone("nafnet", **TINY).eval()
    _perturb(net, 1)  # non-zero beta/gamma: every block contributes
    return net


def test_new_conditioned_net_equals_plain_nafnet_for_any_conditioning(plain):
    net = create_backbone("nafnet-daclip", **TINY, context_dim=D).eval()
    net.load_nafnet_weights(plain.state_dict())
    lq = torch.rand(2, 3, 20, 28, generator=torch.Generator().manual_seed(3))
    with torch.no_grad():
        want = plain(lq)
        assert torch.equal(net(lq), want)
        assert torch.allclose(net(lq, _cond(2)), want, atol=1e-6, rtol=0)
        zero = Conditioning(degradation=torch.zeros(2, D), content=torch.zeros(2, D))
        assert torch.allclose(net(lq, zero), want, atol=1e-6, rtol=0)


def test_trained_conditioning_changes_the_output_per_role(plain):
    net = create_backbone("nafnet-daclip", **TINY, context_dim=D).eval()
    net.load_nafnet_weights(plain.state_dict())
    _perturb(net, 2)
    lq = torch.rand(2, 3, 20, 28, generator=torch.Generator().manual_seed(3))
    a, b = _cond(2, 0), _cond(2, 1)
    with torch.no_grad():
        base = net(lq, a)
        for role in ("degradation", "content"):
            changed = Conditioning(**{**a.__dict__, role: getattr(b, role)})
            assert (net(lq, changed) - base).abs().max() > 1e-4, role
        # without conditioning the network is the plain NAFNet part
        plain.load_state_dict({k: v for k, v in net.state_dict().items() if k in plain.state_dict()})
        assert torch.equal(net(lq), plain(lq))


def test_roles_can_be_switched_off():
    net = create_backbone("nafnet-daclip", **TINY, context_dim=D, use_content=False).eval()
    assert net.accepts == frozenset({"degradation"})
    assert not hasattr(net, "content_adapters")
    only = create_backbone("nafnet-daclip", **TINY, context_dim=D, use_degradation=False)
    assert only.accepts == frozenset({"content"})
    assert not any(".modulation." in k for k in only.state_dict())


def test_content_adapter_is_built_by_registry_name():
    net = create_backbone("nafnet-daclip", **TINY, context_dim=D, content_adapter_config={"heads": 4})
    assert len(net.content_adapters) == TINY["middle_blk_num"]
    assert net.content_adapters[0].config.heads == 4 and net.content_adapters[0].config.dim == 32
    with pytest.raises(UnknownComponentError, match="cross-attention"):
        create_backbone("nafnet-daclip", **TINY, context_dim=D, content_adapter="cross-atention")


def test_embedding_shapes_are_checked():
    net = create_backbone("nafnet-daclip", **TINY, context_dim=D).eval()
    with pytest.raises(ShapeError, match="degradation"):
        net(torch.rand(2, 3, 16, 16), Conditioning(degradation=torch.randn(2, D + 1)))


def test_plain_weights_must_match():
    net = create_backbone("nafnet-daclip", **TINY, context_dim=D)
    state = create_backbone("nafnet", **TINY).state_dict()
    del state["intro.bias"]
    with pytest.raises(CheckpointError, match=r"intro\.bias"):
        net.load_nafnet_weights(state)


def test_full_size_parameter_count(reference_dir):
    """GoPro width-64 NAFNet (official count) + degradation MLP + per-block modulation + middle
    cross-attention, counted from the design: 80,018,371 parameters."""
    plain = json.loads((reference_dir / "peers" / "nafnet_gopro_w64.keys.json").read_text())["num_params"]
    with torch.device("meta"):
        net = create_backbone("nafnet-daclip")
    widths = [64] + [128] + [256] + [512] * 28 + [1024] + [512, 256, 128, 64]  # every NAFBlock's channels
    h, d = 256, 512
    mlp = (d * 2 * h + 2 * h) + (h * h + h)
    modulation = sum((h // 2) * 4 * c + 4 * c for c in widths)
    c = 1024
    attention = 2 * c + c * c + 2 * d * c + (c * c + c)  # GroupNorm, q, k+v, out
    assert sum(p.numel() for p in net.parameters()) == plain + mlp + modulation + attention == 80_018_371
