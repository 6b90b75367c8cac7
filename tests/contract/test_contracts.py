"""Every registered component, built-in or plugin, passes the contract checks plugin authors use."""

import pytest

import daclip_kit
from daclip_kit import testing


def _names(kind):
    try:
        return daclip_kit.list_components(kind)
    finally:
        from daclip_kit import plugins

        plugins.reset()


@pytest.mark.parametrize("name", _names("backbones"))
def test_backbone_contract(name):
    testing.check_backbone_contract(name)


@pytest.mark.parametrize("name", _names("adapters"))
def test_adapter_contract(name):
    testing.check_adapter_contract(name)


@pytest.mark.parametrize("name", _names("embedders"))
def test_embedder_contract(name):
    testing.check_embedder_contract(name)


@pytest.mark.parametrize("name", _names("samplers"))
def test_sampler_contract(name):
    testing.check_sampler_contract(name)


@pytest.mark.parametrize("name", _names("degradations"))
def test_degradation_contract(name):
    testing.check_degradation_contract(name)


def test_contract_catches_an_adapter_that_ignores_its_signal():
    from daclip_kit.adapters.cross_attention import (
        CrossAttentionAdapter,
        CrossAttentionConfig,
    )

    class Deaf(CrossAttentionAdapter):
        def forward(self, features, cond):
            return features

    with pytest.raises(AssertionError, match="has no effect"):
        testing.check_adapter_contract(Deaf(CrossAttentionConfig(dim=32, context_dim=8, heads=2)))


def test_contract_catches_batch_mixing():
    import torch

    from daclip_kit.core.backbone import RestorationBackbone

    class Mixer(RestorationBackbone):
        def __init__(self):
            super().__init__()
            self.w = torch.nn.Parameter(torch.ones(1))

        def forward(self, lq, cond=None):
            return lq * self.w + lq.mean(0, keepdim=True)

    with pytest.raises(AssertionError, match="batch elements interact"):
        testing.check_backbone_contract(Mixer())
