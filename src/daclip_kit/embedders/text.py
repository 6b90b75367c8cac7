"""The ``text`` embedding provider: ground-truth text embeddings in place of image embeddings.

The paper's Fig. 9e-g alternative: the restoration network is conditioned on the CLIP text
embeddings of the clean caption (as ``content``) and of the degradation word (as
``degradation``) instead of DA-CLIP's image embeddings. The text tower is DA-CLIP's frozen CLIP
text tower, so the provider takes the same weights as ``daclip``.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from ..core.checks import check_image
from ..errors import InputError
from ..types import ImageEmbedding
from .config import TextConfig
from .daclip.model import DaCLIP
from .daclip.provider import DaClipEmbedder


class TextEmbedder(DaClipEmbedder):
    """Ground-truth text embeddings in place of image embeddings (paper Fig. 9e-g).

    :meth:`embed_image` ignores the pixels and returns the configured caption and degradation
    embeddings for each image; :meth:`embed_texts` takes per-image texts.
    """

    config: TextConfig

    def __init__(self, config: TextConfig | None = None, *, network: DaCLIP | None = None):
        super().__init__(config or TextConfig(), network=network)

    def embed_texts(self, captions: Sequence[str], degradations: Sequence[str]) -> ImageEmbedding:
        """Embed per-image texts: ``content`` from captions, ``degradation`` from the words.

        Returns:
            :class:`ImageEmbedding` with ``(N, D)`` tensors, unnormalised.
        """
        if len(captions) != len(degradations):
            raise InputError(f"Got {len(captions)} captions but {len(degradations)} degradation words.")
        return ImageEmbedding(self.embed_text(captions), self.embed_text(degradations))

    def embed_image(self, images: torch.Tensor) -> ImageEmbedding:
        check_image(images)
        n = images.shape[0]
        return self.embed_texts([self.config.caption] * n, [self.config.degradation] * n)
