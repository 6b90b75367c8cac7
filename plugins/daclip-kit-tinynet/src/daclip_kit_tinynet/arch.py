"""TinyNet: conv -> residual blocks -> adapter -> residual blocks -> conv, plus the input."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from daclip_kit import create_adapter
from daclip_kit.core.backbone import RestorationBackbone
from daclip_kit.types import Conditioning


@dataclass(frozen=True, kw_only=True)
class TinyNetConfig:
    width: int = 32
    blocks: int = 2
    context_dim: int = 512
    adapter: str = "film"


class _ResBlock(nn.Module):
    def __init__(self, c: int):
        super().__init__()
        self.body = nn.Sequential(nn.Conv2d(c, c, 3, padding=1), nn.SiLU(), nn.Conv2d(c, c, 3, padding=1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


class TinyNet(RestorationBackbone):
    """A one-shot restorer; predicts a residual added to the LQ input.

    Shape: ``lq`` ``(B, 3, H, W)`` in [0, 1] with H, W multiples of 2 -> ``(B, 3, H, W)``.
    """

    size_divisor = 2
    accepts = frozenset({"content"})

    def __init__(self, config: TinyNetConfig):
        super().__init__()
        self.config = config
        c = config.width
        self.head = nn.Conv2d(3, c, 3, padding=1)
        self.down = nn.Conv2d(c, c, 2, stride=2)
        self.enc = nn.Sequential(*[_ResBlock(c) for _ in range(config.blocks)])
        self.adapter = create_adapter(config.adapter, dim=c, context_dim=config.context_dim)
        self.accepts = frozenset({self.adapter.role})
        self.dec = nn.Sequential(*[_ResBlock(c) for _ in range(config.blocks)])
        self.up = nn.ConvTranspose2d(c, c, 2, stride=2)
        self.tail = nn.Conv2d(c, 3, 3, padding=1)

    def forward(self, lq: torch.Tensor, cond: Conditioning | None = None) -> torch.Tensor:
        x = self.enc(self.down(self.head(lq)))
        x = self.dec(self.adapter(x, cond))
        return lq + self.tail(self.up(x))
