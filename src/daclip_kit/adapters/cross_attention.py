"""Cross-attention adapter: feature pixels attend to conditioning tokens.

The output projection is zero-initialised, so attaching the adapter to a trained backbone leaves
its output unchanged until the adapter is trained (ControlNet-style).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

from ..core.adapter import ConditioningAdapter
from ..core.checks import check_image
from ..errors import ConfigError, ShapeError
from ..types import Conditioning


@dataclass(frozen=True, kw_only=True)
class CrossAttentionConfig:
    """Config of :class:`CrossAttentionAdapter`.

    Attributes:
        dim: channels ``C`` of the feature map.
        context_dim: size ``D`` of the conditioning embedding.
        heads: attention heads; ``dim`` must be divisible by it.
        role: which conditioning field is attended to (``content`` or ``degradation``; ``tokens``
            gives ``(B, L, D)`` context).
    """

    dim: int
    context_dim: int = 512
    heads: int = 8
    role: Literal["content", "degradation", "tokens"] = "content"

    def __post_init__(self) -> None:
        if self.dim % self.heads:
            raise ConfigError(f"dim={self.dim} must be divisible by heads={self.heads}.")


class CrossAttentionAdapter(ConditioningAdapter):
    """``x + proj_out(attn(norm(x), context))`` with a zero-initialised ``proj_out``.

    Shape:
        - features: ``(B, C, h, w)``; context ``(B, D)`` or ``(B, L, D)``.
        - output: ``(B, C, h, w)``.
    """

    def __init__(self, config: CrossAttentionConfig):
        super().__init__()
        self.config = config
        self.role = config.role
        c = config.dim
        self.norm = nn.GroupNorm(min(32, c), c, eps=1e-6)
        self.to_q = nn.Linear(c, c, bias=False)
        self.to_k = nn.Linear(config.context_dim, c, bias=False)
        self.to_v = nn.Linear(config.context_dim, c, bias=False)
        self.proj_out = nn.Linear(c, c)
        nn.init.zeros_(self.proj_out.weight)
        nn.init.zeros_(self.proj_out.bias)

    def forward(self, features: torch.Tensor, cond: Conditioning | None) -> torch.Tensor:
        check_image(features, "features", channels=self.config.dim)
        ctx = None if cond is None else getattr(cond, self.role)
        if ctx is None:
            return features
        if ctx.ndim == 2:
            ctx = ctx[:, None, :]
        if ctx.ndim != 3 or ctx.shape[-1] != self.config.context_dim:
            raise ShapeError(
                f"{self.role} context must be (B, {self.config.context_dim}) or "
                f"(B, L, {self.config.context_dim}), got {tuple(ctx.shape)}."
            )
        b, c, h, w = features.shape
        heads = self.config.heads
        x = self.norm(features).flatten(2).transpose(1, 2)  # (B, hw, C)
        q = self.to_q(x).view(b, h * w, heads, c // heads).transpose(1, 2)
        k = self.to_k(ctx.to(x.dtype)).view(b, -1, heads, c // heads).transpose(1, 2)
        v = self.to_v(ctx.to(x.dtype)).view(b, -1, heads, c // heads).transpose(1, 2)
        out = F.scaled_dot_product_attention(q, k, v).transpose(1, 2).reshape(b, h * w, c)
        return features + self.proj_out(out).transpose(1, 2).reshape(b, c, h, w)
