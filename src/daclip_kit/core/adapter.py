"""Conditioning adapters: modules that inject a conditioning signal into feature maps."""

from __future__ import annotations

import torch
from torch import nn

from ..types import Conditioning


class ConditioningAdapter(nn.Module):
    """Base class of adapters (cross-attention, prompt modules).

    Backbones build adapters by registry name with ``create_adapter(name, dim=C, context_dim=D)``,
    so a third-party adapter can replace a built-in one through configuration.

    Attributes:
        role: the :class:`~daclip_kit.types.Conditioning` field the adapter reads.
    """

    role: str = "content"

    def forward(self, features: torch.Tensor, cond: Conditioning | None) -> torch.Tensor:
        """Return conditioned features.

        Shape:
            - features: ``(B, C, h, w)``.
            - output: ``(B, C, h, w)``. With no signal for :attr:`role`, adapters return features
              unchanged.
        """
        raise NotImplementedError
