"""The ``daclip`` embedding provider: ``(B,3,H,W)`` images in [0,1] -> content and degradation
embeddings of DA-CLIP."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any, cast

import torch

from ...core.checks import check_image
from ...core.device import pick_device
from ...core.embedder import EmbeddingProvider
from ...core.ood import OodCalibration
from ...errors import WeightsNotFoundError
from ...pretrained import load_network
from ...types import DEGRADATIONS, ImageEmbedding
from ...weights import get_weight_spec, is_path_like
from ..config import DaClipConfig
from ..preprocess import clip_preprocess
from ..tokenizer import tokenize
from .architectures import model_config as bundled_config
from .convert import save_daclip
from .model import DaCLIP

log = logging.getLogger(__name__)

def daclip_weights(ref: str | Path, *, download: bool = False) -> Path:
    """The local DA-CLIP file or folder ``ref`` names, through the one model resolver: a weights name,
    a file, a DA-CLIP folder, a ``train daclip`` run or checkpoint, ``hf://``, or a restorer (its
    paired DA-CLIP).

    Raises:
        WeightsNotFoundError: not found locally (and not downloaded: ``download=False``).
        ConfigError: ``ref`` is a restorer that records no DA-CLIP.
    """
    from ...model import ModelUnit, daclip_of, provide

    paired = daclip_of(ref)
    if paired.spec is not None and not download:  # a named file not on disk: which file goes where
        from ...weights.fetch import default_cache_dir, where_to_get

        raise WeightsNotFoundError(where_to_get(paired.spec, default_cache_dir()))
    _, provided = provide(ModelUnit(str(ref), "name"), paired, download=download)
    assert provided is not None and provided.path is not None
    return provided.path


def build_network(weights: str | Path | None, *, model: str = "daclip_ViT-B-32",
                  model_config: dict[str, Any] | None = None) -> DaCLIP:
    """The DA-CLIP network for ``weights`` (see :class:`DaClipConfig`): any model reference
    (:func:`daclip_weights`), loaded by :func:`daclip_kit.load_network`."""
    if weights is None:
        log.warning("DA-CLIP built with random weights; pass weights=... for meaningful embeddings.")
        return DaCLIP.from_config(model_config or bundled_config(model)).eval()

    path = daclip_weights(weights)
    if model_config is None and not is_path_like(weights):
        model_config = get_weight_spec(str(weights)).config.get("model")
    return cast(DaCLIP, load_network("daclip", path, config=model_config))


class DaClipEmbedder(EmbeddingProvider):
    """DA-CLIP embedding provider.

    Built by name with ``create_embedder("daclip", weights="daclip-vit-b-32")`` (the paper's ViT-B/32,
    512-d embeddings); the example builds a tiny random one:

    Example:
        >>> from daclip_kit import create_embedder
        >>> tiny = {"embed_dim": 16, "vision_cfg": {"image_size": 32, "layers": 1, "width": 32, "patch_size": 16,
        ...         "head_width": 16}, "text_cfg": {"context_length": 77, "vocab_size": 49408, "width": 16,
        ...         "heads": 1, "layers": 1}}
        >>> emb = create_embedder("daclip", model_config=tiny, device="cpu")
        >>> out = emb.embed_image(torch.rand(2, 3, 40, 56))
        >>> out.content.shape, out.degradation.shape
        (torch.Size([2, 16]), torch.Size([2, 16]))
    """

    provides_degradation = True

    def __init__(self, config: DaClipConfig | None = None, *, network: DaCLIP | None = None):
        super().__init__()
        self.config = config or DaClipConfig()
        self.model = network if network is not None else build_network(
            self.config.weights, model=self.config.model, model_config=self.config.model_config)
        self.model.eval()
        self.to(pick_device(self.config.device))

    # -- persistence -------------------------------------------------------------------------

    @classmethod
    def from_pretrained(cls, directory: str | Path, *, device: str | None = None,
                        quantize_input: bool = False) -> DaClipEmbedder:
        """Load a native folder (``config.json`` + ``model.safetensors``)."""
        return cls(DaClipConfig(weights=str(directory), device=device, quantize_input=quantize_input))

    def save_pretrained(self, directory: str | Path, *, overwrite: bool = False) -> Path:
        """Write the network as a native folder; load it back with :meth:`from_pretrained`."""
        return save_daclip(self.model, directory, overwrite=overwrite)

    # -- embedding ---------------------------------------------------------------------------

    @property
    def embed_dim(self) -> int:
        return self.model.embed_dim

    @property
    def device(self) -> torch.device:
        return self.model.logit_scale.device

    def preprocess(self, images: torch.Tensor) -> torch.Tensor:
        """``(B,3,H,W)`` in [0,1] -> ``(B,3,S,S)`` normalised pixels for the towers."""
        check_image(images)
        return clip_preprocess(images.to(self.device, torch.float32), self.model.image_size,
                               quantize=self.config.quantize_input)

    def embed_image(self, images: torch.Tensor) -> ImageEmbedding:
        """Content and degradation embeddings, ``(B, D)`` each, unnormalised."""
        return self.model.encode_image(self.preprocess(images), control=True)

    def tokenize(self, texts: Sequence[str]) -> torch.Tensor:
        return tokenize(list(texts), self.model.context_length).to(self.device)

    def embed_text(self, texts: Sequence[str]) -> torch.Tensor:
        """``(N, D)`` unnormalised text features of the frozen CLIP text tower."""
        return self.model.encode_text(self.tokenize(texts))

    @property
    def degradations(self) -> tuple[str, ...]:
        """The words recorded in the model's folder (its training data's degradations), else the ten."""
        return self.model.degradations or DEGRADATIONS

    @property
    def ood_calibration(self) -> OodCalibration | None:
        """The calibration recorded in the model's folder (``config.ood``), else ``None``.

        ``None`` too where the folder's calibration records the digest of other weights than those
        loaded (:func:`~daclip_kit.embedders.daclip.convert.load_daclip` warns then); one recording
        no digest (an older folder) is returned unverified. An embedding-space calibration comes with
        its reference state (``model.ood_state``, read from the folder's ``ood.safetensors``)."""
        ood, state = self.model.ood, self.model.ood_state
        if ood is None:
            return None
        cached = getattr(self, "_ood_cache", None)
        if cached is not None and cached[0] is ood and cached[1] is state:  # parsed (and its state checked) once
            return cast(OodCalibration, cached[2])
        calibration = OodCalibration.from_dict(ood, state=state)
        self._ood_cache = (ood, state, calibration)
        return calibration

    def classification_scale(self) -> float:
        """DA-CLIP's learned logit scale, ``exp(logit_scale)``."""
        return float(self.model.logit_scale.detach().exp())
