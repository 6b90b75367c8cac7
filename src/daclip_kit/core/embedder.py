"""Embedding providers: images in [0,1] -> :class:`~daclip_kit.types.ImageEmbedding`."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import torch
from torch import nn

from ..types import DEGRADATIONS, ImageEmbedding
from .ood import OodCalibration


@dataclass(frozen=True)
class Classification:
    """Result of :meth:`EmbeddingProvider.classify`.

    Attributes:
        labels: the candidate labels, in column order.
        probs: ``(B, N)`` softmax probabilities over ``labels``.
        embeddings: ``(B, D)`` the L2-normalised image embeddings compared with the labels (the
            degradation embedding where the provider has one): what the unknown-degradation check
            scores (:mod:`daclip_kit.core.ood`); ``None`` where not kept.
    """

    labels: tuple[str, ...]
    probs: torch.Tensor
    embeddings: torch.Tensor | None = None

    def top_k(self, k: int = 1) -> list[list[tuple[str, float]]]:
        """Per image, the ``k`` most likely ``(label, probability)`` pairs."""
        k = max(1, min(k, len(self.labels)))
        values, idx = self.probs.topk(k, dim=-1)
        return [
            [(self.labels[j], float(v)) for v, j in zip(vs.tolist(), js.tolist(), strict=True)]
            for vs, js in zip(values, idx, strict=True)
        ]


class EmbeddingProvider(nn.Module):
    """Base class of embedding providers.

    Subclasses own their preprocessing: callers always pass ``(B, 3, H, W)`` float RGB in [0, 1].

    Attributes:
        embed_dim: size ``D`` of the embeddings.
        provides_degradation: whether :meth:`embed_image` fills ``degradation``.
    """

    if TYPE_CHECKING:
        # read-only for callers: each provider gives it as a class attribute or a property
        @property
        def embed_dim(self) -> int: ...

    provides_degradation: bool = False

    def embed_image(self, images: torch.Tensor) -> ImageEmbedding:
        """Embed images.

        Args:
            images: ``(B, 3, H, W)`` float RGB in [0, 1], any size.

        Returns:
            :class:`ImageEmbedding` with ``content`` ``(B, D)`` and ``degradation`` ``(B, D)`` or
            ``None``; unnormalised.
        """
        raise NotImplementedError

    def embed_text(self, texts: Sequence[str]) -> torch.Tensor:
        """Embed texts with the text tower; returns ``(N, D)`` unnormalised features."""
        raise NotImplementedError

    @property
    def degradations(self) -> tuple[str, ...]:
        """The degradation words this embedder knows, in its training label order: the default
        labels of :meth:`classify` (``daclip-kit classify``, ``restore``, ``bench``, the demo).
        The ten DA-CLIP words unless the provider records its own (a plugin overrides this)."""
        return DEGRADATIONS

    @property
    def ood_calibration(self) -> OodCalibration | None:
        """The out-of-distribution calibration of :meth:`classify` against :attr:`degradations`
        (:mod:`daclip_kit.core.ood`), or ``None``: then no image is ever flagged."""
        return None

    def classification_scale(self) -> float:
        """Multiplier of cosine similarities before the softmax in :meth:`classify`."""
        return 100.0

    def label_features(self, labels: Sequence[str]) -> torch.Tensor:
        """L2-normalised text embeddings ``(N, D)`` of ``labels``; compute once, classify many."""
        return torch.nn.functional.normalize(self.embed_text(list(labels)), dim=-1)

    def classify(self, images: torch.Tensor, labels: Sequence[str] | None = None, *,
                 label_features: torch.Tensor | None = None) -> Classification:
        """Zero-shot degradation classification.

        Cosine similarity of the (degradation, else content) image embedding with the text
        embeddings of ``labels``, times :meth:`classification_scale`, softmax over labels.

        Args:
            images: ``(B, 3, H, W)`` float RGB in [0, 1].
            labels: candidate texts (default: :attr:`degradations`, the model's own words).
            label_features: :meth:`label_features` of ``labels``, when already computed.
        """
        labels = self.degradations if labels is None else labels
        emb = self.embed_image(images).normalized()
        query = emb.degradation if emb.degradation is not None else emb.content
        text = self.label_features(labels) if label_features is None else label_features
        logits = self.classification_scale() * query @ text.to(query).T
        return Classification(tuple(labels), logits.softmax(dim=-1), query)

    @torch.no_grad()
    def degradation_report(self, images: torch.Tensor) -> list[dict[str, Any]]:
        """What ``restore`` reports per image: the most likely of :attr:`degradations` and the
        unknown-degradation check (:func:`daclip_kit.core.ood.unknown_report`).

        Args:
            images: ``(B, 3, H, W)`` float RGB in [0, 1].

        Returns:
            Per image ``{"degradation": word, "probability": p, "unknown_degradation": bool or
            None, "ood_score": float, "ood_threshold": float or None, "ood_statistic": str}``.
        """
        from .ood import unknown_report

        result = self.classify(images)
        calibration = self.ood_calibration
        embeddings = result.embeddings if result.embeddings is not None else [None] * len(result.probs)
        return [{"degradation": top[0][0], "probability": round(top[0][1], 6),
                 **unknown_report(row.tolist(), result.labels, calibration, embedding)}
                for top, row, embedding in zip(result.top_k(1), result.probs, embeddings, strict=True)]

    def forward(self, images: torch.Tensor) -> ImageEmbedding:
        return self.embed_image(images)
