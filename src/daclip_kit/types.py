"""Plain data types shared by every component.

No torch import at module level: tensors appear only in annotations, so ``import daclip_kit``
stays fast.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from torch import Tensor

#: The ten degradation labels of the DA-CLIP paper, spelled and ordered as in the official code
#: (folder names of the universal data set and the bare words used as degradation texts).
DEGRADATIONS: tuple[str, ...] = (
    "motion-blurry",
    "hazy",
    "jpeg-compressed",
    "low-light",
    "noisy",
    "raindrop",
    "rainy",
    "shadowed",
    "snowy",
    "uncompleted",
)


@dataclass(frozen=True)
class ImageEmbedding:
    """What an embedding provider returns for a batch of images.

    Attributes:
        content: ``(B, D)`` float embedding of the (restored) image content. For DA-CLIP this is
            the controlled CLIP tower's output, trained to match the caption of the clean image.
        degradation: ``(B, D)`` float embedding of the degradation, or ``None`` for providers that
            have none (plain CLIP).
    """

    content: Tensor
    degradation: Tensor | None = None

    def normalized(self) -> ImageEmbedding:
        """Return a copy with both embeddings L2-normalised along the last dimension."""
        import torch.nn.functional as F

        deg = None if self.degradation is None else F.normalize(self.degradation, dim=-1)
        return ImageEmbedding(F.normalize(self.content, dim=-1), deg)

    def to(self, *args: Any, **kwargs: Any) -> ImageEmbedding:
        """Move/cast both tensors like :meth:`torch.Tensor.to`."""
        deg = None if self.degradation is None else self.degradation.to(*args, **kwargs)
        return ImageEmbedding(self.content.to(*args, **kwargs), deg)


@dataclass(frozen=True)
class Conditioning:
    """Conditioning signals a restoration network may use, named by role.

    Attributes:
        degradation: ``(B, D)`` degradation embedding (drives prompt modules), or ``None``.
        content: ``(B, D)`` clean-content embedding (drives cross-attention), or ``None``.
        tokens: ``(B, L, D)`` extra context tokens, or ``None``.
    """

    degradation: Tensor | None = None
    content: Tensor | None = None
    tokens: Tensor | None = None

    @classmethod
    def from_embedding(cls, embedding: ImageEmbedding | None) -> Conditioning:
        """Build conditioning from an :class:`ImageEmbedding` (``None`` gives an empty one)."""
        if embedding is None:
            return cls()
        return cls(degradation=embedding.degradation, content=embedding.content)

    def roles(self) -> frozenset[str]:
        """Names of the fields that are set."""
        return frozenset(
            n for n in ("degradation", "content", "tokens") if getattr(self, n) is not None
        )
