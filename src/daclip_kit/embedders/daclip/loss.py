"""The DA-CLIP contrastive training loss (paper §3.1, official ``DaClipLoss``).

Two symmetric InfoNCE terms with the same temperature: content embedding vs caption embedding,
and degradation embedding vs degradation-word embedding. Labels are the diagonal (``arange``), so
repeated degradation words within a batch still count as negatives, as in the official code.
This implementation computes the loss on the local batch (world size 1).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ...errors import ShapeError


def clip_loss(image_features: torch.Tensor, text_features: torch.Tensor,
              logit_scale: torch.Tensor | float) -> torch.Tensor:
    """Symmetric InfoNCE of paired ``(B, D)`` features (row ``i`` of each is a positive pair).

    Returns:
        scalar ``(CE(s·I·Tᵀ, arange) + CE(s·T·Iᵀ, arange)) / 2``.
    """
    if image_features.shape != text_features.shape:
        raise ShapeError(
            f"image and text features must have the same shape, got {tuple(image_features.shape)} "
            f"and {tuple(text_features.shape)}."
        )
    logits_per_image = logit_scale * image_features @ text_features.T
    labels = torch.arange(image_features.shape[0], device=image_features.device)
    return (F.cross_entropy(logits_per_image, labels) + F.cross_entropy(logits_per_image.T, labels)) / 2


class DaClipLoss(nn.Module):
    """DA-CLIP loss: ``contrastive_loss + degra_loss``.

    Call it with the dict returned by :meth:`DaCLIP.forward <daclip_kit.embedders.daclip.model.DaCLIP.forward>`
    (all features L2-normalised, ``logit_scale`` already exponentiated).
    """

    def forward(self, image_features: torch.Tensor, text_features: torch.Tensor,
                image_degra_features: torch.Tensor, text_degra_features: torch.Tensor,
                logit_scale: torch.Tensor, output_dict: bool = False):
        """Return ``{"contrastive_loss", "degra_loss"}`` when ``output_dict`` else the pair."""
        contrastive = clip_loss(image_features, text_features, logit_scale)
        degra = clip_loss(image_degra_features, text_degra_features, logit_scale)
        if output_dict:
            return {"contrastive_loss": contrastive, "degra_loss": degra}
        return contrastive, degra
