"""Config of the IR-SDE conditional U-Net (torch-free, so registries can validate it cheaply)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from ...errors import ConfigError

#: Channels per attention head in the official network (heads = width // 32).
HEAD_CHANNELS = 32


@dataclass(frozen=True, kw_only=True)
class UNetConfig:
    """Hyper-parameters, named as in the official option files' ``network_G.setting``.

    Defaults are the universal DA-CLIP model (``config/daclip-sde``).

    Attributes:
        in_nc: image channels (the network sees ``2 * in_nc``: ``x_t - lq`` and ``lq``).
        out_nc: channels of the predicted noise.
        nf: base width; must be a multiple of 32 and at least 32 (heads = width // 32).
        ch_mult: width multiplier per level; ``len(ch_mult)`` levels, inputs padded to
            ``2 ** len(ch_mult)``.
        context_dim: size of the degradation/content embeddings (512 for ViT-B-32, 768 for L-14).
        use_degra_context: build the degradation prompt module (added to the time embedding).
        use_image_context: build cross-attention on the content embedding at the deepest level and
            in the middle block.
        scale: ``0.5`` adds the Wild-IR stride-2 stem (``downsample``/``upsample``); ``1`` none.
            The official universal code calls this ``upscale`` and ignores it.
        prediction: what the output is: ``"noise"`` (official: the noise in ``x_t``) or
            ``"clean"`` (the clean image, trained with ``objective = "clean"``); the samplers
            convert a clean prediction to noise through their SDE (:func:`daclip_kit.core.sampler.
            noise_from_output`). Not an architecture change: the same weights shapes.
    """

    in_nc: int = 3
    out_nc: int = 3
    nf: int = 64
    ch_mult: tuple[int, ...] = (1, 2, 4, 8)
    context_dim: int = 512
    use_degra_context: bool = True
    use_image_context: bool = True
    scale: float = 1.0
    prediction: Literal["noise", "clean"] = "noise"

    def __post_init__(self) -> None:
        object.__setattr__(self, "ch_mult", tuple(int(m) for m in self.ch_mult))
        if self.nf < HEAD_CHANNELS or self.nf % HEAD_CHANNELS:
            raise ConfigError(
                f"nf={self.nf} must be a positive multiple of {HEAD_CHANNELS}: the attention "
                f"layers use width // {HEAD_CHANNELS} heads. Use nf=32 for a tiny model."
            )
        if not self.ch_mult or any(m < 1 for m in self.ch_mult):
            raise ConfigError(f"ch_mult={list(self.ch_mult)} must be a non-empty list of positive integers.")
        if self.scale not in (0.5, 1.0):
            raise ConfigError(f"scale={self.scale} is not supported: use 1 (universal) or 0.5 (Wild-IR stem).")
        if self.prediction not in ("noise", "clean"):
            raise ConfigError(f"prediction={self.prediction!r} must be 'noise' (official) or 'clean'.")
        if (self.use_degra_context or self.use_image_context) and self.context_dim <= 0:
            raise ConfigError(
                f"context_dim={self.context_dim} must be positive when a context is used; set "
                "use_degra_context=false and use_image_context=false for the plain network."
            )

    @property
    def depth(self) -> int:
        """Number of encoder levels."""
        return len(self.ch_mult)

    @property
    def size_divisor(self) -> int:
        """Inputs are reflect-padded (bottom/right) to a multiple of this."""
        return 2 ** self.depth
