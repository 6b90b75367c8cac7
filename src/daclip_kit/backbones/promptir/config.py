"""Config of PromptIR (torch-free)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from ...errors import ConfigError
from ..conditioning_config import AdapterSlotsConfig


@dataclass(frozen=True, kw_only=True)
class PromptIRConfig(AdapterSlotsConfig):
    """Hyper-parameters of PromptIR with its decoder prompts (official ``decoder=True``).

    Defaults are the released all-in-one model (35,592,263 parameters). The official class
    hard-codes the channel sums that follow from ``dim=48`` and the prompt dims; here they are
    computed from ``dim`` and ``prompt_dims``, which gives the same network at the defaults and
    lets smaller networks be built.

    Attributes:
        inp_channels, out_channels, dim, num_blocks, num_refinement_blocks, heads,
        ffn_expansion_factor, bias, layer_norm_type: as :class:`~daclip_kit.backbones.restormer.config.RestormerConfig`.
        prompt_len: learned prompts per block (softmax-weighted).
        prompt_dims: channels of the prompts at decoder levels 1, 2 and the bottleneck
            (``prompt1..3``).
        prompt_sizes: spatial size of the stored prompts (resized bilinearly to the features).
        context_dim, degradation_adapter, content_adapter (and their ``*_config``): optional DA-CLIP
            adapters, off by default (:class:`~daclip_kit.backbones.conditioning_config.AdapterSlotsConfig`;
            placement as in :class:`~daclip_kit.backbones.restormer.arch.Restormer`).
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
    prompt_len: int = 5
    prompt_dims: tuple[int, ...] = (64, 128, 320)
    prompt_sizes: tuple[int, ...] = (64, 32, 16)

    def __post_init__(self) -> None:
        self.check_adapters()
        for name in ("num_blocks", "heads", "prompt_dims", "prompt_sizes"):
            object.__setattr__(self, name, tuple(int(n) for n in getattr(self, name)))
        if len(self.num_blocks) != 4 or len(self.heads) != 4:
            raise ConfigError("num_blocks and heads need 4 entries (one per level).")
        if len(self.prompt_dims) != 3 or len(self.prompt_sizes) != 3 or self.prompt_len < 1:
            raise ConfigError("prompt_dims and prompt_sizes need 3 entries and prompt_len must be positive.")
        for level, h in enumerate(self.heads):
            if (self.dim * 2 ** level) % h:
                raise ConfigError(f"Level {level + 1} has {self.dim * 2 ** level} channels, "
                                  f"not divisible by heads={h}.")
        for channels in self.prompt_block_dims:
            if channels % self.heads[2]:
                raise ConfigError(
                    f"A prompt transformer block has {channels} channels, not divisible by heads[2]={self.heads[2]}; "
                    "adjust prompt_dims."
                )

    @property
    def prompt_block_dims(self) -> tuple[int, int, int]:
        """Channels of ``noise_level1..3`` (features concatenated with their prompt)."""
        d, p = self.dim, self.prompt_dims
        return (2 * d + p[0], 4 * d + p[1], 8 * d + p[2])

    @property
    def size_divisor(self) -> int:
        """H and W must be multiples of 8."""
        return 8
