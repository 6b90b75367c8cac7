"""Configs of NAFNet and its DA-CLIP-conditioned variant (torch-free)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from ...errors import ConfigError


@dataclass(frozen=True, kw_only=True)
class NAFNetConfig:
    """Hyper-parameters of NAFNet, named as the official constructor / option files (``network_g``).

    The defaults are the GoPro/REDS width-64 network of the DA-CLIP paper (67,888,835 parameters).

    Attributes:
        img_channel: image channels in and out.
        width: channels of the first level (doubled at every level).
        middle_blk_num: NAFBlocks at the lowest resolution.
        enc_blk_nums, dec_blk_nums: NAFBlocks per encoder / decoder level (same length).
        tlc: test-time local converter (official ``NAFNetLocal``): the channel attention pools
            locally with a kernel 1.5x the training size instead of globally. Weights are unchanged.
        train_size: ``(H, W)`` training patch size that fixes the TLC kernels (official
            ``train_size=(1, 3, 256, 256)``; a 4-tuple is accepted and its last two items kept).
        pad_mode: how callers pad inputs to a multiple of :attr:`size_divisor` (the network never
            pads itself; :func:`daclip_kit.ops.padding.padded_call` and the pipeline do):
            ``"reflect"`` (daclip-kit's default) or ``"zeros"`` (the official NAFNet, which
            zero-pads bottom/right; used by the official converter).
    """

    img_channel: int = 3
    width: int = 64
    middle_blk_num: int = 1
    enc_blk_nums: tuple[int, ...] = (1, 1, 1, 28)
    dec_blk_nums: tuple[int, ...] = (1, 1, 1, 1)
    tlc: bool = False
    train_size: tuple[int, ...] = (256, 256)
    pad_mode: Literal["reflect", "zeros"] = "reflect"

    def __post_init__(self) -> None:
        set_ = object.__setattr__
        set_(self, "enc_blk_nums", tuple(int(n) for n in self.enc_blk_nums))
        set_(self, "dec_blk_nums", tuple(int(n) for n in self.dec_blk_nums))
        size = tuple(int(s) for s in self.train_size)
        if len(size) == 4:
            size = size[2:]
        if len(size) != 2 or min(size) < 1:
            raise ConfigError(f"train_size={list(self.train_size)} must be (H, W) or (1, C, H, W) with positive sizes.")
        set_(self, "train_size", size)
        if len(self.enc_blk_nums) != len(self.dec_blk_nums):
            raise ConfigError(
                f"enc_blk_nums {list(self.enc_blk_nums)} and dec_blk_nums {list(self.dec_blk_nums)} "
                "must have the same length (one decoder level per encoder level)."
            )
        if self.width < 1 or self.img_channel < 1 or self.middle_blk_num < 0:
            raise ConfigError(f"width={self.width} and img_channel={self.img_channel} must be positive.")
        if any(n < 0 for n in self.enc_blk_nums + self.dec_blk_nums):
            raise ConfigError("Block counts must not be negative.")

    @property
    def levels(self) -> int:
        """Number of down-sampling levels."""
        return len(self.enc_blk_nums)

    @property
    def padder_size(self) -> int:
        """``2 ** levels``: H and W are padded to a multiple of this."""
        return 2 ** self.levels

    @property
    def size_divisor(self) -> int:
        """H and W given to ``forward`` are multiples of this (``padder_size``)."""
        return self.padder_size

    @property
    def torch_pad_mode(self) -> str:
        """:attr:`pad_mode` as ``torch.nn.functional.pad`` names it (``"constant"`` for zeros)."""
        return "constant" if self.pad_mode == "zeros" else "reflect"


@dataclass(frozen=True, kw_only=True)
class NAFNetDaclipConfig(NAFNetConfig):
    """NAFNet conditioned on DA-CLIP embeddings (the design the DA-CLIP authors describe).

    Attributes:
        context_dim: size ``D`` of the degradation and content embeddings (512 for ViT-B/32).
        hidden_dim: width of the degradation MLP; 0 means ``4 * width`` (as the time MLP of
            IR-SDE's conditional NAFNet).
        use_degradation: modulate every NAFBlock with the degradation embedding (adaLN-style
            shift/scale after both LayerNorms).
        use_content: cross-attend to the content embedding after every middle block.
        content_adapter: registry name of the content adapter (``daclip-kit ls adapters``),
            built as ``create_adapter(name, dim=C, context_dim=D, **content_adapter_config)``.
        content_adapter_config: extra keyword config of that adapter (e.g. ``{"heads": 16}``).
    """

    context_dim: int = 512
    hidden_dim: int = 0
    use_degradation: bool = True
    use_content: bool = True
    content_adapter: str = "cross-attention"
    content_adapter_config: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        super().__post_init__()
        if not isinstance(self.content_adapter_config, Mapping):
            raise ConfigError("content_adapter_config must be a mapping of adapter options.")
        object.__setattr__(self, "content_adapter_config", dict(self.content_adapter_config))
        if self.context_dim < 1:
            raise ConfigError(f"context_dim={self.context_dim} must be positive (512 for DA-CLIP ViT-B/32).")
        if self.hidden_dim < 0 or self.hidden_dim % 2:
            raise ConfigError(f"hidden_dim={self.hidden_dim} must be 0 (= 4 * width) or a positive even number.")

    @property
    def modulation_dim(self) -> int:
        """Width of the degradation MLP output."""
        return self.hidden_dim or 4 * self.width
