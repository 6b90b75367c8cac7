"""The ``clip`` embedding provider: a plain open_clip model (the paper's CLIP baseline).

It gives a content embedding only (no degradation embedding); :meth:`classify` compares that
embedding with the label texts, as in the first row of the paper's Table 4.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

import torch

from ..checkpoint import load_strict, read_state_dict
from ..core.checks import check_image
from ..core.device import pick_device
from ..core.embedder import EmbeddingProvider
from ..errors import UnknownComponentError, WeightsNotFoundError
from ..plugins import get_registry
from ..types import ImageEmbedding
from ..weights import is_path_like, resolve_weights
from .config import ClipConfig
from .daclip.architectures import clip_kwargs
from .preprocess import OPENAI_MEAN, OPENAI_STD, clip_preprocess

log = logging.getLogger(__name__)


def _split_weights(pretrained: str | None) -> tuple[str | None, str | None]:
    """``(tag, file)`` from the ``weights`` setting: a path or registered weights name is
    resolved to a file (:func:`~daclip_kit.weights.resolve_weights`), anything else is an
    open_clip tag."""
    if pretrained is None:
        return None, None

    if is_path_like(pretrained) or pretrained in get_registry("weights"):
        return None, str(resolve_weights(pretrained))
    return pretrained, None


def _create_open_clip(config: ClipConfig) -> Any:
    """An open_clip ``CLIP`` in eval mode (``Any``: open_clip has no type information)."""
    import open_clip

    tag, file = _split_weights(config.weights)
    if config.model_config is not None:
        if tag is not None:
            raise WeightsNotFoundError(
                f"weights={tag!r} is a tag, but tags need a named model; with model_config pass a file.")
        model = open_clip.CLIP(**clip_kwargs(config.model_config))
    else:
        if config.model not in open_clip.list_models():
            raise UnknownComponentError("open_clip model", config.model, open_clip.list_models())
        try:
            model = open_clip.create_model(config.model, pretrained=tag)
        except RuntimeError as exc:
            raise WeightsNotFoundError(
                f"open_clip could not get the {tag!r} weights of {config.model}: {exc} "
                "Run once while online, or download the file and pass weights=PATH "
                "(CLI: classify --embedder clip --weights PATH)."
            ) from exc
    if file is not None:
        load_strict(model, read_state_dict(file), source=file)
    elif tag is None:
        log.warning("CLIP built with random weights; pass weights=TAG or a file for meaningful embeddings.")
    return model.eval()


class ClipEmbedder(EmbeddingProvider):
    """Plain CLIP image and text embeddings through the installed open_clip."""

    provides_degradation = False

    def __init__(self, config: ClipConfig | None = None):
        super().__init__()
        self.config = config or ClipConfig()
        self.model = _create_open_clip(self.config)
        visual = self.model.visual
        self.mean = tuple(getattr(visual, "image_mean", None) or OPENAI_MEAN)
        self.std = tuple(getattr(visual, "image_std", None) or OPENAI_STD)
        size = visual.image_size
        self.image_size = int(size[0] if isinstance(size, (tuple, list)) else size)
        self._text_tokenizer = None
        self.to(pick_device(self.config.device))

    @property
    def embed_dim(self) -> int:
        return int(self.model.visual.output_dim)

    @property
    def device(self) -> torch.device:
        return self.model.logit_scale.device

    def preprocess(self, images: torch.Tensor) -> torch.Tensor:
        """``(B,3,H,W)`` in [0,1] -> ``(B,3,S,S)`` normalised pixels."""
        check_image(images)
        return clip_preprocess(images.to(self.device, torch.float32), self.image_size,
                               mean=self.mean, std=self.std, quantize=self.config.quantize_input)

    def embed_image(self, images: torch.Tensor) -> ImageEmbedding:
        """``content`` = CLIP image embedding ``(B, D)``, unnormalised; no degradation."""
        return ImageEmbedding(self.model.encode_image(self.preprocess(images)))

    def embed_text(self, texts: Sequence[str]) -> torch.Tensor:
        """``(N, D)`` unnormalised text features."""
        return self.model.encode_text(self._tokenizer()(list(texts)).to(self.device))

    def _tokenizer(self):
        if self.config.model_config is not None:
            from functools import partial

            from .tokenizer import tokenize

            return partial(tokenize, context_length=int(self.model.context_length))
        if self._text_tokenizer is None:
            import open_clip

            self._text_tokenizer = open_clip.get_tokenizer(self.config.model)
        return self._text_tokenizer

    def classification_scale(self) -> float:
        """The CLIP model's own learned scale, ``exp(logit_scale)``."""
        return float(self.model.logit_scale.detach().exp())
