"""Config of Restormer (torch-free)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from ...errors import ConfigError
from ..conditioning_config import AdapterSlotsConfig

#: Restormer downsamples three times with PixelUnshuffle(2).
RESTORMER_DIVISOR = 8


@dataclass(frozen=True, kw_only=True)
class RestormerConfig(AdapterSlotsConfig):
    """Hyper-parameters of Restormer (official constructor names, ``LayerNorm_type`` spelled
    ``layer_norm_type``). Defaults are the official ones (26,126,644 parameters).

    The DA-CLIP adapter fields of :class:`~daclip_kit.backbones.conditioning_config.AdapterSlotsConfig`
    (``degradation_adapter``, ``content_adapter``, ``context_dim``) are off by default; see
    :class:`~daclip_kit.backbones.restormer.arch.Restormer` for where they attach.

    Attributes:
        inp_channels, out_channels: image channels (6 in for dual-pixel defocus).
        dim: channels of level 1 (doubled per level).
        num_blocks: transformer blocks of the four levels.
        num_refinement_blocks: blocks after the last decoder level.
        heads: attention heads per level.
        ffn_expansion_factor: hidden width of the gated FFN is ``int(dim * factor)``.
        bias: biases in the convolutions.
        layer_norm_type: ``"WithBias"`` (deblurring, deraining, defocus) or ``"BiasFree"``
            (real and Gaussian denoising).
        dual_pixel_task: dual-pixel defocus deblurring (adds ``skip_conv``, no image residual).
    """

    inp_channels: int = 3
    out_channels: int = 3
    dim: int = 48
    num_blocks: tuple[int, ...] = (4, 6, 6, 8)
    num_refinement_blocks: int = 4
    heads: tuple[int, ...] = (1, 2, 4, 8)
    ffn_expansion_factor: float = 2.66
    bias: bool = False
    layer_norm_type: Literal["WithBias", "BiasFree"] = "WithBias"
    dual_pixel_task: bool = False

    def __post_init__(self) -> None:
        self.check_adapters()
        object.__setattr__(self, "num_blocks", tuple(int(n) for n in self.num_blocks))
        object.__setattr__(self, "heads", tuple(int(n) for n in self.heads))
        if len(self.num_blocks) != 4 or len(self.heads) != 4:
            raise ConfigError(f"num_blocks {list(self.num_blocks)} and heads {list(self.heads)} need 4 entries "
                              "(one per level).")
        for level, h in enumerate(self.heads):
            channels = self.dim * 2 ** level
            if h < 1 or channels % h:
                raise ConfigError(f"Level {level + 1} has {channels} channels, not divisible by heads={h}.")
        if self.dual_pixel_task and self.inp_channels != 6:
            raise ConfigError("dual_pixel_task=true expects inp_channels=6 (two dual-pixel views).")

    @property
    def size_divisor(self) -> int:
        """H and W must be multiples of this (the pipeline reflect-pads, like the official demo)."""
        return RESTORMER_DIVISOR
