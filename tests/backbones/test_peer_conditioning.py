"""DA-CLIP adapters attached to Restormer and PromptIR by configuration (paper Table 6)."""

from __future__ import annotations

import pytest
import torch

import daclip_kit
from daclip_kit.errors import ConfigError
from daclip_kit.plugins import get_registry
from daclip_kit.types import Conditioning

TINY = dict(get_registry("backbones").get("restormer").tiny_config)
PROMPTIR = dict(get_registry("backbones").get("promptir").tiny_config)


@pytest.mark.parametrize(("plain", "conditioned"), [("restormer", "restormer-daclip"), ("promptir", "promptir-daclip")])
def test_a_new_conditioned_network_computes_the_plain_one_it_starts_from(plain, conditioned):
    base = daclip_kit.create_backbone(plain, **get_registry("backbones").get(plain).tiny_config).eval()
    cfg = dict(get_registry("backbones").get(conditioned).tiny_config)
    net = daclip_kit.create_backbone(conditioned, **cfg).eval()
    missing, unexpected = net.load_state_dict(base.state_dict(), strict=False)
    assert not unexpected and missing and all(k.startswith("adapters.points.") for k in missing)
    lq = torch.rand(2, 3, 16, 24, generator=torch.Generator().manual_seed(0))
    g = torch.Generator().manual_seed(1)
    cond = Conditioning(degradation=torch.randn(2, 32, generator=g), content=torch.randn(2, 32, generator=g))
    with torch.no_grad():
        assert torch.equal(net(lq, cond), base(lq))  # zero-initialised adapter outputs
        for p in net.adapters.parameters():  # once trained, the embeddings change the result
            p.add_(0.05 * torch.randn(p.shape, generator=g))
        assert (net(lq, cond) - base(lq)).abs().max() > 1e-4


def test_adapters_attach_where_the_docstring_says_and_only_when_asked():
    plain = daclip_kit.create_backbone("restormer", **TINY)
    assert plain.accepts == frozenset() and not any(k.startswith("adapters") for k in plain.state_dict())
    both = daclip_kit.create_backbone("restormer-daclip", **TINY, context_dim=16, content_adapter_config={"heads": 2})
    assert both.accepts == {"degradation", "content"}
    assert set(both.adapters.points) == {"latent", "decoder3", "decoder2", "decoder1"}
    assert both.adapters.points["latent"].config.dim == 64 and both.adapters.points["decoder1"].config.dim == 16
    only_deg = daclip_kit.create_backbone("restormer", **TINY, context_dim=16, degradation_adapter="cross-attention",
                                          degradation_adapter_config={"heads": 2})
    assert only_deg.accepts == {"degradation"} and only_deg.adapters.points["decoder3"].role == "degradation"
    promptir = daclip_kit.create_backbone("promptir-daclip", **PROMPTIR, context_dim=16,
                                          content_adapter_config={"heads": 2})
    assert promptir.accepts == {"content"} and set(promptir.adapters.points) == {"latent"}


def test_adapter_misconfiguration_is_a_clear_error():
    with pytest.raises(ConfigError, match="reads the 'degradation' embedding"):
        daclip_kit.create_backbone("restormer", **TINY, context_dim=16, content_adapter="prompt")
    with pytest.raises(ConfigError, match="content_adapter_config"):
        daclip_kit.create_backbone("restormer", **TINY, content_adapter="cross-attention", content_adapter_config=3)
    with pytest.raises(daclip_kit.errors.UnknownComponentError):
        daclip_kit.create_backbone("restormer", **TINY, content_adapter="cross-atention")
