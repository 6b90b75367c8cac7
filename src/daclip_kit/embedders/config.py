"""Configs of the embedding providers (torch-free, so run files are checked without loading models)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True, kw_only=True)
class ClipConfig:
    """Configuration of the ``clip`` provider.

    Attributes:
        model: open_clip model name (``"ViT-B-32"``, ``"ViT-L-14"``, ...).
        weights: ``None`` (random weights), a local state-dict file, registered weights
            (``"clip-vit-b-32-openai"``), or an open_clip pretrained tag (``"laion2b_s34b_b79k"``,
            downloaded by open_clip).
        model_config: an explicit open_clip model JSON dict (overrides ``model``).
        device: ``"cpu"``, ``"cuda"``, ...; ``None`` picks CUDA when available.
        quantize_input: emulate the official uint8 truncation in preprocessing.
    """

    model: str = "ViT-B-32"
    weights: str | None = None
    model_config: dict[str, Any] | None = None
    device: str | None = None
    quantize_input: bool = False


@dataclass(frozen=True, kw_only=True)
class DaClipConfig:
    """Configuration of the ``daclip`` provider.

    Attributes:
        model: bundled open_clip config (``"daclip_ViT-B-32"``, ``"daclip_ViT-L-14"``) used when
            no weights are given.
        model_config: an explicit open_clip model JSON dict (overrides ``model``).
        weights: ``None`` (random weights), a native folder, an official ``.pt`` file, or the
            name of registered weights (``"daclip-vit-b-32"``; see ``daclip-kit weights list``),
            which must be on disk (``daclip-kit weights fetch NAME``).
        device: ``"cpu"``, ``"cuda"``, ...; ``None`` picks CUDA when available.
        quantize_input: emulate the official uint8 truncation in preprocessing.
    """

    model: str = "daclip_ViT-B-32"
    model_config: dict[str, Any] | None = None
    weights: str | None = None
    device: str | None = None
    quantize_input: bool = False


@dataclass(frozen=True, kw_only=True)
class TextConfig(DaClipConfig):
    """Configuration of the ``text`` provider: :class:`DaClipConfig` plus the texts.

    Attributes:
        caption: caption whose embedding stands in for the content embedding.
        degradation: degradation word whose embedding stands in for the degradation embedding.
    """

    caption: str = ""
    degradation: str = "noisy"
