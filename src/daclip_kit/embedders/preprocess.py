"""CLIP image preprocessing on tensors: ``(B,3,H,W)`` in [0,1] -> normalised ``(B,3,S,S)``.

Reproduces, with batched tensor operations on any device, the official eval path of the DA-CLIP
restoration code: ``clip_transform`` turns the float image into uint8 by truncation
(``(x * 255).astype(np.uint8)``) and feeds ``PIL.Image.fromarray`` to open_clip's
``image_transform(S, is_train=False)``, i.e. torchvision ``Resize(S, BICUBIC)`` of the shorter
side (the longer side becomes ``int(S * long / short)``; no resize when the shorter side already
is ``S``), ``CenterCrop(S)`` (offsets ``int(round((n - S) / 2))``), ``ToTensor`` (``/ 255`` in
float32) and ``Normalize`` with the OpenAI mean/std.

What is emulated of Pillow's ``Image.resize(..., BICUBIC)`` for 8-bit RGB (``libImaging/Resample.c``,
``ImagingResampleInner``; ``reducing_gap`` is unset, so there is no ``reduce`` step):

* Two separable 1-D passes with a uint8 image in between; a pass is skipped when its size does
  not change. Pillow < 13 always resamples horizontally (width) first, then vertically. Pillow
  >= 13 (PR #9549) resamples vertically first when the height shrinks by more than twice as many
  pixels as the width (``new_h < h and h - new_h > 2 * (w - new_w)``): for the CLIP resize,
  downscaled portrait images more than about twice as tall as wide. The installed Pillow's major
  version picks the rule (the current one when Pillow is absent). The order matters: the two
  orders differ by up to ~20 grey levels on noise because of the rounding and clipping in between.
* Kernel: Keys cubic with ``a = -0.5``, support 2. When downscaling by ``scale = in / out > 1``
  the kernel is stretched by ``scale`` (support ``2 * scale``: antialiasing), otherwise not.
  Output pixel ``i`` is centred at ``(i + 0.5) * scale``; its taps are input pixels
  ``xmin .. xmax - 1`` with ``xmin = int(centre - support + 0.5)``, ``xmax = int(centre +
  support + 0.5)`` clamped to the image (no padding: taps outside are dropped), weight
  ``filter((j - centre + 0.5) / max(scale, 1))``, and the weights of each output pixel are
  normalised to sum to 1 (in double precision, summed in tap order).
* Fixed point: each weight becomes the integer ``int(w * 2**22 +- 0.5)`` (``PRECISION_BITS =
  22``, rounded half away from zero); a pass computes ``2**21 + sum(pixel * weight)`` in
  integers and keeps ``clip(acc >> 22, 0, 255)``, i.e. round half up and clip the bicubic
  overshoot, after *each* pass.

With ``quantize=True`` all of this is done exactly (integer-valued float64 matrix products: every
partial sum is an integer below 2**31), so the output equals the PIL path bit for bit; the tests
check this on photos, noise and smooth images (at most one grey level apart, and essentially all
values equal). The Pillow-SIMD fork (its own fixed-point kernels) is not emulated. Only the
output rows/columns kept by the centre crop are computed, from the input region they read, in
blocks of output pixels (the weights are banded). The weights are cached per (input size, output
size, crop, device, dtype).

With ``quantize=False`` the same separable weights are used in floating point (no truncation of
the input, no rounding), clamping to [0, 1] after each pass as PIL's uint8 clipping does. It is
differentiable almost everywhere and differs from the PIL path by the input truncation (0.5 grey
level on average) plus the roundings: measured on photos and noise, at most about 2 grey levels
(2.06 on 37x45 images) and 0.5 on average.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from functools import lru_cache
from importlib.metadata import PackageNotFoundError, version

import torch

from ..core.checks import check_image

OPENAI_MEAN: tuple[float, float, float] = (0.48145466, 0.4578275, 0.40821073)
OPENAI_STD: tuple[float, float, float] = (0.26862954, 0.26130258, 0.27577711)

_PRECISION_BITS = 22  # Pillow: 32 - 8 - 2
_ONE = float(1 << _PRECISION_BITS)
_HALF = float(1 << (_PRECISION_BITS - 1))
_VERTICAL_FIRST_SINCE = 13  # Pillow PR #9549


def resized_size(height: int, width: int, size: int) -> tuple[int, int]:
    """Output ``(h, w)`` of a shorter-side resize to ``size`` (torchvision ``Resize(int)`` rule:
    the longer side is truncated, not rounded)."""
    if height <= width:
        return size, int(size * width / height)
    return int(size * height / width), size


def _bicubic(x: torch.Tensor) -> torch.Tensor:
    """Pillow's ``bicubic_filter`` (a = -0.5), same operation order, float64."""
    a = -0.5
    x = x.abs()
    near = ((a + 2.0) * x - (a + 3.0)) * x * x + 1
    far = (((x - 5) * x + 8) * x - 4) * a
    return torch.where(x < 1.0, near, torch.where(x < 2.0, far, torch.zeros_like(x)))


# The cached weights are made outside inference mode whatever the first caller runs under: an
# inference tensor in the cache would break every later differentiable call.
@lru_cache(maxsize=64)
@torch.inference_mode(False)
def _pil_weights(in_size: int, out_size: int, start: int, stop: int
                 ) -> tuple[torch.Tensor, torch.Tensor, int, int]:
    """Pillow's bicubic resampling weights for output pixels ``start .. stop - 1`` of an
    ``in_size -> out_size`` resize (``precompute_coeffs`` and ``normalize_coeffs_8bpc`` of
    ``Resample.c``).

    Returns the normalised double weights and the 22-bit fixed-point integers, as dense CPU
    float64 matrices ``(stop - start, hi - lo)`` over the input pixels ``lo .. hi - 1`` that
    these outputs read, and ``lo``, ``hi``."""
    scale = float(in_size) / out_size
    filterscale = max(scale, 1.0)
    support = 2.0 * filterscale
    ksize = math.ceil(support) * 2 + 1
    centre = (torch.arange(start, stop, dtype=torch.float64) + 0.5) * scale
    xmin = torch.trunc(centre - support + 0.5).clamp(min=0)
    count = torch.trunc(centre + support + 0.5).clamp(max=in_size) - xmin
    taps = torch.arange(ksize, dtype=torch.float64)
    pos = xmin[:, None] + taps  # exact small integers
    w = _bicubic((pos - centre[:, None] + 0.5) * (1.0 / filterscale))
    w = torch.where(taps < count[:, None], w, torch.zeros_like(w))
    total = torch.zeros_like(centre)
    for j in range(ksize):  # sequential sum, as in C (the rounding of the sum matters)
        total = total + w[:, j]
    w = torch.where(total[:, None] != 0, w / total[:, None], w)
    fixed = torch.where(w < 0, torch.trunc(w * _ONE - 0.5), torch.trunc(w * _ONE + 0.5))
    lo, hi = int(xmin[0]), int((xmin + count).max())
    idx = pos.clamp(min=lo, max=hi - 1).long() - lo  # out-of-range taps carry weight 0
    dense = torch.zeros(stop - start, hi - lo, dtype=torch.float64)
    dense_fixed = torch.zeros_like(dense)
    dense.scatter_add_(1, idx, w)
    dense_fixed.scatter_add_(1, idx, fixed)
    return dense, dense_fixed, lo, hi


_BLOCK = 32  # output pixels per matrix product: the weights are banded, skip the zeros


@lru_cache(maxsize=64)
@torch.inference_mode(False)
def _weights_on(in_size: int, out_size: int, start: int, stop: int, fixed: bool,
                device: torch.device, dtype: torch.dtype) -> tuple[tuple[torch.Tensor, int, int], ...]:
    """The weights of ``_pil_weights`` on ``device``/``dtype``, cut into row blocks of ``_BLOCK``
    output pixels, each ``(matrix, a, b)`` over its own input range ``a .. b - 1``."""
    dense, dense_fixed, lo, _ = _pil_weights(in_size, out_size, start, stop)
    mat = dense_fixed if fixed else dense
    blocks = []
    for i in range(0, stop - start, _BLOCK):
        rows = mat[i:i + _BLOCK]
        used = rows.ne(0).any(0).nonzero()
        a, b = int(used.min()), int(used.max()) + 1
        blocks.append((rows[:, a:b].to(device=device, dtype=dtype).contiguous(), lo + a, lo + b))
    return tuple(blocks)


@lru_cache(maxsize=1)
def _pillow_major() -> int:
    try:
        return int(version("pillow").split(".")[0])
    except (PackageNotFoundError, ValueError):
        return _VERTICAL_FIRST_SINCE  # no Pillow here: follow the current rule


def _vertical_first(height: int, width: int, new_h: int, new_w: int) -> bool:
    """Pass order of ``ImagingResampleInner``: horizontal first, except (Pillow >= 13) when the
    height shrinks by more than twice as many pixels as the width does."""
    if _pillow_major() < _VERTICAL_FIRST_SINCE:
        return False
    return new_h < height and height - new_h > 2 * (width - new_w)


def _accumulator_device(device: torch.device) -> torch.device:
    # float64 is exact for the fixed-point sums; MPS has no float64, so compute those on the CPU.
    return torch.device("cpu") if device.type == "mps" else device


def clip_preprocess(images: torch.Tensor, size: int = 224, *,
                    mean: Sequence[float] = OPENAI_MEAN, std: Sequence[float] = OPENAI_STD,
                    quantize: bool = False) -> torch.Tensor:
    """Resize the shorter side to ``size`` (Pillow bicubic), centre-crop ``size``, normalise.

    Args:
        images: ``(B, 3, H, W)`` float RGB in [0, 1], any ``H``, ``W``.
        size: output side ``S`` (the tower's image size, 224 for the released models).
        mean, std: per-channel normalisation (OpenAI CLIP statistics by default).
        quantize: emulate the official uint8 path exactly: truncation to uint8 before, Pillow's
            fixed-point uint8 resampling (rounding and clipping after each pass). Without it the
            same separable filter runs in floating point (clamped to [0, 1] after each pass).

    Returns:
        ``(B, 3, S, S)`` normalised pixels, same dtype and device as ``images``.
    """
    check_image(images)
    dtype, device = images.dtype, images.device
    h, w = images.shape[-2:]
    new_h, new_w = resized_size(h, w, size)
    top = round((new_h - size) / 2.0)
    left = round((new_w - size) / 2.0)
    acc = _accumulator_device(device) if quantize else device
    wdtype = torch.float64 if quantize else dtype
    # only the outputs kept by the crop, from the input region they read; like PIL, a side that
    # keeps its size gets no pass
    hblocks: tuple[tuple[torch.Tensor, int, int], ...] = ()
    vblocks: tuple[tuple[torch.Tensor, int, int], ...] = ()
    if new_w != w:
        hblocks = _weights_on(w, new_w, left, left + size, quantize, acc, wdtype)
    if new_h != h:
        vblocks = _weights_on(h, new_h, top, top + size, quantize, acc, wdtype)
    c0, c1 = (hblocks[0][1], hblocks[-1][2]) if hblocks else (left, left + size)
    r0, r1 = (vblocks[0][1], vblocks[-1][2]) if vblocks else (top, top + size)
    x = images[..., r0:r1, c0:c1]
    if quantize:
        # the official (x * 255).astype(uint8) in the input's precision (clamping before or after
        # the floor is the same); the passes take float64 slices of these exact integers
        x = (x * 255).floor_().clamp_(0, 255).to(acc)
    else:
        x = x.clamp(0, 1)

    def horizontal(x: torch.Tensor) -> torch.Tensor:
        if not hblocks:
            return x
        x = torch.cat([x[..., a - c0:b - c0].to(wdtype) @ mat.T for mat, a, b in hblocks], dim=-1)
        return _round_pass(x) if quantize else x.clamp(0, 1)

    def vertical(x: torch.Tensor) -> torch.Tensor:
        if not vblocks:
            return x
        x = torch.cat([mat @ x[..., a - r0:b - r0, :].to(wdtype) for mat, a, b in vblocks], dim=-2)
        return _round_pass(x) if quantize else x.clamp(0, 1)

    if _vertical_first(h, w, new_h, new_w):
        x = horizontal(vertical(x))
    else:
        x = vertical(horizontal(x))
    if quantize:
        x = x.to(device, dtype) / 255  # ToTensor
    m = torch.tensor(mean, dtype=x.dtype, device=x.device).view(1, 3, 1, 1)
    s = torch.tensor(std, dtype=x.dtype, device=x.device).view(1, 3, 1, 1)
    return (x - m) / s


def _round_pass(acc: torch.Tensor) -> torch.Tensor:
    """Pillow's ``clip8(2**21 + acc)``: ``(acc + 2**21) >> 22`` clipped to [0, 255], in place
    (exact: ``acc`` holds integers and ``2**-22`` is a power of two)."""
    return acc.add_(_HALF).mul_(1.0 / _ONE).floor_().clamp_(0, 255)
