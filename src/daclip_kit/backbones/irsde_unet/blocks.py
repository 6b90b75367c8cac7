"""Building blocks of the IR-SDE conditional U-Net.

Module names and parameter shapes follow the official network exactly, so that the state-dict
keys of ``universal-ir.pth`` / ``wild-ir.pth`` load strictly. Every block has two execution paths
computing the same function:

* the fast path (default): channels-last friendly, fused ``scaled_dot_product_attention``, the
  one-token cross-attention computed in closed form, linear attention with the output
  projection folded into its context matrix, nearest-upsample + 3x3 conv as one sub-pixel conv;
* the reference path (``reference_ops = True``): the official op sequence (einsum attention,
  explicit softmax, separate element-wise ops, NCHW copies), kept to check and benchmark the fast
  path against.
"""

from __future__ import annotations

import math
from typing import cast

import torch
import torch.nn.functional as F
from torch import nn

from ...errors import ShapeError


class Switchable:
    """Mixin of modules with a fast path and a reference path (``reference_ops``)."""

    reference_ops: bool = False


def conv3x3(dim_in: int, dim_out: int, bias: bool = False) -> nn.Conv2d:
    """3x3 convolution with 'same' zero padding (the official ``default_conv``)."""
    return nn.Conv2d(dim_in, dim_out, 3, padding=1, bias=bias)


class SinusoidalTimeEmbedding(nn.Module):
    """``[sin(t f_k), cos(t f_k)]`` with ``f_k = exp(-k ln(10000) / (half - 1))``.

    Shape:
        - t: ``(B,)`` or ``(1,)`` float/int steps.
        - output: ``(B, dim)``.
    """

    def __init__(self, dim: int):
        super().__init__()
        self.dim = dim

    def forward(self, t: torch.Tensor) -> torch.Tensor:
        half = self.dim // 2
        freqs = torch.exp(
            torch.arange(half, device=t.device, dtype=torch.float32) * (-math.log(10000) / (half - 1))
        )
        args = t.float()[:, None] * freqs[None, :]
        return torch.cat((args.sin(), args.cos()), dim=-1)


class ChannelLayerNorm(Switchable, nn.Module):
    """LayerNorm over channels of a ``(B, C, H, W)`` map with a gain ``g`` and no bias.

    ``eps`` is 1e-5 in float32 and 1e-3 in lower precision, as the official module.
    """

    def __init__(self, dim: int):
        super().__init__()
        self.dim = dim  # a Python int, so a traced graph (ONNX export) keeps the normalised shape static
        self.g = nn.Parameter(torch.ones(1, dim, 1, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        eps = 1e-5 if x.dtype == torch.float32 else 1e-3
        if self.reference_ops:
            var = torch.var(x, dim=1, unbiased=False, keepdim=True)
            mean = torch.mean(x, dim=1, keepdim=True)
            return (x - mean) * (var + eps).rsqrt() * self.g
        if x.is_contiguous(memory_format=torch.channels_last):
            y = F.layer_norm(x.permute(0, 2, 3, 1), (self.dim,), self.g.view(-1), None, eps)
            return y.permute(0, 3, 1, 2)
        var, mean = torch.var_mean(x, dim=1, unbiased=False, keepdim=True)
        return (x - mean) * (var + eps).rsqrt() * self.g


class ConvAct(nn.Module):
    """``proj`` (3x3 conv, no bias); the owner applies modulation and SiLU."""

    def __init__(self, dim_in: int, dim_out: int):
        super().__init__()
        self.proj = conv3x3(dim_in, dim_out)


class ResBlock(Switchable, nn.Module):
    """Time-modulated residual block without normalisation.

    ``h = silu(conv1(x) * (1 + scale) + shift)``, ``h = silu(conv2(h))``, output ``h + res(x)``
    with ``(scale, shift) = mlp(t_emb)`` and ``res`` a 1x1 conv when the widths differ.

    Shape:
        - x: ``(B, dim_in, H, W)``; t_emb: ``(B or 1, time_dim)``.
        - output: ``(B, dim_out, H, W)``.
    """

    def __init__(self, dim_in: int, dim_out: int, time_dim: int):
        super().__init__()
        self.mlp = nn.Sequential(nn.SiLU(), nn.Linear(time_dim, dim_out * 2))
        self.block1 = ConvAct(dim_in, dim_out)
        self.block2 = ConvAct(dim_out, dim_out)
        self.res_conv = nn.Conv2d(dim_in, dim_out, 1, bias=False) if dim_in != dim_out else nn.Identity()

    def forward(self, x: torch.Tensor, t_emb: torch.Tensor) -> torch.Tensor:
        scale, shift = self.mlp(t_emb)[:, :, None, None].chunk(2, dim=1)
        if self.reference_ops:
            h = self.block1.proj(x)
            h = h * (scale + 1) + shift
            h = F.silu(h)
            h = F.silu(self.block2.proj(h))
            return h + self.res_conv(x)
        h = torch.addcmul(shift, self.block1.proj(x), scale + 1)
        h = F.silu(self.block2.proj(F.silu(h, inplace=True)), inplace=True)
        res = self.res_conv(x)
        return h.add_(res) if res.dtype == h.dtype else h + res  # keep autocast's promotion


class LinearAttention(Switchable, nn.Module):
    """Linear attention with 4 heads of 32 channels whatever the width (``context`` ignored).

    ``q`` is softmaxed over channels, ``k`` over pixels; output ``to_out((k v^T)^T q)``.
    """

    heads = 4
    dim_head = 32

    def __init__(self, dim: int):
        super().__init__()
        hidden = self.heads * self.dim_head
        self.scale = self.dim_head ** -0.5
        self.to_qkv = nn.Conv2d(dim, hidden * 3, 1, bias=False)
        self.to_out = nn.Sequential(nn.Conv2d(hidden, dim, 1), ChannelLayerNorm(dim))

    def forward(self, x: torch.Tensor, context: torch.Tensor | None = None) -> torch.Tensor:
        if self.reference_ops:
            return self._reference(x)
        b, c, h, w = x.shape
        n, heads, d = h * w, self.heads, self.dim_head
        pixels = x.permute(0, 2, 3, 1)  # (B, H, W, C), a view for channels-last input
        w_q, w_k, w_v = self.to_qkv.weight.view(3, heads * d, c)
        q = F.linear(pixels, w_q).view(b, n, heads, d).softmax(dim=-1)
        k = F.linear(pixels, w_k).view(b, n, heads, d)
        v = F.linear(pixels, w_v).view(b, n, heads, d)
        # softmax of k over pixels, normalised after the k^T v product (one pass less)
        k = (k - k.amax(dim=1, keepdim=True)).exp_()
        ctx = torch.stack([k[:, :, i].transpose(1, 2) @ v[:, :, i] for i in range(heads)], dim=1)
        ctx = ctx / k.sum(dim=1)[..., None]  # (B, heads, d, e)
        proj = cast(nn.Conv2d, self.to_out[0])
        weight = proj.weight.view(-1, heads, d)  # (C, heads, e)
        # Fold the output 1x1 conv, the q scale and v's 1/(h*w) into one (128, C) matrix per image.
        mixed = torch.einsum("bhde,che->bhdc", ctx, weight).reshape(b, heads * d, -1) * (self.scale / n)
        out = torch.baddbmm(cast(torch.Tensor, proj.bias), q.reshape(b, n, heads * d), mixed)  # a conv with bias
        return self.to_out[1](out.view(b, h, w, -1).permute(0, 3, 1, 2))

    def _reference(self, x: torch.Tensor) -> torch.Tensor:
        b, _, h, w = x.shape
        q, k, v = (t.reshape(b, self.heads, self.dim_head, h * w) for t in self.to_qkv(x).chunk(3, dim=1))
        q = q.softmax(dim=-2) * self.scale
        k = k.softmax(dim=-1)
        v = v / (h * w)
        ctx = torch.einsum("bhdn,bhen->bhde", k, v)
        out = torch.einsum("bhde,bhdn->bhen", ctx, q)
        return self.to_out(out.reshape(b, self.heads * self.dim_head, h, w))


class CrossAttention(Switchable, nn.Module):
    """Multi-head attention from tokens to a context (self-attention when ``context`` is None).

    ``to_q``/``to_k`` are kept for weight compatibility; with a single context token the
    softmax is exactly 1, so the fast path returns ``to_out(to_v(context))`` for every query.

    Shape:
        - x: ``(B, N, dim)``; context: ``(B, L, context_dim)`` or ``None``.
        - output: ``(B, N, dim)``.
    """

    def __init__(self, dim: int, heads: int, dim_head: int, context_dim: int | None = None):
        super().__init__()
        inner = heads * dim_head
        context_dim = dim if context_dim is None else context_dim
        self.heads = heads
        self.dim_head = dim_head
        self.scale = dim_head ** -0.5
        self.to_q = nn.Linear(dim, inner, bias=False)
        self.to_k = nn.Linear(context_dim, inner, bias=False)
        self.to_v = nn.Linear(context_dim, inner, bias=False)
        self.to_out = nn.Sequential(nn.Linear(inner, dim), nn.Dropout(0.0))

    def single_token(self, context: torch.Tensor) -> torch.Tensor:
        """Output for a one-token context, the same at every query: ``(B, 1, dim)``."""
        return self.to_out(self.to_v(context))

    def forward(self, x: torch.Tensor, context: torch.Tensor | None = None) -> torch.Tensor:
        ctx = x if context is None else context
        if ctx.shape[-1] != self.to_k.in_features:
            raise ShapeError(
                f"Cross-attention expects a context of size {self.to_k.in_features}, got "
                f"{tuple(ctx.shape)}. This network needs the content embedding (content=...)."
            )
        if self.reference_ops:
            return self._reference(x, ctx)
        if context is not None and context.shape[1] == 1:
            return self.single_token(context).expand_as(x)
        b, n, _ = x.shape
        q, k, v = (t.view(b, -1, self.heads, self.dim_head).transpose(1, 2)
                   for t in (self.to_q(x), self.to_k(ctx), self.to_v(ctx)))
        out = F.scaled_dot_product_attention(q, k, v)
        return self.to_out(out.transpose(1, 2).reshape(b, n, -1))

    def _reference(self, x: torch.Tensor, ctx: torch.Tensor) -> torch.Tensor:
        b, n, _ = x.shape
        h = self.heads
        ctx = ctx.expand(b, -1, -1)  # a (1, L, D) context serves the whole batch

        def split(t: torch.Tensor) -> torch.Tensor:
            return t.reshape(b, -1, h, self.dim_head).permute(0, 2, 1, 3).reshape(b * h, -1, self.dim_head)

        q, k, v = split(self.to_q(x)), split(self.to_k(ctx)), split(self.to_v(ctx))
        sim = torch.einsum("bid,bjd->bij", q, k) * self.scale
        out = torch.einsum("bij,bjd->bid", sim.softmax(dim=-1), v)
        out = out.reshape(b, h, n, self.dim_head).permute(0, 2, 1, 3).reshape(b, n, h * self.dim_head)
        return self.to_out(out)


class GEGLU(nn.Module):
    """``a * gelu(gate)`` with ``(a, gate) = proj(x)``; ``(..., dim_in) -> (..., dim_out)``."""

    def __init__(self, dim_in: int, dim_out: int):
        super().__init__()
        self.proj = nn.Linear(dim_in, dim_out * 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        a, gate = self.proj(x).chunk(2, dim=-1)
        return a * F.gelu(gate)


class FeedForward(nn.Module):
    """GEGLU feed-forward with 4x hidden width."""

    def __init__(self, dim: int, mult: int = 4):
        super().__init__()
        self.net = nn.Sequential(GEGLU(dim, dim * mult), nn.Dropout(0.0), nn.Linear(dim * mult, dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


class TransformerBlock(Switchable, nn.Module):
    """Self-attention, cross-attention and feed-forward, each pre-normed with a residual."""

    def __init__(self, dim: int, heads: int, dim_head: int, context_dim: int):
        super().__init__()
        self.attn1 = CrossAttention(dim, heads, dim_head)
        self.ff = FeedForward(dim)
        self.attn2 = CrossAttention(dim, heads, dim_head, context_dim)
        self.norm1 = nn.LayerNorm(dim)
        self.norm2 = nn.LayerNorm(dim)
        self.norm3 = nn.LayerNorm(dim)

    def forward(self, x: torch.Tensor, context: torch.Tensor | None = None) -> torch.Tensor:
        x = self.attn1(self.norm1(x)) + x
        if not self.reference_ops and context is not None and context.shape[1] == 1:
            x = x + self.attn2.single_token(context)  # independent of norm2(x): one key
        else:
            x = self.attn2(self.norm2(x), context) + x
        return self.ff(self.norm3(x)) + x


class SpatialTransformer(Switchable, nn.Module):
    """GroupNorm, 1x1 ``proj_in``, one :class:`TransformerBlock` on pixels, 1x1 ``proj_out``,
    plus the input.

    Shape:
        - x: ``(B, C, H, W)``; context: ``(B, L, context_dim)`` or ``None`` (self-attention).
        - output: ``(B, C, H, W)``.
    """

    def __init__(self, dim: int, heads: int, dim_head: int, context_dim: int):
        super().__init__()
        inner = heads * dim_head
        self.norm = nn.GroupNorm(32, dim, eps=1e-6)
        self.proj_in = nn.Conv2d(dim, inner, 1)
        self.transformer_blocks = nn.ModuleList([TransformerBlock(inner, heads, dim_head, context_dim)])
        self.proj_out = nn.Conv2d(inner, dim, 1)

    def forward(self, x: torch.Tensor, context: torch.Tensor | None = None) -> torch.Tensor:
        b, _, h, w = x.shape
        y = self.proj_in(self.norm(x))
        if self.reference_ops:
            tokens = y.reshape(b, y.shape[1], h * w).transpose(1, 2).contiguous()
        else:
            tokens = y.permute(0, 2, 3, 1).reshape(b, h * w, -1)
        for block in self.transformer_blocks:
            tokens = block(tokens, context)
        if self.reference_ops:
            y = tokens.transpose(1, 2).reshape(b, -1, h, w).contiguous()
        else:
            y = tokens.view(b, h, w, -1).permute(0, 3, 1, 2)
        return self.proj_out(y) + x


class PreNorm(nn.Module):
    """``fn(ChannelLayerNorm(x), context)``."""

    def __init__(self, dim: int, fn: nn.Module):
        super().__init__()
        self.fn = fn
        self.norm = ChannelLayerNorm(dim)

    def forward(self, x: torch.Tensor, context: torch.Tensor | None = None) -> torch.Tensor:
        return self.fn(self.norm(x), context)


class Residual(nn.Module):
    """``fn(x, context) + x``."""

    def __init__(self, fn: nn.Module):
        super().__init__()
        self.fn = fn

    def forward(self, x: torch.Tensor, context: torch.Tensor | None = None) -> torch.Tensor:
        return self.fn(x, context) + x


class Upsample(Switchable, nn.Sequential):
    """Nearest x2 upsampling then a 3x3 conv with bias (children ``0`` and ``1`` as officially).

    The fast path computes the same thing as one 2x2 conv with ``4 * dim_out`` channels on the
    low-resolution map followed by a pixel interleave (2.25x fewer multiply-adds, no upsampled
    copy of the input).

    Shape:
        - x: ``(B, dim_in, h, w)``; output ``(B, dim_out, 2h, 2w)``.
    """

    def __init__(self, dim_in: int, dim_out: int):
        super().__init__(nn.Upsample(scale_factor=2, mode="nearest"), conv3x3(dim_in, dim_out, bias=True))
        self._cache: tuple[tuple, torch.Tensor] | None = None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        conv = cast(nn.Conv2d, self[1])
        if self.reference_ops:
            return conv(self[0](x))
        b, _, h, w = x.shape
        c = conv.out_channels
        bias = cast(torch.Tensor, conv.bias)  # the conv has one
        out = F.conv2d(x, self._subpixel_weight(), None, padding=1)  # (B, 4*C, h+1, w+1)

        def phase(a: int, bb: int) -> torch.Tensor:  # output pixels (2i + a, 2j + bb)
            return out[:, (2 * a + bb) * c:(2 * a + bb + 1) * c, a:a + h, bb:bb + w]

        needs_grad = torch.is_grad_enabled() and (out.requires_grad or bias.requires_grad)
        if torch.compiler.is_compiling() or needs_grad:
            # one traceable expression (no writes into views): training and torch.compile
            rows = [torch.stack([phase(a, 0), phase(a, 1)], dim=-1) for a in (0, 1)]
            y = torch.stack(rows, dim=3).reshape(b, c, 2 * h, 2 * w)
            return y + bias.view(1, -1, 1, 1)
        y = out.new_empty(b, h, 2, w, 2, c)
        for a in (0, 1):
            for bb in (0, 1):
                torch.add(phase(a, bb).permute(0, 2, 3, 1), bias, out=y[:, :, a, :, bb, :])
        return y.view(b, 2 * h, 2 * w, c).permute(0, 3, 1, 2)

    def _subpixel_weight(self) -> torch.Tensor:
        weight = cast(nn.Conv2d, self[1]).weight
        if torch.compiler.is_compiling() or (torch.is_grad_enabled() and weight.requires_grad) \
                or weight.is_inference():
            return subpixel_weight(weight)
        key = (weight.data_ptr(), weight._version, weight.dtype, weight.device)
        if self._cache is None or self._cache[0] != key:
            self._cache = (key, subpixel_weight(weight.detach()))
        return self._cache[1]


def subpixel_weight(weight: torch.Tensor) -> torch.Tensor:
    """2x2 kernels equivalent to ``conv3x3(nearest_upsample_x2(x))`` for the four output phases.

    Output phase ``(a, b)`` at low-resolution position ``(i, j)`` reads input rows ``i - 1 + a``
    and ``i + a`` (columns likewise) of the input padded by one; the 3x3 taps that land on the
    same input pixel are summed. Returns ``(4 * C_out, C_in, 2, 2)`` ordered ``(a, b, C_out)``.
    """
    # Row taps (-1, 0, +1) -> 2 input rows: phase 0 uses rows {i-1: tap -1, i: taps 0,+1},
    # phase 1 uses rows {i: taps -1,0, i+1: tap +1}.
    groups = (((0,), (1, 2)), ((0, 1), (2,)))
    kernels = []
    for a in (0, 1):
        for b in (0, 1):
            k = weight.new_zeros(weight.shape[0], weight.shape[1], 2, 2)
            for r, row_taps in enumerate(groups[a]):
                for s, col_taps in enumerate(groups[b]):
                    k[:, :, r, s] = weight[:, :, list(row_taps)][:, :, :, list(col_taps)].sum(dim=(2, 3))
            kernels.append(k)
    return torch.cat(kernels, dim=0)
