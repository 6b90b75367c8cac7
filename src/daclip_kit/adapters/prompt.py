"""Degradation prompt adapter (the paper's "prompt learning" for the degradation embedding).

The degradation embedding selects a softmax mixture of learned prompt vectors; the mixture is
mapped to a per-channel scale and shift of the features. The mapping is zero-initialised, so a
fresh adapter is the identity.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from ..core.adapter import ConditioningAdapter
from ..core.checks import check_embedding, check_image
from ..types import Conditioning


@dataclass(frozen=True, kw_only=True)
class PromptConfig:
    """Config of :class:`PromptAdapter`.

    Attributes:
        dim: channels ``C`` of the feature map.
        context_dim: size ``D`` of the degradation embedding.
        num_prompts: number of learned prompt vectors.
        prompt_dim: size of each prompt vector.
    """

    dim: int
    context_dim: int = 512
    num_prompts: int = 8
    prompt_dim: int = 128


class PromptAdapter(ConditioningAdapter):
    """``x * (1 + scale) + shift`` with ``(scale, shift) = to_film(softmax(W d) @ prompts)``.

    Shape:
        - features: ``(B, C, h, w)``; ``cond.degradation``: ``(B, D)``.
        - output: ``(B, C, h, w)``.
    """

    role = "degradation"

    def __init__(self, config: PromptConfig):
        super().__init__()
        self.config = config
        self.select = nn.Sequential(
            nn.Linear(config.context_dim, config.prompt_dim), nn.SiLU(),
            nn.Linear(config.prompt_dim, config.num_prompts),
        )
        self.prompts = nn.Parameter(torch.randn(config.num_prompts, config.prompt_dim) * 0.02)
        self.to_film = nn.Linear(config.prompt_dim, 2 * config.dim)
        nn.init.zeros_(self.to_film.weight)
        nn.init.zeros_(self.to_film.bias)

    def forward(self, features: torch.Tensor, cond: Conditioning | None) -> torch.Tensor:
        check_image(features, "features", channels=self.config.dim)
        d = None if cond is None else cond.degradation
        if d is None:
            return features
        check_embedding(d, "degradation", features.shape[0], self.config.context_dim)
        weights = self.select(d.to(features.dtype)).softmax(dim=-1)  # (B, P)
        prompt = weights @ self.prompts  # (B, prompt_dim)
        scale, shift = self.to_film(prompt)[:, :, None, None].chunk(2, dim=1)
        return features * (1 + scale) + shift
