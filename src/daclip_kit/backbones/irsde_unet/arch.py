"""The IR-SDE conditional U-Net of DA-CLIP (universal model) and Wild-IR.

Weight-compatible with the official ``ConditionalUNet`` (same state-dict keys and shapes), with
role-named inputs: ``net(x_t, lq, t, degradation=None, content=None)`` predicts the noise in
``x_t``. The degradation embedding modulates every ResBlock through a prompt module added to the
time embedding; the content embedding enters through cross-attention at the deepest level and in
the middle block.
"""

from __future__ import annotations

from dataclasses import asdict
from typing import TYPE_CHECKING, Any, cast

import torch
from torch import nn

from ...core.backbone import Denoiser
from ...core.checks import check_embedding, check_image
from ...errors import ShapeError
from ..common import check_multiple
from .blocks import (
    LinearAttention,
    PreNorm,
    ResBlock,
    Residual,
    SinusoidalTimeEmbedding,
    SpatialTransformer,
    Switchable,
    Upsample,
    conv3x3,
)
from .config import HEAD_CHANNELS, UNetConfig

if TYPE_CHECKING:
    from collections.abc import Iterable

__all__ = ["ConditionalUNet", "UNetConfig"]


class ConditionalUNet(Switchable, Denoiser):
    """Noise-predicting U-Net conditioned on the LQ image, the step and DA-CLIP embeddings.

    Args:
        config: :class:`UNetConfig`; the default is the universal DA-CLIP model (nf 64,
            ch_mult (1,2,4,8), context 512, both contexts).

    H and W must be multiples of :attr:`size_divisor`. The official network reflect-pads other
    sizes inside ``forward``; here :func:`daclip_kit.sample` and the pipeline do it (the same
    numbers: reflect padding commutes with ``x_t - lq``), or call
    ``padded_call(lambda a, b: net(a, b, t), (x_t, lq), net.size_divisor)``.

    Example:
        >>> net = ConditionalUNet(UNetConfig(nf=32, ch_mult=(1, 1, 1, 1), context_dim=32))
        >>> x = torch.rand(1, 3, 32, 48)
        >>> net(x, x, 10, content=torch.randn(1, 32), degradation=torch.randn(1, 32)).shape
        torch.Size([1, 3, 32, 48])
    """

    def __init__(self, config: UNetConfig | None = None):
        super().__init__()
        config = UNetConfig() if config is None else config
        self.config = config
        self.size_divisor = config.size_divisor
        self.prediction = config.prediction
        self.context_dim = config.context_dim if (config.use_degra_context or config.use_image_context) else 0
        self.accepts = frozenset(
            role for role, used in (("degradation", config.use_degra_context),
                                    ("content", config.use_image_context)) if used
        )
        nf = config.nf
        time_dim = nf * 4

        if config.use_degra_context:
            self.prompt = nn.Parameter(torch.rand(1, time_dim))
        self.init_conv = nn.Conv2d(config.in_nc * 2, nf, 7, padding=3, bias=False)
        if config.scale < 1:
            self.downsample = nn.Conv2d(nf, nf, 4, stride=2, padding=1)
            self.upsample = Upsample(nf, nf)
        self.time_mlp = nn.Sequential(
            SinusoidalTimeEmbedding(nf), nn.Linear(nf, time_dim), nn.GELU(), nn.Linear(time_dim, time_dim)
        )
        if config.use_degra_context:
            self.text_mlp = nn.Sequential(
                nn.Linear(config.context_dim, time_dim), nn.SiLU(), nn.Linear(time_dim, time_dim)
            )
            self.prompt_mlp = nn.Linear(time_dim, time_dim)

        widths = [nf * m for m in (1, *config.ch_mult)]
        self.downs = nn.ModuleList()
        self.ups = nn.ModuleList()
        for i in range(config.depth):
            dim_in, dim_out = widths[i], widths[i + 1]
            last = i == config.depth - 1
            self.downs.append(nn.ModuleList([
                ResBlock(dim_in, dim_in, time_dim),
                ResBlock(dim_in, dim_in, time_dim),
                Residual(PreNorm(dim_in, self._attention(i, dim_in))),
                conv3x3(dim_in, dim_out) if last else nn.Conv2d(dim_in, dim_out, 4, stride=2, padding=1),
            ]))
            self.ups.insert(0, nn.ModuleList([
                ResBlock(dim_out + dim_in, dim_out, time_dim),
                ResBlock(dim_out + dim_in, dim_out, time_dim),
                Residual(PreNorm(dim_out, self._attention(i, dim_out))),
                conv3x3(dim_out, dim_in) if i == 0 else Upsample(dim_out, dim_in),
            ]))
        mid = widths[-1]
        self.mid_block1 = ResBlock(mid, mid, time_dim)
        if config.use_image_context:
            self.mid_attn = Residual(PreNorm(mid, self._cross_attention(mid)))
        else:
            self.mid_attn = Residual(PreNorm(mid, LinearAttention(mid)))
        self.mid_block2 = ResBlock(mid, mid, time_dim)
        self.final_res_block = ResBlock(nf * 2, nf, time_dim)
        self.final_conv = nn.Conv2d(nf, config.out_nc, 3, padding=1)

    def _attention(self, level: int, dim: int) -> nn.Module:
        # Cross-attention from level 3 on (the deepest level of the 4-level official models).
        if self.config.use_image_context and level >= 3:
            return self._cross_attention(dim)
        return LinearAttention(dim)

    def _cross_attention(self, dim: int) -> SpatialTransformer:
        return SpatialTransformer(dim, dim // HEAD_CHANNELS, HEAD_CHANNELS, self.config.context_dim)

    # -- configuration -------------------------------------------------------------------------

    def export_config(self) -> dict[str, Any]:
        """JSON-able config (``save_pretrained(net, dir, net.export_config())``)."""
        cfg = asdict(self.config)
        cfg["ch_mult"] = list(cfg["ch_mult"])
        if cfg["prediction"] == "noise":  # the official kind: configs stay as they were before the option
            del cfg["prediction"]
        return cfg

    def use_reference_ops(self, enabled: bool = True) -> ConditionalUNet:
        """Switch every block to the official op sequence (``True``) or the fast path.

        Both compute the same function; the reference path exists to check and benchmark the
        fast one. Returns ``self``.
        """
        for module in self.modules():
            if isinstance(module, Switchable):
                module.reference_ops = enabled
        return self

    def checkpoint_units(self) -> list[nn.Module]:
        """The blocks activation checkpointing recomputes in training: every ResBlock and
        attention block of each level, the middle blocks and the final ResBlock."""
        units: list[nn.Module] = []
        for level in (*self.downs, *self.ups):
            units.extend(level[:3])
        units += [self.mid_block1, self.mid_attn, self.mid_block2, self.final_res_block]
        return units

    # -- forward -------------------------------------------------------------------------------

    def time_embedding(self, t: torch.Tensor | float, batch: int, device: torch.device,
                       degradation: torch.Tensor | None = None) -> torch.Tensor:
        """Time embedding plus the degradation prompt: ``(B or 1, 4 nf)``.

        ``time_mlp(t) + prompt_mlp(softmax(text_mlp(degradation)) * prompt)``; the prompt term
        only when the network has the prompt module and ``degradation`` is given.
        """
        if not isinstance(t, torch.Tensor):
            t = torch.tensor([float(t)], device=device)
        elif t.ndim == 0:
            t = t.reshape(1)
        else:
            t = t.reshape(-1)
            if t.shape[0] not in (1, batch):
                raise ShapeError(f"t must be a number or a tensor of {batch} steps, got shape {tuple(t.shape)}.")
        sinusoid, mlp = self.time_mlp[0], self.time_mlp[1:]
        emb = mlp(sinusoid(t.to(device)).to(self.time_mlp[1].weight.dtype))  # the sinusoid is float32
        if self.config.use_degra_context and degradation is not None:
            weights = torch.softmax(self.text_mlp(degradation), dim=1)
            emb = emb + self.prompt_mlp(weights * self.prompt)
        return emb

    def forward(self, x_t: torch.Tensor, lq: torch.Tensor, t: torch.Tensor | float,
                degradation: torch.Tensor | None = None,
                content: torch.Tensor | None = None) -> torch.Tensor:
        """Predict the noise in ``x_t``.

        Args:
            x_t: ``(B, in_nc, H, W)`` noisy state, H and W multiples of :attr:`size_divisor`.
            lq: ``(B, in_nc, H, W)`` low-quality image (the SDE mean), RGB in [0, 1].
            t: step in ``[1, T]``: a Python number or a ``(B,)`` / ``(1,)`` tensor.
            degradation: ``(B, context_dim)`` degradation embedding (ignored by networks without
                the prompt module, e.g. Wild-IR).
            content: ``(B, context_dim)`` content embedding for the cross-attention.

        Returns:
            ``(B, out_nc, H, W)`` predicted noise (contiguous).
        """
        check_image(x_t, "x_t", channels=self.config.in_nc)
        check_image(lq, "lq", channels=self.config.in_nc)
        if x_t.shape != lq.shape:
            raise ShapeError(f"x_t {tuple(x_t.shape)} and lq {tuple(lq.shape)} must have the same shape.")
        check_multiple(x_t, self.size_divisor, type(self).__name__)
        b = x_t.shape[0]
        if self.config.use_degra_context:
            check_embedding(degradation, "degradation", b, self.config.context_dim)
        if self.config.use_image_context:
            check_embedding(content, "content", b, self.config.context_dim)

        fast = not self.reference_ops  # set on every block by use_reference_ops()
        x = torch.cat([x_t - lq, lq], dim=1)
        if fast:
            x = x.contiguous(memory_format=torch.channels_last)
        x = self.init_conv(x)
        skip0 = x if fast else x.clone()
        if self.config.scale < 1:
            x = self.downsample(x)

        temb = self.time_embedding(t, b, x.device, degradation)
        context = content[:, None, :] if (self.config.use_image_context and content is not None) else None

        hs = []
        for block1, block2, attn, down in cast("Iterable[nn.ModuleList]", self.downs):
            x = block1(x, temb)
            hs.append(x)
            x = attn(block2(x, temb), context)
            hs.append(x)
            x = down(x)

        x = self.mid_block1(x, temb)
        if self.config.use_image_context:
            x = self.mid_attn(x, context)
        x = self.mid_block2(x, temb)

        for block1, block2, attn, up in cast("Iterable[nn.ModuleList]", self.ups):
            x = block1(torch.cat([x, hs.pop()], dim=1), temb)
            x = block2(torch.cat([x, hs.pop()], dim=1), temb)
            x = up(attn(x, context))

        if self.config.scale < 1:
            x = self.upsample(x)
        x = self.final_res_block(torch.cat([x, skip0], dim=1), temb)
        x = self.final_conv(x)
        return x.contiguous()
