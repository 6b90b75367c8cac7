"""FiLM adapter: ``x * (1 + gamma(e)) + beta(e)`` from one embedding, zero-initialised."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch
from torch import nn

from daclip_kit.core.adapter import ConditioningAdapter
from daclip_kit.types import Conditioning


@dataclass(frozen=True, kw_only=True)
class FiLMConfig:
    dim: int
    context_dim: int = 512
    role: Literal["content", "degradation"] = "content"


class FiLMAdapter(ConditioningAdapter):
    """Shape: features ``(B, C, h, w)``, embedding ``(B, D)`` -> ``(B, C, h, w)``."""

    def __init__(self, config: FiLMConfig):
        super().__init__()
        self.config = config
        self.role = config.role
        self.to_affine = nn.Linear(config.context_dim, 2 * config.dim)
        nn.init.zeros_(self.to_affine.weight)
        nn.init.zeros_(self.to_affine.bias)

    def forward(self, features: torch.Tensor, cond: Conditioning | None) -> torch.Tensor:
        e = None if cond is None else getattr(cond, self.role)
        if e is None:
            return features
        gamma, beta = self.to_affine(e.to(features.dtype))[:, :, None, None].chunk(2, dim=1)
        return features * (1 + gamma) + beta
