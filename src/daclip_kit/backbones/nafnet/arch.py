"""NAFNet: a nonlinear-activation-free U-Net of NAFBlocks (Chen et al., ECCV 2022).

State-dict keys and shapes are those of the official ``NAFNet`` / ``NAFNetLocal`` (``intro``,
``encoders.i.j``, ``downs.i``, ``middle_blks.j``, ``ups.i.0``, ``decoders.i.j``, ``ending``), so
the released ``NAFNet-*.pth`` files load strictly.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, cast

import torch
import torch.nn.functional as F
from torch import nn

from ...config import to_dict
from ...core.backbone import RestorationBackbone
from ...core.checks import check_image
from ...types import Conditioning
from ..common import LayerNorm2d, SimpleGate, check_multiple
from .config import NAFNetConfig

if TYPE_CHECKING:
    from collections.abc import Iterable

__all__ = ["NAFBlock", "NAFNet", "NAFNetConfig", "PoolToChannel"]


class PoolToChannel(nn.Module):
    """The pooling of NAFNet's channel attention: global mean, or TLC's local box mean.

    With ``kernel_size=(kh, kw)`` (TLC) every position gets the mean of the ``kh x kw`` window
    around it: box means are taken where the window fits and replicated outwards to the border.
    A kernel covering the whole map falls back to the global mean, as in the official code.

    Shape:
        - x: ``(B, C, H, W)``; output ``(B, C, 1, 1)`` (global) or ``(B, C, H, W)`` (local).
    """

    def __init__(self, kernel_size: tuple[int, int] | None = None):
        super().__init__()
        self.kernel_size = kernel_size

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.kernel_size is None:
            return F.adaptive_avg_pool2d(x, 1)
        h, w = x.shape[-2:]
        kh, kw = self.kernel_size
        if kh >= h and kw >= w:
            return F.adaptive_avg_pool2d(x, 1)
        kh, kw = min(kh, h), min(kw, w)
        out = F.avg_pool2d(x, (kh, kw), stride=1)
        dh, dw = h - out.shape[-2], w - out.shape[-1]
        return F.pad(out, (dw // 2, (dw + 1) // 2, dh // 2, (dh + 1) // 2), mode="replicate")

    def extra_repr(self) -> str:
        return "global" if self.kernel_size is None else f"local kernel_size={self.kernel_size}"


class NAFBlock(nn.Module):
    """``y = x + beta * conv3(SCA(SG(dwconv(conv1(LN(x))))))``, then ``y + gamma * FFN(LN(y))``.

    ``beta``/``gamma`` start at zero, so a new block is the identity.

    Args:
        c: channels.
        modulation_dim: if non-zero, the block also has ``modulation`` (SimpleGate, then
            ``Linear(modulation_dim // 2, 4c)``, zero-initialised) turning an embedding into
            shift/scale pairs applied after ``norm1`` and ``norm2``.

    Shape:
        - x: ``(B, c, H, W)``; emb: ``(B, modulation_dim)`` or ``None``; output ``(B, c, H, W)``.
    """

    def __init__(self, c: int, modulation_dim: int = 0):
        super().__init__()
        dw = 2 * c
        ffn = 2 * c
        self.beta = nn.Parameter(torch.zeros(1, c, 1, 1))
        self.gamma = nn.Parameter(torch.zeros(1, c, 1, 1))
        self.conv1 = nn.Conv2d(c, dw, 1)
        self.conv2 = nn.Conv2d(dw, dw, 3, padding=1, groups=dw)
        self.conv3 = nn.Conv2d(dw // 2, c, 1)
        self.sca = nn.Sequential(PoolToChannel(), nn.Conv2d(dw // 2, dw // 2, 1))
        self.sg = SimpleGate()
        self.conv4 = nn.Conv2d(c, ffn, 1)
        self.conv5 = nn.Conv2d(ffn // 2, c, 1)
        self.norm1 = LayerNorm2d(c)
        self.norm2 = LayerNorm2d(c)
        if modulation_dim:
            linear = nn.Linear(modulation_dim // 2, 4 * c)
            nn.init.zeros_(linear.weight)
            nn.init.zeros_(linear.bias)
            self.modulation = nn.Sequential(SimpleGate(), linear)

    def forward(self, inp: torch.Tensor, emb: torch.Tensor | None = None) -> torch.Tensor:
        shift1 = scale1 = shift2 = scale2 = None
        if emb is not None and hasattr(self, "modulation"):
            shift1, scale1, shift2, scale2 = self.modulation(emb)[:, :, None, None].chunk(4, dim=1)
        x = self.norm1(inp)
        if shift1 is not None and scale1 is not None:
            x = x * (1 + scale1) + shift1
        x = self.sg(self.conv2(self.conv1(x)))
        x = self.conv3(x * self.sca(x))
        y = inp + x * self.beta
        x = self.norm2(y)
        if shift2 is not None and scale2 is not None:
            x = x * (1 + scale2) + shift2
        x = self.conv5(self.sg(self.conv4(x)))
        return y + x * self.gamma


class NAFNet(RestorationBackbone):
    """NAFNet restoration network: ``net(lq) -> restored``.

    Args:
        config: :class:`NAFNetConfig` (default: the GoPro width-64 network).

    ``forward`` ignores conditioning. H and W must be multiples of ``size_divisor =
    2 ** len(enc_blk_nums)``; callers pad with :attr:`pad_mode` (``"constant"`` zeros, as the
    official network, when ``config.pad_mode="zeros"``) and crop, as
    :func:`~daclip_kit.ops.padding.padded_call` and the pipeline do.

    Example:
        >>> net = NAFNet(NAFNetConfig(width=8, enc_blk_nums=(1, 1), dec_blk_nums=(1, 1)))
        >>> net(torch.rand(1, 3, 16, 24)).shape
        torch.Size([1, 3, 16, 24])
    """

    accepts: frozenset[str] = frozenset()

    def __init__(self, config: NAFNetConfig | None = None):
        super().__init__()
        config = NAFNetConfig() if config is None else config
        self.config = config
        self.size_divisor = config.size_divisor
        self.pad_mode = config.torch_pad_mode
        self._build(config, self._modulation_dim(config))
        if config.tlc:
            self._apply_tlc(config)

    def _modulation_dim(self, config: NAFNetConfig) -> int:
        return 0

    def _build(self, config: NAFNetConfig, mdim: int) -> None:
        # Registration order follows the official class, so state_dict() lists keys in its order.
        self.intro = nn.Conv2d(config.img_channel, config.width, 3, padding=1)
        self.ending = nn.Conv2d(config.width, config.img_channel, 3, padding=1)
        self.encoders = nn.ModuleList()
        self.decoders = nn.ModuleList()
        self.middle_blks = nn.ModuleList()
        self.ups = nn.ModuleList()
        self.downs = nn.ModuleList()
        chan = config.width
        for num in config.enc_blk_nums:
            self.encoders.append(nn.ModuleList(NAFBlock(chan, mdim) for _ in range(num)))
            self.downs.append(nn.Conv2d(chan, 2 * chan, 2, stride=2))
            chan *= 2
        self.middle_blks.extend(NAFBlock(chan, mdim) for _ in range(config.middle_blk_num))
        for num in config.dec_blk_nums:
            self.ups.append(nn.Sequential(nn.Conv2d(chan, chan * 2, 1, bias=False), nn.PixelShuffle(2)))
            chan //= 2
            self.decoders.append(nn.ModuleList(NAFBlock(chan, mdim) for _ in range(num)))

    def _apply_tlc(self, config: NAFNetConfig) -> None:
        """Give every channel-attention pool its TLC kernel (official ``NAFNetLocal``).

        The kernel of a level is ``feature_size_at_train_size * int(1.5 * train) // train`` per side,
        where the training input is zero-padded to ``padder_size`` as in the official forward.
        """
        th, tw = config.train_size
        ph, pw = -(-th // config.padder_size) * config.padder_size, -(-tw // config.padder_size) * config.padder_size
        base_h, base_w = int(1.5 * th), int(1.5 * tw)

        def kernel(level: int) -> tuple[int, int]:
            return ((ph >> level) * base_h // th, (pw >> level) * base_w // tw)

        n = config.levels
        groups = [(i, blocks) for i, blocks in enumerate(cast("Iterable[nn.ModuleList]", self.encoders))]
        groups.append((n, self.middle_blks))
        groups += [(n - 1 - i, blocks) for i, blocks in enumerate(cast("Iterable[nn.ModuleList]", self.decoders))]
        for level, blocks in groups:
            for block in cast("Iterable[NAFBlock]", blocks):
                cast(PoolToChannel, block.sca[0]).kernel_size = kernel(level)

    def export_config(self) -> dict[str, Any]:
        """JSON-able config (``save_pretrained(net, dir, net.export_config())``)."""
        return to_dict(self.config)

    # -- forward -------------------------------------------------------------------------------

    def _embedding(self, cond: Conditioning | None, batch: int) -> torch.Tensor | None:
        return None

    def _middle(self, x: torch.Tensor, emb: torch.Tensor | None, cond: Conditioning | None) -> torch.Tensor:
        for block in self.middle_blks:
            x = block(x, emb)
        return x

    def forward(self, lq: torch.Tensor, cond: Conditioning | None = None) -> torch.Tensor:
        """Restore ``lq``.

        Shape:
            - lq: ``(B, img_channel, H, W)`` float in [0, 1]; H, W multiples of ``size_divisor``.
            - output: ``(B, img_channel, H, W)`` (not clamped).
        """
        check_image(lq, "lq", channels=self.config.img_channel)
        check_multiple(lq, self.size_divisor, type(self).__name__)
        emb = self._embedding(cond, lq.shape[0])
        x = self.intro(lq)
        skips = []
        for blocks, down in zip(cast("Iterable[nn.ModuleList]", self.encoders), self.downs, strict=True):
            for block in blocks:
                x = block(x, emb)
            skips.append(x)
            x = down(x)
        x = self._middle(x, emb, cond)
        for blocks, up, skip in zip(cast("Iterable[nn.ModuleList]", self.decoders), self.ups, reversed(skips),
                                    strict=True):
            x = up(x) + skip
            for block in blocks:
                x = block(x, emb)
        return self.ending(x) + lq
