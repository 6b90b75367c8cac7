"""Restoration networks: one-shot backbones and diffusion denoisers.

The padding rule: networks never pad. Each declares ``size_divisor`` and ``pad_mode``; whoever
calls it with other sizes pads the inputs (bottom/right) and crops the output back with
:func:`daclip_kit.ops.padding.padded_call`, as the pipeline and :func:`daclip_kit.sample` do.
"""

from __future__ import annotations

import torch
from torch import nn

from ..types import Conditioning


class RestorationBackbone(nn.Module):
    """A one-shot restoration model (NAFNet, Restormer, PromptIR, ...).

    Attributes:
        size_divisor: H and W given to :meth:`forward` are multiples of this.
        pad_mode: how callers pad to ``size_divisor``: ``"reflect"`` or ``"constant"`` (zeros).
        accepts: conditioning roles the model uses (subset of ``{"degradation", "content"}``).
    """

    size_divisor: int = 1
    pad_mode: str = "reflect"
    accepts: frozenset[str] = frozenset()

    def forward(self, lq: torch.Tensor, cond: Conditioning | None = None) -> torch.Tensor:
        """Restore ``lq``.

        Shape:
            - lq: ``(B, 3, H, W)`` float RGB in [0, 1], H and W multiples of ``size_divisor``.
            - output: ``(B, 3, H, W)``, approximately [0, 1] (the pipeline clamps).
        """
        raise NotImplementedError


class Denoiser(nn.Module):
    """A diffusion network predicting noise from a noisy state and the LQ image.

    Attributes:
        size_divisor: H and W given to :meth:`forward` are multiples of this.
        pad_mode: how callers pad to ``size_divisor`` (``"reflect"`` or ``"constant"``).
        accepts: conditioning roles the network uses.
        context_dim: size of the conditioning embeddings it expects (0 if none).
        prediction: what :meth:`forward` returns: ``"noise"`` (the noise in ``x_t``; the official
            networks) or ``"clean"`` (the clean image); samplers take noise, and
            :func:`daclip_kit.sample` converts a clean prediction through the sampler's SDE.
    """

    size_divisor: int = 1
    pad_mode: str = "reflect"
    accepts: frozenset[str] = frozenset()
    context_dim: int = 0
    prediction: str = "noise"

    def forward(self, x_t: torch.Tensor, lq: torch.Tensor, t: torch.Tensor | float,
                degradation: torch.Tensor | None = None,
                content: torch.Tensor | None = None) -> torch.Tensor:
        """Predict the noise in ``x_t``.

        Shape:
            - x_t, lq: ``(B, 3, H, W)``, H and W multiples of ``size_divisor``.
            - t: ``(B,)`` tensor or a Python number broadcast over the batch.
            - degradation, content: ``(B, context_dim)`` or ``None``.
            - output: ``(B, 3, H, W)``.
        """
        raise NotImplementedError
