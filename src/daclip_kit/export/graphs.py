"""Export-ready wrappers: the padding rule and the fixed input order inside the graph.

The pipeline pads network inputs on the bottom and right to the network's ``size_divisor`` and
crops the output back (:func:`daclip_kit.ops.padding.padded_call`). These wrappers do the same
with tensor operations only (no Python branch on a size), so one exported graph takes any
``H x W``: reflect padding, replicate padding when the pad is not smaller than the side (the
pipeline's fallback for tiny images), or zeros for networks with ``pad_mode="constant"``. The
wrapped network always sees multiples of ``size_divisor``; the output is cropped to ``H x W``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch
from torch import nn

from ..types import Conditioning

if TYPE_CHECKING:
    from ..embedders.daclip.model import DaCLIP

#: Conditioning roles of a network, in the order they follow the images in an exported graph.
ROLES = ("degradation", "content")


def _padded_side(n: int, divisor: int) -> int:
    # a multiple of divisor by construction, so the network's own divisibility check holds for
    # every symbolic size
    return (n + divisor - 1) // divisor * divisor


def _mirror_index(n: int, padded: int, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """Row (or column) indices of a bottom/right reflect pad from ``n`` to ``padded`` and of a
    replicate pad; reflect indices below 0 mean the pad is too large to reflect."""
    idx = torch.arange(padded, device=device)
    reflect = torch.where(idx < n, idx, 2 * (n - 1) - idx)
    replicate = idx.clamp(max=n - 1)
    return reflect, replicate


def pad_to_divisor(x: torch.Tensor, divisor: int, mode: str) -> torch.Tensor:
    """``x`` ``(B, C, H, W)`` padded on the bottom and right to multiples of ``divisor``.

    Equals :func:`daclip_kit.ops.padding.pad_to_multiple` (``mode`` ``"reflect"`` with its
    replicate fallback, or ``"constant"``) for every size, with no branch on the size.
    """
    h, w = x.shape[-2], x.shape[-1]
    ph, pw = _padded_side(h, divisor), _padded_side(w, divisor)
    if mode == "constant":
        return torch.nn.functional.pad(x, (0, pw - w, 0, ph - h))
    rh, ch = _mirror_index(h, ph, x.device)
    rw, cw = _mirror_index(w, pw, x.device)
    fallback = (rh.min() < 0) | (rw.min() < 0)  # pad >= side on either axis: replicate both
    rows = torch.where(fallback, ch, rh)
    cols = torch.where(fallback, cw, rw)
    return x.index_select(2, rows).index_select(3, cols)


def crop_like(y: torch.Tensor, ref: torch.Tensor) -> torch.Tensor:
    """The top-left ``H x W`` window of ``y``, ``H x W`` being the size of ``ref``.

    Gathered rather than sliced: ``torch.export`` specialises a slice on whether it is empty of
    padding (``H == padded H``), which would tie the graph to the example's kind of size."""
    rows = torch.arange(ref.shape[2], device=y.device)
    cols = torch.arange(ref.shape[3], device=y.device)
    return y.index_select(2, rows).index_select(3, cols)


_scripted: dict[str, object] = {}


def _traceable(fn):
    """``fn`` compiled by TorchScript while tracing (so sizes stay symbolic in a traced graph),
    else ``fn`` itself (``torch.export`` and eager runs)."""
    if not torch.jit.is_tracing():
        return fn
    if fn.__name__ not in _scripted:
        _scripted[fn.__name__] = torch.jit.script(fn)
    return _scripted[fn.__name__]


class _Padded(nn.Module):
    def __init__(self, net: nn.Module):
        super().__init__()
        self.net = net
        self.divisor = max(1, int(getattr(net, "size_divisor", 1) or 1))
        self.mode = "constant" if getattr(net, "pad_mode", "reflect") == "constant" else "reflect"

    def pad(self, x: torch.Tensor) -> torch.Tensor:
        if self.divisor == 1:
            return x
        return _traceable(pad_to_divisor)(x, self.divisor, self.mode)

    def crop(self, y: torch.Tensor, ref: torch.Tensor) -> torch.Tensor:
        if self.divisor == 1:
            return y
        return _traceable(crop_like)(y, ref)


class BackboneGraph(_Padded):
    """``(lq[, degradation][, content]) -> restored``: a one-shot backbone with the padding rule.

    Shape:
        - lq: ``(B, 3, H, W)`` float RGB in [0, 1], any H and W.
        - degradation, content: ``(B, D)`` embeddings, only for the roles the network accepts.
        - output: ``(B, 3, H, W)``, not clamped (the pipeline clamps to [0, 1]).
    """

    def __init__(self, net: nn.Module, roles: tuple[str, ...] = ()):
        super().__init__(net)
        self.roles = tuple(roles)

    def forward(self, lq: torch.Tensor, *embeddings: torch.Tensor) -> torch.Tensor:
        cond = Conditioning(**dict(zip(self.roles, embeddings, strict=True))) if self.roles else None
        return self.crop(self.net(self.pad(lq), cond), lq)


class DenoiserGraph(_Padded):
    """``(x_t, lq, t[, degradation][, content]) -> predicted noise``: one network evaluation of a
    diffusion run with the padding rule.

    Shape:
        - x_t, lq: ``(B, 3, H, W)`` state and LQ image (the SDE mean), any H and W.
        - t: ``(B,)`` float32 times (fractional times allowed, as the MRS grid uses).
        - degradation, content: ``(B, D)`` embeddings, only for the roles the network accepts.
        - output: ``(B, 3, H, W)`` predicted noise.
    """

    def __init__(self, net: nn.Module, roles: tuple[str, ...] = ()):
        super().__init__(net)
        self.roles = tuple(roles)

    def forward(self, x_t: torch.Tensor, lq: torch.Tensor, t: torch.Tensor, *embeddings: torch.Tensor) -> torch.Tensor:
        cond = dict(zip(self.roles, embeddings, strict=True))
        return self.crop(self.net(self.pad(x_t), self.pad(lq), t, **cond), x_t)


class EncoderGraph(nn.Module):
    """DA-CLIP's image encoder: preprocessed pixels -> ``(content, degradation)``.

    Shape:
        - pixels: ``(B, 3, S, S)`` CLIP-preprocessed images (shorter side resized to ``S`` with
          bicubic, centre crop, ``/ 255``, OpenAI mean/std; ``S`` = the network's image size).
        - outputs: content ``(B, D)`` and degradation ``(B, D)``, unnormalised.
    """

    def __init__(self, net: DaCLIP):
        super().__init__()
        self.net = net

    def forward(self, pixels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        emb = self.net.encode_image(pixels, control=True)
        assert emb.degradation is not None  # control=True gives it
        return emb.content, emb.degradation
