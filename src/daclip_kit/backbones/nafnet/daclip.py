"""NAFNet conditioned on DA-CLIP embeddings (the paper's "NAFNet + DA-CLIP").

No official code exists; this follows the authors' description (daclip-uir issues #44-#46, #108):

* degradation embedding ``(B, D)`` -> MLP (``Linear(D, 2h)``, SimpleGate, ``Linear(h, h)``) -> in
  every NAFBlock ``SimpleGate -> Linear(h/2, 4c)`` -> shift/scale pairs applied after ``norm1`` and
  ``norm2`` (adaLN-style, ``x * (1 + scale) + shift``);
* content embedding ``(B, D)`` -> a content adapter (cross-attention by default, built by registry
  name) after every middle block, i.e. at the lowest resolution.

Every conditioning output is zero-initialised: a new network computes exactly the plain NAFNet whose
weights it holds (:meth:`NAFNetDaclip.load_nafnet_weights` starts from an official checkpoint).
All NAFNet keys are unchanged; the new keys are ``degradation_mlp.*``, ``*.modulation.1.*`` and
``content_adapters.*``.
"""

from __future__ import annotations

from collections.abc import Mapping

import torch
from torch import nn

from ...checkpoint import read_state_dict
from ...core.checks import check_embedding
from ...errors import CheckpointError
from ...factory import create_adapter
from ...types import Conditioning
from ..common import SimpleGate
from .arch import NAFNet
from .config import NAFNetConfig, NAFNetDaclipConfig

__all__ = ["NAFNetDaclip", "NAFNetDaclipConfig"]


class NAFNetDaclip(NAFNet):
    """NAFNet with degradation modulation and content cross-attention: ``net(lq, cond)``.

    Args:
        config: :class:`NAFNetDaclipConfig` (default: GoPro width-64 NAFNet, ``context_dim`` 512).

    ``cond.degradation`` / ``cond.content`` are ``(B, context_dim)`` (or ``(1, context_dim)``,
    broadcast); a missing role is skipped, which equals a zero modulation / no attention.

    Example:
        >>> cfg = NAFNetDaclipConfig(width=8, enc_blk_nums=(1, 1), dec_blk_nums=(1, 1), context_dim=16)
        >>> net = NAFNetDaclip(cfg)
        >>> cond = Conditioning(degradation=torch.randn(1, 16), content=torch.randn(1, 16))
        >>> net(torch.rand(1, 3, 16, 24), cond).shape
        torch.Size([1, 3, 16, 24])
    """

    config: NAFNetDaclipConfig

    def __init__(self, config: NAFNetDaclipConfig | None = None):
        config = NAFNetDaclipConfig() if config is None else config
        super().__init__(config)
        self.accepts = frozenset(
            role for role, used in (("degradation", config.use_degradation), ("content", config.use_content)) if used
        )
        if config.use_degradation:
            h = config.modulation_dim
            self.degradation_mlp = nn.Sequential(nn.Linear(config.context_dim, 2 * h), SimpleGate(), nn.Linear(h, h))
        if config.use_content:
            mid = config.width * config.padder_size
            self.content_adapters = nn.ModuleList(
                create_adapter(config.content_adapter, dim=mid, context_dim=config.context_dim,
                               **config.content_adapter_config)
                for _ in range(config.middle_blk_num)
            )

    def _modulation_dim(self, config: NAFNetConfig) -> int:
        assert isinstance(config, NAFNetDaclipConfig)
        return config.modulation_dim if config.use_degradation else 0

    def _embedding(self, cond: Conditioning | None, batch: int) -> torch.Tensor | None:
        degradation = None if cond is None else cond.degradation
        if not self.config.use_degradation or degradation is None:
            return None
        check_embedding(degradation, "degradation", batch, self.config.context_dim)
        return self.degradation_mlp(degradation.to(self.intro.weight.dtype))

    def _middle(self, x: torch.Tensor, emb: torch.Tensor | None, cond: Conditioning | None) -> torch.Tensor:
        content = None if cond is None else cond.content
        if not self.config.use_content or content is None:
            return super()._middle(x, emb, None)
        check_embedding(content, "content", x.shape[0], self.config.context_dim)
        content_only = Conditioning(content=content.to(x.dtype))
        for block, adapter in zip(self.middle_blks, self.content_adapters, strict=True):
            x = adapter(block(x, emb), content_only)
        return x

    def load_nafnet_weights(self, checkpoint: str | Mapping[str, torch.Tensor]) -> NAFNetDaclip:
        """Load a plain NAFNet state dict (or official ``NAFNet-*.pth`` file) into the NAFNet part.

        Every NAFNet key must be present with its shape; the conditioning layers keep their
        values (zero-initialised outputs in a new network, so the result equals the plain NAFNet
        until it is trained). Returns ``self``.

        Raises:
            CheckpointError: missing, unexpected or mis-shaped NAFNet keys (all listed).
        """
        state = read_state_dict(checkpoint, wrappers=("params", "params_ema", "state_dict"))
        own = self.state_dict()
        conditioning = ("degradation_mlp.", "content_adapters.", ".modulation.")
        plain = {k for k in own if not any(p in f".{k}" for p in conditioning)}
        missing = sorted(plain - set(state))
        unexpected = sorted(set(state) - plain)
        shapes = sorted(k for k in plain & set(state) if tuple(state[k].shape) != tuple(own[k].shape))
        if missing or unexpected or shapes:
            raise CheckpointError(
                f"The NAFNet weights do not match the NAFNet part of {type(self).__name__}: "
                f"missing {missing[:10]}, unexpected {unexpected[:10]}, mis-shaped {shapes[:10]} "
                f"({len(missing)}, {len(unexpected)}, {len(shapes)} in all). Use the same width and block "
                "counts as the checkpoint."
            )
        self.load_state_dict(state, strict=False)
        return self
