"""Write a daclip-kit plugin in five minutes.

Run it: ``python examples/write_a_plugin/walkthrough.py``

A plugin is any module with ``@daclip_kit.hookimpl`` functions that return specs. Installed
distributions announce the module in the ``daclip_kit`` entry-point group (see
``plugins/daclip-kit-tinynet/pyproject.toml``); here we register it in-process instead.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass

import torch
from torch import nn

import daclip_kit
from daclip_kit.core.backbone import RestorationBackbone
from daclip_kit.specs import BackboneSpec
from daclip_kit.types import Conditioning


# 1. The component: a config dataclass and an nn.Module taking it.
@dataclass(frozen=True, kw_only=True)
class SharpenConfig:
    width: int = 16
    context_dim: int = 512
    adapter: str = "cross-attention"   # any registered adapter, swappable by config


class SharpenNet(RestorationBackbone):
    """A toy one-shot restorer conditioned on the content embedding through a named adapter."""

    size_divisor = 1

    def __init__(self, config: SharpenConfig):
        super().__init__()
        self.head = nn.Conv2d(3, config.width, 3, padding=1)
        self.adapter = daclip_kit.create_adapter(config.adapter, dim=config.width,
                                                 context_dim=config.context_dim, heads=2)
        self.accepts = frozenset({self.adapter.role})
        self.tail = nn.Conv2d(config.width, 3, 3, padding=1)

    def forward(self, lq: torch.Tensor, cond: Conditioning | None = None) -> torch.Tensor:
        return lq + self.tail(self.adapter(torch.relu(self.head(lq)), cond))


# 2. The plugin: a hook returning specs. Targets are "module:attr" strings, imported lazily.
@daclip_kit.hookimpl
def daclip_kit_register_backbones():
    return [BackboneSpec(
        name="sharpen-net",
        target=f"{__name__}:SharpenNet",
        config=f"{__name__}:SharpenConfig",
        accepts=("content",),
        summary="walkthrough example",
        tiny_config={"width": 16, "context_dim": 32},
    )]


def main() -> None:
    # 3. Register this module as a plugin (an installed package would use its entry point).
    daclip_kit.register_plugin(sys.modules[__name__], name="walkthrough")
    print("registered backbones:", daclip_kit.list_components("backbones"))

    # 4. Create it by name, with config checked against SharpenConfig.
    net = daclip_kit.create_backbone("sharpen-net", width=16, context_dim=32).eval()
    lq = torch.rand(1, 3, 24, 24)
    cond = Conditioning(content=torch.randn(1, 32))
    print("output shape:", tuple(net(lq, cond).shape))

    # 5. Run the same contract checks daclip-kit runs on its own components.
    from daclip_kit.testing import check_backbone_contract

    check_backbone_contract("sharpen-net")
    print("contract: ok")


if __name__ == "__main__":
    main()
