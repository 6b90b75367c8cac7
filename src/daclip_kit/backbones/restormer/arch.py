"""Restormer: an encoder-decoder of transposed-attention transformer blocks.

MDTA attends over channels (cost linear in H*W); GDFN is a GELU-gated depthwise FFN. Keys and
shapes are those of the official ``Restormer`` (``patch_embed``, ``encoder_level1..3``, ``latent``,
``decoder_level1..3``, ``refinement``, ``output``; norms under ``norm{1,2}.body``).
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
from ..common import AdapterSlots, BiasFreeLayerNorm2d, LayerNorm2d, check_multiple
from .config import RestormerConfig

__all__ = ["Restormer", "RestormerConfig", "TransformerBlock"]


class Norm(nn.Module):
    """Channel LayerNorm kept under ``.body`` (official key layout), eps 1e-5."""

    def __init__(self, dim: int, kind: str):
        super().__init__()
        self.body = BiasFreeLayerNorm2d(dim, 1e-5) if kind == "BiasFree" else LayerNorm2d(dim, 1e-5)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x)


class FeedForward(nn.Module):
    """Gated-Dconv FFN: 1x1 to ``2 * hidden``, 3x3 depthwise, ``gelu(a) * b``, 1x1 back."""

    def __init__(self, dim: int, expansion: float, bias: bool):
        super().__init__()
        hidden = int(dim * expansion)
        self.project_in = nn.Conv2d(dim, hidden * 2, 1, bias=bias)
        self.dwconv = nn.Conv2d(hidden * 2, hidden * 2, 3, padding=1, groups=hidden * 2, bias=bias)
        self.project_out = nn.Conv2d(hidden, dim, 1, bias=bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        a, b = self.dwconv(self.project_in(x)).chunk(2, dim=1)
        return self.project_out(F.gelu(a) * b)


class Attention(nn.Module):
    """Multi-Dconv head transposed attention: softmax over the ``C/heads x C/heads`` channel
    affinities of L2-normalised q and k, scaled by a learned per-head ``temperature``."""

    def __init__(self, dim: int, heads: int, bias: bool):
        super().__init__()
        self.heads = heads
        self.temperature = nn.Parameter(torch.ones(heads, 1, 1))
        self.qkv = nn.Conv2d(dim, dim * 3, 1, bias=bias)
        self.qkv_dwconv = nn.Conv2d(dim * 3, dim * 3, 3, padding=1, groups=dim * 3, bias=bias)
        self.project_out = nn.Conv2d(dim, dim, 1, bias=bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c, h, w = x.shape
        q, k, v = (t.reshape(b, self.heads, c // self.heads, h * w)
                   for t in self.qkv_dwconv(self.qkv(x)).chunk(3, dim=1))
        q = F.normalize(q, dim=-1)
        k = F.normalize(k, dim=-1)
        attn = (q @ k.transpose(-2, -1) * self.temperature).softmax(dim=-1)
        return self.project_out((attn @ v).reshape(b, c, h, w))


class TransformerBlock(nn.Module):
    """``x + attn(norm1(x))`` then ``x + ffn(norm2(x))``; ``(B, dim, H, W)`` in and out."""

    def __init__(self, dim: int, heads: int, expansion: float, bias: bool, norm: str):
        super().__init__()
        self.norm1 = Norm(dim, norm)
        self.attn = Attention(dim, heads, bias)
        self.norm2 = Norm(dim, norm)
        self.ffn = FeedForward(dim, expansion, bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(self.norm1(x))
        return x + self.ffn(self.norm2(x))


class OverlapPatchEmbed(nn.Module):
    """3x3 convolution from image channels to ``dim``."""

    def __init__(self, in_c: int, dim: int, bias: bool = False):
        super().__init__()
        self.proj = nn.Conv2d(in_c, dim, 3, padding=1, bias=bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.proj(x)


class Downsample(nn.Module):
    """3x3 conv to ``c/2`` then PixelUnshuffle(2): ``(B, c, H, W) -> (B, 2c, H/2, W/2)``."""

    def __init__(self, c: int):
        super().__init__()
        self.body = nn.Sequential(nn.Conv2d(c, c // 2, 3, padding=1, bias=False), nn.PixelUnshuffle(2))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x)


class Upsample(nn.Module):
    """3x3 conv to ``2c`` then PixelShuffle(2): ``(B, c, H, W) -> (B, c/2, 2H, 2W)``."""

    def __init__(self, c: int):
        super().__init__()
        self.body = nn.Sequential(nn.Conv2d(c, c * 2, 3, padding=1, bias=False), nn.PixelShuffle(2))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x)


def blocks(n: int, dim: int, heads: int, cfg: Any) -> nn.Sequential:
    """``n`` transformer blocks of width ``dim`` with the config's FFN factor, bias and norm."""
    return nn.Sequential(*(TransformerBlock(dim, heads, cfg.ffn_expansion_factor, cfg.bias, cfg.layer_norm_type)
                           for _ in range(n)))


def decoder_adapters(cfg: Any) -> AdapterSlots:
    """The DA-CLIP adapters of a Restormer-shaped network (Restormer, PromptIR): degradation at the
    inputs of decoder levels 3, 2, 1; content after the latent blocks."""
    d = cfg.dim
    return AdapterSlots(cfg, degradation_points={"decoder3": 4 * d, "decoder2": 2 * d, "decoder1": 2 * d},
                        content_points={"latent": 8 * d})


class Restormer(RestorationBackbone):
    """Restormer restoration network: ``net(lq) -> restored`` (conditioning ignored).

    Args:
        config: :class:`RestormerConfig` (default: the official configuration).

    Shape:
        - lq: ``(B, inp_channels, H, W)`` float in [0, 1], H and W multiples of 8 (the pipeline
          reflect-pads to 8 and crops, as the official demo and test scripts do).
        - output: ``(B, out_channels, H, W)``, not clamped.

    DA-CLIP conditioning by configuration (off by default; the official keys are unchanged): the
    ``degradation_adapter`` sits at the input of decoder levels 3, 2 and 1 (where PromptIR puts its
    prompt blocks), the ``content_adapter`` after the latent blocks (lowest resolution, as the
    cross-attention of NAFNet + DA-CLIP). Their keys are ``adapters.points.<point>.*``.

    Example:
        >>> net = Restormer(RestormerConfig(dim=8, num_blocks=(1, 1, 1, 1), num_refinement_blocks=1))
        >>> net(torch.rand(1, 3, 16, 24)).shape
        torch.Size([1, 3, 16, 24])
        >>> cfg = RestormerConfig(dim=8, num_blocks=(1, 1, 1, 1), num_refinement_blocks=1, context_dim=16,
        ...                       degradation_adapter="prompt", content_adapter="cross-attention",
        ...                       content_adapter_config={"heads": 2})
        >>> cond = Conditioning(degradation=torch.randn(1, 16), content=torch.randn(1, 16))
        >>> Restormer(cfg)(torch.rand(1, 3, 16, 24), cond).shape
        torch.Size([1, 3, 16, 24])
    """

    def __init__(self, config: RestormerConfig | None = None):
        super().__init__()
        cfg = RestormerConfig() if config is None else config
        self.config = cfg
        self.size_divisor = cfg.size_divisor
        d, nb, hd = cfg.dim, cfg.num_blocks, cfg.heads
        self.patch_embed = OverlapPatchEmbed(cfg.inp_channels, d)
        self.encoder_level1 = blocks(nb[0], d, hd[0], cfg)
        self.down1_2 = Downsample(d)
        self.encoder_level2 = blocks(nb[1], d * 2, hd[1], cfg)
        self.down2_3 = Downsample(d * 2)
        self.encoder_level3 = blocks(nb[2], d * 4, hd[2], cfg)
        self.down3_4 = Downsample(d * 4)
        self.latent = blocks(nb[3], d * 8, hd[3], cfg)
        self.up4_3 = Upsample(d * 8)
        self.reduce_chan_level3 = nn.Conv2d(d * 8, d * 4, 1, bias=cfg.bias)
        self.decoder_level3 = blocks(nb[2], d * 4, hd[2], cfg)
        self.up3_2 = Upsample(d * 4)
        self.reduce_chan_level2 = nn.Conv2d(d * 4, d * 2, 1, bias=cfg.bias)
        self.decoder_level2 = blocks(nb[1], d * 2, hd[1], cfg)
        self.up2_1 = Upsample(d * 2)
        self.decoder_level1 = blocks(nb[0], d * 2, hd[0], cfg)
        self.refinement = blocks(cfg.num_refinement_blocks, d * 2, hd[0], cfg)
        if cfg.dual_pixel_task:
            self.skip_conv = nn.Conv2d(d, d * 2, 1, bias=cfg.bias)
        self.output = nn.Conv2d(d * 2, cfg.out_channels, 3, padding=1, bias=cfg.bias)
        self.adapters = decoder_adapters(cfg)  # empty (no keys, identity) without DA-CLIP adapters
        self.accepts = self.adapters.roles

    def export_config(self) -> dict[str, Any]:
        """JSON-able config (``save_pretrained(net, dir, net.export_config())``)."""
        return to_dict(self.config)

    def forward(self, lq: torch.Tensor, cond: Conditioning | None = None) -> torch.Tensor:
        """Restore ``lq`` ``(B, inp_channels, H, W)``; H, W multiples of 8."""
        check_image(lq, "lq", channels=self.config.inp_channels)
        check_multiple(lq, self.size_divisor, "Restormer")
        emb1 = self.patch_embed(lq)
        enc1 = self.encoder_level1(emb1)
        enc2 = self.encoder_level2(self.down1_2(enc1))
        enc3 = self.encoder_level3(self.down2_3(enc2))
        x = self.latent(self.down3_4(enc3))
        slot = self.adapters
        x = slot("latent", x, cond)
        x = self.decoder_level3(slot("decoder3", self.reduce_chan_level3(torch.cat([self.up4_3(x), enc3], 1)), cond))
        x = self.decoder_level2(slot("decoder2", self.reduce_chan_level2(torch.cat([self.up3_2(x), enc2], 1)), cond))
        x = self.refinement(self.decoder_level1(slot("decoder1", torch.cat([self.up2_1(x), enc1], 1), cond)))
        if self.config.dual_pixel_task:
            return self.output(x + self.skip_conv(emb1))
        return self.output(x) + lq
