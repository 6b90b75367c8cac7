"""PromptIR: Restormer whose decoder mixes in learned, input-weighted prompts.

Keys and shapes are those of the official ``PromptIR(decoder=True)``. ``chnl_reduce{1,2,3}`` and
``reduce_noise_channel_{1,2,3}`` are built (and saved) by the official class but never used; they
are kept so the released checkpoint loads strictly.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from ...config import to_dict
from ...core.backbone import RestorationBackbone
from ...core.checks import check_image
from ...types import Conditioning
from ..common import check_multiple
from ..restormer.arch import (
    Downsample,
    OverlapPatchEmbed,
    TransformerBlock,
    Upsample,
    blocks,
    decoder_adapters,
)
from .config import PromptIRConfig

__all__ = ["PromptGenBlock", "PromptIR", "PromptIRConfig"]

#: Output channels of the unused ``chnl_reduce3`` in the official class.
_UNUSED_REDUCE3_OUT = 256


class PromptGenBlock(nn.Module):
    """Prompt from features: ``conv3x3(resize(sum_i softmax(linear(mean(x)))_i * prompt_i))``.

    Shape:
        - x: ``(B, lin_dim, H, W)``; output ``(B, prompt_dim, H, W)``.
    """

    def __init__(self, prompt_dim: int, prompt_len: int, prompt_size: int, lin_dim: int):
        super().__init__()
        self.prompt_param = nn.Parameter(torch.rand(1, prompt_len, prompt_dim, prompt_size, prompt_size))
        self.linear_layer = nn.Linear(lin_dim, prompt_len)
        self.conv3x3 = nn.Conv2d(prompt_dim, prompt_dim, 3, padding=1, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h, w = x.shape[-2:]
        weights = F.softmax(self.linear_layer(x.mean(dim=(-2, -1))), dim=1)
        prompt = (weights[:, :, None, None, None] * self.prompt_param).sum(dim=1)
        prompt = F.interpolate(prompt, (h, w), mode="bilinear", align_corners=False)
        return self.conv3x3(prompt)


class PromptIR(RestorationBackbone):
    """PromptIR restoration network: ``net(lq) -> restored`` (conditioning ignored: the prompts
    are weighted from the network's own features).

    Args:
        config: :class:`PromptIRConfig` (default: the released all-in-one model).

    Shape:
        - lq: ``(B, inp_channels, H, W)`` float in [0, 1], H and W multiples of 8.
        - output: ``(B, out_channels, H, W)``, not clamped.

    DA-CLIP adapters attach by configuration as in
    :class:`~daclip_kit.backbones.restormer.arch.Restormer` (content after the latent blocks,
    degradation at the decoder inputs, after PromptIR's own prompt blocks); "PromptIR + content
    embedding" of the paper's Table 6 is ``content_adapter="cross-attention"``.
    """

    def __init__(self, config: PromptIRConfig | None = None):
        super().__init__()
        cfg = PromptIRConfig() if config is None else config
        self.config = cfg
        self.size_divisor = cfg.size_divisor
        d, nb, hd, bias = cfg.dim, cfg.num_blocks, cfg.heads, cfg.bias
        p, s = cfg.prompt_dims, cfg.prompt_sizes
        n1, n2, n3 = cfg.prompt_block_dims

        def block(dim: int) -> TransformerBlock:
            return TransformerBlock(dim, hd[2], cfg.ffn_expansion_factor, bias, cfg.layer_norm_type)

        # Registration order follows the official class (state_dict key order).
        self.patch_embed = OverlapPatchEmbed(cfg.inp_channels, d)
        self.prompt1 = PromptGenBlock(p[0], cfg.prompt_len, s[0], 2 * d)
        self.prompt2 = PromptGenBlock(p[1], cfg.prompt_len, s[1], 4 * d)
        self.prompt3 = PromptGenBlock(p[2], cfg.prompt_len, s[2], 8 * d)
        self.chnl_reduce1 = nn.Conv2d(p[0], p[0], 1, bias=bias)
        self.chnl_reduce2 = nn.Conv2d(p[1], p[1], 1, bias=bias)
        self.chnl_reduce3 = nn.Conv2d(p[2], _UNUSED_REDUCE3_OUT, 1, bias=bias)
        self.reduce_noise_channel_1 = nn.Conv2d(d + p[0], d, 1, bias=bias)
        self.encoder_level1 = blocks(nb[0], d, hd[0], cfg)
        self.down1_2 = Downsample(d)
        self.reduce_noise_channel_2 = nn.Conv2d(2 * d + p[1], 2 * d, 1, bias=bias)
        self.encoder_level2 = blocks(nb[1], 2 * d, hd[1], cfg)
        self.down2_3 = Downsample(2 * d)
        self.reduce_noise_channel_3 = nn.Conv2d(4 * d + _UNUSED_REDUCE3_OUT, 4 * d, 1, bias=bias)
        self.encoder_level3 = blocks(nb[2], 4 * d, hd[2], cfg)
        self.down3_4 = Downsample(4 * d)
        self.latent = blocks(nb[3], 8 * d, hd[3], cfg)
        self.up4_3 = Upsample(4 * d)
        self.reduce_chan_level3 = nn.Conv2d(6 * d, 4 * d, 1, bias=bias)
        self.noise_level3 = block(n3)
        self.reduce_noise_level3 = nn.Conv2d(n3, 4 * d, 1, bias=bias)
        self.decoder_level3 = blocks(nb[2], 4 * d, hd[2], cfg)
        self.up3_2 = Upsample(4 * d)
        self.reduce_chan_level2 = nn.Conv2d(4 * d, 2 * d, 1, bias=bias)
        self.noise_level2 = block(n2)
        self.reduce_noise_level2 = nn.Conv2d(n2, 4 * d, 1, bias=bias)
        self.decoder_level2 = blocks(nb[1], 2 * d, hd[1], cfg)
        self.up2_1 = Upsample(2 * d)
        self.noise_level1 = block(n1)
        self.reduce_noise_level1 = nn.Conv2d(n1, 2 * d, 1, bias=bias)
        self.decoder_level1 = blocks(nb[0], 2 * d, hd[0], cfg)
        self.refinement = blocks(cfg.num_refinement_blocks, 2 * d, hd[0], cfg)
        self.output = nn.Conv2d(2 * d, cfg.out_channels, 3, padding=1, bias=bias)
        self.adapters = decoder_adapters(cfg)  # empty (no keys, identity) without DA-CLIP adapters
        self.accepts = self.adapters.roles

    def export_config(self) -> dict[str, Any]:
        """JSON-able config (``save_pretrained(net, dir, net.export_config())``)."""
        return to_dict(self.config)

    @staticmethod
    def _prompted(x: torch.Tensor, prompt: PromptGenBlock, block: nn.Module, reduce: nn.Module) -> torch.Tensor:
        return reduce(block(torch.cat([x, prompt(x)], 1)))

    def forward(self, lq: torch.Tensor, cond: Conditioning | None = None) -> torch.Tensor:
        """Restore ``lq`` ``(B, inp_channels, H, W)``; H, W multiples of 8."""
        check_image(lq, "lq", channels=self.config.inp_channels)
        check_multiple(lq, self.size_divisor, "PromptIR")
        enc1 = self.encoder_level1(self.patch_embed(lq))
        enc2 = self.encoder_level2(self.down1_2(enc1))
        enc3 = self.encoder_level3(self.down2_3(enc2))
        slot = self.adapters
        x = slot("latent", self.latent(self.down3_4(enc3)), cond)
        x = self._prompted(x, self.prompt3, self.noise_level3, self.reduce_noise_level3)
        x = self.decoder_level3(slot("decoder3", self.reduce_chan_level3(torch.cat([self.up4_3(x), enc3], 1)), cond))
        x = self._prompted(x, self.prompt2, self.noise_level2, self.reduce_noise_level2)
        x = self.decoder_level2(slot("decoder2", self.reduce_chan_level2(torch.cat([self.up3_2(x), enc2], 1)), cond))
        x = self._prompted(x, self.prompt1, self.noise_level1, self.reduce_noise_level1)
        x = self.refinement(self.decoder_level1(slot("decoder1", torch.cat([self.up2_1(x), enc1], 1), cond)))
        return self.output(x) + lq
