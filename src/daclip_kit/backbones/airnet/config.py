"""Config of AirNet (torch-free)."""

from __future__ import annotations

from dataclasses import dataclass

from ...errors import ConfigError


@dataclass(frozen=True, kw_only=True)
class AirNetConfig:
    """Hyper-parameters of AirNet. Defaults are the released ``All.pth`` (8,930,313 parameters).

    Attributes:
        batch_size: training batch size; it fixes the MoCo queue length ``K = batch_size * 4 *
            n_feats`` stored in the checkpoint (``All.pth`` 5, ``Denoise.pth`` 3,
            ``Derain.pth``/``Dehaze.pth`` 1).
        n_feats: feature channels of the restorer and of the encoder's first block (official 64;
            the encoder continues with 2x and 4x, its embedding has 4x channels).
        n_groups: degradation-guided groups (official 5).
        n_blocks: degradation-guided blocks per group (official 5).
    """

    batch_size: int = 5
    n_feats: int = 64
    n_groups: int = 5
    n_blocks: int = 5

    def __post_init__(self) -> None:
        for name in ("batch_size", "n_feats", "n_groups", "n_blocks"):
            if getattr(self, name) < 1:
                raise ConfigError(f"{name}={getattr(self, name)} must be positive.")

    @property
    def embedding_dim(self) -> int:
        """Channels of the degradation representation (256 officially)."""
        return 4 * self.n_feats

    @property
    def queue_size(self) -> int:
        """MoCo queue length ``K``."""
        return self.batch_size * self.embedding_dim
