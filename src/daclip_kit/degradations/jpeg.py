"""``jpeg-compressed``: a real JPEG encode/decode round trip (Pillow's libjpeg), quality 10."""

from __future__ import annotations

import io
from dataclasses import dataclass
from typing import Literal

import torch

from ..errors import ConfigError
from ..io import to_uint8
from .base import Degradation, Draw


@dataclass(frozen=True, kw_only=True)
class JPEGConfig:
    """Parameters of :class:`JPEGCompression`.

    Attributes:
        quality: JPEG quality factor (1–95); the paper uses 10.
        quality_max: when set, the quality is drawn uniformly from ``[quality, quality_max]``.
        subsampling: chroma subsampling (``"4:2:0"`` is libjpeg's and OpenCV's default).
    """

    quality: int = 10
    quality_max: int | None = None
    subsampling: Literal["4:4:4", "4:2:2", "4:2:0"] = "4:2:0"


def jpeg_round_trip(image: torch.Tensor, quality: int, subsampling: str = "4:2:0") -> torch.Tensor:
    """Encode ``(1,3,H,W)`` [0,1] as an 8-bit JPEG at ``quality`` and decode it again."""
    import numpy as np
    from PIL import Image


    buf = io.BytesIO()
    Image.fromarray(to_uint8(image), mode="RGB").save(buf, format="JPEG", quality=int(quality),
                                                      subsampling=subsampling)
    buf.seek(0)
    with Image.open(buf) as im:
        arr = np.asarray(im.convert("RGB"), dtype=np.float32) / 255.0
    return torch.from_numpy(arr).permute(2, 0, 1)[None].to(image.device)


class JPEGCompression(Degradation):
    """Compress each image with a real JPEG codec (blocking and ringing at 8×8 blocks)."""

    name = "jpeg-compressed"
    config_class = JPEGConfig

    def validate(self) -> None:
        cfg = self.config
        top = cfg.quality if cfg.quality_max is None else cfg.quality_max
        if not 1 <= cfg.quality <= top <= 100:
            raise ConfigError(f"jpeg-compressed: quality must satisfy 1 <= quality <= quality_max <= 100, "
                              f"got quality={cfg.quality}, quality_max={cfg.quality_max}.")

    def apply_one(self, image: torch.Tensor, draw: Draw) -> torch.Tensor:
        cfg = self.config
        q = cfg.quality if cfg.quality_max is None else draw.integer(cfg.quality, cfg.quality_max)
        return jpeg_round_trip(image, q, cfg.subsampling).to(image.dtype)
