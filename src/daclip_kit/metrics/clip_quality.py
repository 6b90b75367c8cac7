"""CLIP-IQA, zero-shot (Wang, Chan and Loy, "Exploring CLIP for Assessing the Look and Feel of Images", AAAI 2023).

A no-reference quality score from a CLIP model: the image embedding is compared (cosine similarity)
with the embeddings of the antonym prompts "Good photo." and "Bad photo."; the two similarities,
scaled by 100 as CLIP-IQA does, go through a softmax, and the score is the probability of "Good photo.",
in [0, 1], higher is better.

The CLIP used is the one inside a DA-CLIP: its frozen image tower without the degradation
controller (``DaCLIP.encode_image(..., control=False)``, the plain CLIP image embedding) and its
frozen text tower, so no other weights are needed. The image goes through the DA-CLIP's own
preprocessing (resize and centre crop to its input size). The published CLIP-IQA uses a ResNet-50
CLIP at the image's full size, so the values are not those of the paper's tables; they compare
images scored with the same DA-CLIP.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

from ..core.checks import check_image

#: The antonym prompt pair; the score is the probability of the first.
PROMPTS = ("Good photo.", "Bad photo.")
#: CLIP-IQA's scale of the cosine similarities before the softmax.
LOGIT_SCALE = 100.0


@torch.no_grad()
def clipiqa(images: torch.Tensor, *, embedder: Any, prompts: Sequence[str] = PROMPTS,
            logit_scale: float = LOGIT_SCALE) -> torch.Tensor:
    """Zero-shot CLIP-IQA of each image: the probability of ``prompts[0]`` against the others.

    Args:
        images: ``(B, 3, H, W)`` float RGB in [0, 1].
        embedder: a DA-CLIP embedder (``create_embedder("daclip", weights=...)``, or
            :func:`load_clipiqa_embedder`); its plain CLIP towers are used.
        prompts: the positive prompt, then its antonym(s).
        logit_scale: the factor on the cosine similarities (CLIP-IQA: 100).

    Returns:
        ``(B,)`` float64 in [0, 1]; higher is better.
    """
    check_image(images, "images")
    model = embedder.model
    pixels = embedder.preprocess(images)
    image = model.encode_image(pixels, control=False).content.float()
    text = model.encode_text(embedder.tokenize(list(prompts))).float()
    image = image / image.norm(dim=-1, keepdim=True)
    text = text / text.norm(dim=-1, keepdim=True)
    probs = (logit_scale * image @ text.t()).softmax(dim=-1)
    return probs[:, 0].detach().to("cpu", torch.float64)


def load_clipiqa_embedder(ref: str | Path | None = None, *, search_dirs: Sequence[str | Path] = (),
                          device: str | torch.device = "cpu", download: bool = False) -> Any:
    """The DA-CLIP embedder CLIP-IQA runs on, through the model resolver.

    Args:
        ref: any model reference that names a DA-CLIP, or a restorer paired with one (its DA-CLIP);
            default the released ``daclip-vit-b-32``.
        search_dirs: folders searched first for named weights.
        device: where it runs.
        download: fetch named weights missing locally.

    Raises:
        WeightsNotFoundError: the weights are not on disk (and not downloaded); the message says
            where to get them.
        ConfigError: ``ref`` is a restorer that records no DA-CLIP.
    """
    from ..model import ModelUnit, daclip_of, provide
    from ..pipelines.build import load_embedder
    from ..pipelines.recipe import DEFAULT_EMBEDDER_WEIGHTS

    ref = ref if ref is not None else DEFAULT_EMBEDDER_WEIGHTS
    paired = daclip_of(ref, search_dirs=search_dirs)
    _, provided = provide(ModelUnit(str(ref), "name"), paired, download=download, search_dirs=search_dirs)
    assert provided is not None and provided.path is not None
    return load_embedder("daclip", provided.path, torch.device(device))
