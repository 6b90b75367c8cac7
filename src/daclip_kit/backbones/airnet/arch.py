"""AirNet: DGRN restorer (``R``) + CBDE contrastive degradation encoder (``E``).

Keys, shapes and buffers follow the official ``AirNet`` (``R.head``, ``R.body.{g}.body.{b}.dgm{1,2}``,
``E.E.encoder_q``/``encoder_k``, ``E.E.queue`` ``[256, K]``, ``E.E.queue_ptr``). The modulated
deformable convolution (mmcv in the official code) is :func:`torchvision.ops.deform_conv2d` with a
mask, which takes the same offset layout.

At inference only the full-resolution features of the query encoder's first block reach the
restorer; the pooled embedding and the MoCo key encoder/queue matter only for the contrastive
training, so :meth:`AirNet.forward` computes just that first block.
"""

from __future__ import annotations

from typing import Any, cast

import torch
import torch.nn.functional as F
from torch import nn
from torchvision.ops import deform_conv2d

from ...config import to_dict
from ...core.backbone import RestorationBackbone
from ...core.checks import check_image
from ...types import Conditioning
from .config import AirNetConfig

__all__ = ["AirNet", "AirNetConfig"]


def _conv(c_in: int, c_out: int, k: int = 3, bias: bool = True) -> nn.Conv2d:
    return nn.Conv2d(c_in, c_out, k, padding=k // 2, bias=bias)


# -- CBDE: the degradation encoder ---------------------------------------------------------------

class ResBlock(nn.Module):
    """Conv-BN-LeakyReLU-Conv-BN plus a 1x1-conv-BN shortcut, then LeakyReLU(0.1)."""

    def __init__(self, c_in: int, c_out: int, stride: int = 1):
        super().__init__()
        self.backbone = nn.Sequential(
            nn.Conv2d(c_in, c_out, 3, stride=stride, padding=1, bias=False), nn.BatchNorm2d(c_out),
            nn.LeakyReLU(0.1), nn.Conv2d(c_out, c_out, 3, padding=1, bias=False), nn.BatchNorm2d(c_out),
        )
        self.shortcut = nn.Sequential(nn.Conv2d(c_in, c_out, 1, stride=stride, bias=False), nn.BatchNorm2d(c_out))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.leaky_relu(self.backbone(x) + self.shortcut(x), 0.1)


class ResEncoder(nn.Module):
    """``E_pre`` (full-resolution features), ``E`` (two stride-2 blocks + global pool), ``mlp``."""

    def __init__(self, n: int):
        super().__init__()
        self.E_pre = ResBlock(3, n)
        self.E = nn.Sequential(ResBlock(n, 2 * n, stride=2), ResBlock(2 * n, 4 * n, stride=2), nn.AdaptiveAvgPool2d(1))
        self.mlp = nn.Sequential(nn.Linear(4 * n, 4 * n), nn.LeakyReLU(0.1), nn.Linear(4 * n, 4 * n))

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Return ``(embedding (B, 4n), projection (B, 4n), features (B, n, H, W))``."""
        inter = self.E_pre(x)
        fea = self.E(inter).flatten(1)
        return fea, self.mlp(fea), inter


class MoCo(nn.Module):
    """Query/key encoders and the negative-key queue of the contrastive training."""

    def __init__(self, n: int, queue_size: int):
        super().__init__()
        self.encoder_q = ResEncoder(n)
        self.encoder_k = ResEncoder(n)
        self.encoder_k.load_state_dict(self.encoder_q.state_dict())
        self.encoder_k.requires_grad_(False)
        self.register_buffer("queue", F.normalize(torch.randn(4 * n, queue_size), dim=0))
        self.register_buffer("queue_ptr", torch.zeros(1, dtype=torch.long))


class CBDE(nn.Module):
    """Contrastive-based degradation encoder (holds :class:`MoCo` as ``E``)."""

    def __init__(self, config: AirNetConfig):
        super().__init__()
        self.E = MoCo(config.n_feats, config.queue_size)


# -- DGRN: the restorer ------------------------------------------------------------------------

class DCNLayer(nn.Module):
    """Modulated deformable 3x3 conv whose offsets and mask come from ``cat(x, degradation)``.

    ``conv_offset_mask`` gives 27 channels: two offset chunks and a sigmoid mask.
    """

    def __init__(self, c: int, k: int = 3):
        super().__init__()
        self.weight = nn.Parameter(torch.empty(c, c, k, k))
        nn.init.kaiming_uniform_(self.weight, a=5 ** 0.5)
        self.conv_offset_mask = nn.Conv2d(2 * c, 3 * k * k, k, padding=k // 2)
        nn.init.zeros_(self.conv_offset_mask.weight)
        nn.init.zeros_(cast(torch.Tensor, self.conv_offset_mask.bias))  # the conv has one
        self.padding = k // 2

    def forward(self, x: torch.Tensor, inter: torch.Tensor) -> torch.Tensor:
        o1, o2, mask = self.conv_offset_mask(torch.cat([x, inter], dim=1)).chunk(3, dim=1)
        offset = torch.cat([o1, o2], dim=1)
        return deform_conv2d(x.contiguous(), offset, self.weight, padding=self.padding, mask=torch.sigmoid(mask))


class SFTLayer(nn.Module):
    """Spatial feature transform: ``x * gamma(deg) + beta(deg)`` with 1x1 conv MLPs."""

    def __init__(self, c: int):
        super().__init__()
        self.conv_gamma = nn.Sequential(nn.Conv2d(c, c, 1, bias=False), nn.LeakyReLU(0.1),
                                        nn.Conv2d(c, c, 1, bias=False))
        self.conv_beta = nn.Sequential(nn.Conv2d(c, c, 1, bias=False), nn.LeakyReLU(0.1),
                                       nn.Conv2d(c, c, 1, bias=False))

    def forward(self, x: torch.Tensor, inter: torch.Tensor) -> torch.Tensor:
        return x * self.conv_gamma(inter) + self.conv_beta(inter)


class DGM(nn.Module):
    """Degradation-guided module: ``x + dcn(x, deg) + sft(x, deg)``."""

    def __init__(self, c: int):
        super().__init__()
        self.dcn = DCNLayer(c)
        self.sft = SFTLayer(c)

    def forward(self, x: torch.Tensor, inter: torch.Tensor) -> torch.Tensor:
        return x + self.dcn(x, inter) + self.sft(x, inter)


class DGB(nn.Module):
    """Degradation-guided block: DGM, conv, DGM, conv (LeakyReLU between) + residual."""

    def __init__(self, c: int):
        super().__init__()
        self.dgm1 = DGM(c)
        self.dgm2 = DGM(c)
        self.conv1 = _conv(c, c)
        self.conv2 = _conv(c, c)

    def forward(self, x: torch.Tensor, inter: torch.Tensor) -> torch.Tensor:
        out = F.leaky_relu(self.dgm1(x, inter), 0.1)
        out = F.leaky_relu(self.conv1(out), 0.1)
        out = F.leaky_relu(self.dgm2(out, inter), 0.1)
        return self.conv2(out) + x


class DGG(nn.Module):
    """Degradation-guided group: ``n_blocks`` DGBs and a conv (``body.{n_blocks}``) + residual."""

    def __init__(self, c: int, n_blocks: int):
        super().__init__()
        self.body = nn.Sequential(*(DGB(c) for _ in range(n_blocks)), _conv(c, c))

    def forward(self, x: torch.Tensor, inter: torch.Tensor) -> torch.Tensor:
        res = x
        for block in self.body[:-1]:
            res = block(res, inter)
        return self.body[-1](res) + x


class DGRN(nn.Module):
    """Degradation-guided restoration network: head conv, groups + conv with a long residual, tail conv."""

    def __init__(self, config: AirNetConfig):
        super().__init__()
        c = config.n_feats
        self.head = nn.Sequential(_conv(3, c))
        self.body = nn.Sequential(*(DGG(c, config.n_blocks) for _ in range(config.n_groups)), _conv(c, c))
        self.tail = nn.Sequential(_conv(c, 3))

    def forward(self, x: torch.Tensor, inter: torch.Tensor) -> torch.Tensor:
        x = self.head(x)
        res = x
        for group in self.body[:-1]:
            res = group(res, inter)
        return self.tail(self.body[-1](res) + x)


class AirNet(RestorationBackbone):
    """AirNet all-in-one restoration: ``net(lq) -> restored`` (any H, W; no padding needed).

    Args:
        config: :class:`AirNetConfig` (default: the released ``All.pth``, ``batch_size`` 5).

    The network derives its own degradation representation, so ``cond`` is ignored.

    Shape:
        - lq: ``(B, 3, H, W)`` float in [0, 1]; output ``(B, 3, H, W)``, not clamped.

    Example:
        >>> net = AirNet(AirNetConfig(n_feats=8, n_groups=1, n_blocks=1, batch_size=1)).eval()
        >>> net(torch.rand(1, 3, 13, 17)).shape
        torch.Size([1, 3, 13, 17])
    """

    size_divisor = 1
    accepts: frozenset[str] = frozenset()

    def __init__(self, config: AirNetConfig | None = None):
        super().__init__()
        self.config = AirNetConfig() if config is None else config
        self.R = DGRN(self.config)
        self.E = CBDE(self.config)

    def export_config(self) -> dict[str, Any]:
        """JSON-able config (``save_pretrained(net, dir, net.export_config())``)."""
        return to_dict(self.config)

    def degradation_features(self, lq: torch.Tensor) -> torch.Tensor:
        """Full-resolution degradation features ``(B, n_feats, H, W)`` that guide the restorer."""
        return self.E.E.encoder_q.E_pre(lq)

    def degradation_embedding(self, lq: torch.Tensor) -> torch.Tensor:
        """Pooled degradation representation ``(B, 4 * n_feats)`` (the contrastive embedding)."""
        return self.E.E.encoder_q(lq)[0]

    def forward(self, lq: torch.Tensor, cond: Conditioning | None = None) -> torch.Tensor:
        """Restore ``lq`` ``(B, 3, H, W)``."""
        check_image(lq, "lq")
        return self.R(lq, self.degradation_features(lq))
