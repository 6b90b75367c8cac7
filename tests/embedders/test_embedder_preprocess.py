"""Tensor CLIP preprocessing against the official PIL transform (open_clip image_transform).

The official path: ``(x * 255).astype(np.uint8)`` (truncation), ``PIL.Image.fromarray``, then
``open_clip.transform.image_transform(224, is_train=False)`` (PIL bicubic resize of the shorter
side, centre crop, ToTensor, Normalize). ``clip_preprocess(..., quantize=True)`` emulates Pillow's
fixed-point resampling, so it should agree value for value.
"""

from __future__ import annotations

from functools import cache, lru_cache

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from daclip_kit.data import mini
from daclip_kit.embedders.preprocess import (
    OPENAI_MEAN,
    OPENAI_STD,
    clip_preprocess,
    resized_size,
)
from daclip_kit.errors import ShapeError

GREY_LEVEL = 1 / 255 / min(OPENAI_STD)
MIN_EQUAL = 0.999  # fraction of output values exactly equal to PIL's (measured: all of them)


@lru_cache(maxsize=1)
def _official_transform():
    from open_clip.transform import image_transform

    return image_transform(224, is_train=False)


def official(x: torch.Tensor) -> torch.Tensor:
    """The official restoration code's ``clip_transform`` on each image of ``(B,3,H,W)``."""
    from PIL import Image

    tf = _official_transform()
    outs = []
    for im in x:
        arr = (im.permute(1, 2, 0).numpy() * 255).astype(np.uint8)  # the official truncation
        outs.append(tf(Image.fromarray(arr)))
    return torch.stack(outs)


def assert_matches_official(x: torch.Tensor) -> None:
    ref = official(x)
    out = clip_preprocess(x, 224, quantize=True)
    assert out.shape == (x.shape[0], 3, 224, 224) and out.dtype == x.dtype
    diff = (out - ref).abs()
    worst = diff.max().item()
    assert worst <= GREY_LEVEL + 1e-5, f"max diff {worst / GREY_LEVEL:.3f} grey levels"
    equal = (diff == 0).double().mean().item()
    assert equal >= MIN_EQUAL, f"only {equal:.5f} of the values equal PIL's"


def smooth_image(h, w, seed=0):
    g = torch.Generator().manual_seed(seed)
    base = torch.rand(1, 3, h // 8 + 2, w // 8 + 2, generator=g)
    x = F.interpolate(base, (h, w), mode="bilinear", align_corners=False)
    return (x + 0.05 * torch.rand(1, 3, h, w, generator=g)).clamp(0, 1)


def noise_image(h, w, seed=0, binary=False):
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(1, 3, h, w, generator=g)
    return (x > 0.5).float() if binary else x


@cache
def photo(name: str) -> torch.Tensor:
    """``(1,3,H,W)`` float32 in [0, 1] (``uint8 / 255``), a photo bundled with scikit-image or
    scikit-learn (both in the ``[dev]`` extra)."""
    return mini.load_photo({n: load for n, load, _ in mini.PHOTOS}[name])


def photo_variant(x: torch.Tensor, variant: str) -> torch.Tensor:
    h, w = x.shape[-2:]
    if variant == "full":
        return x
    if variant == "landscape_crop":  # 300x451 (downscale by 1.34), odd offsets
        return x[..., 5:5 + min(300, h - 5), 7:7 + min(451, w - 7)]
    if variant == "portrait_crop":  # full height, 2/3 as wide: portrait, may upscale the width
        return x[..., :, 3:3 + (2 * h) // 3]
    if variant == "subsampled":  # ~60x80: strong upscaling
        return x[..., ::7, ::7]
    if variant == "rescaled":  # 700x1000 bilinear: downscale by 3.1 (wide antialias support)
        return F.interpolate(x, (700, 1000), mode="bilinear", align_corners=False).clamp(0, 1)
    if variant == "tall":  # 1000x400: Pillow >= 13 resamples this one vertically first
        return F.interpolate(x, (1000, 400), mode="bilinear", align_corners=False).clamp(0, 1)
    raise AssertionError(variant)


PHOTOS = ["astronaut", "chelsea", "coffee", "rocket", "china", "flower"]
VARIANTS = ["full", "landscape_crop", "portrait_crop", "subsampled"]
# landscape/portrait, up/downscaling, no resize (224x300), tall portraits (h > 2w: vertical pass
# first in Pillow >= 13), extreme aspect ratios
SIZES = [(300, 451), (451, 300), (40, 56), (37, 45), (224, 300), (256, 256), (512, 512),
         (1000, 700), (100, 1000), (225, 223), (739, 267), (1000, 300), (30, 400)]


@pytest.mark.parametrize("variant", VARIANTS)
@pytest.mark.parametrize("name", PHOTOS)
def test_photos_match_official_pil_transform(name, variant):
    assert_matches_official(photo_variant(photo(name), variant))


@pytest.mark.parametrize("variant", ["rescaled", "tall"])
@pytest.mark.parametrize("name", ["astronaut", "china"])
def test_rescaled_photo_matches_official_pil_transform(name, variant):
    assert_matches_official(photo_variant(photo(name), variant))


@pytest.mark.parametrize("h, w", SIZES)
def test_noise_matches_official_pil_transform(h, w):
    # uniform noise (continuous values: exercises the truncation) and black/white noise (the
    # largest bicubic overshoot: PIL clips it to [0, 255] after each pass)
    assert_matches_official(noise_image(h, w, seed=h * w))
    assert_matches_official(noise_image(h, w, seed=h * w + 1, binary=True))


@pytest.mark.parametrize("h, w", SIZES)
def test_smooth_images_match_official_pil_transform(h, w):
    assert_matches_official(smooth_image(h, w))


@pytest.mark.parametrize("h, w", [(300, 451), (739, 267)])
def test_batch_of_two_equals_two_singles(h, w):
    x = torch.cat([smooth_image(h, w, seed=1), noise_image(h, w, seed=2, binary=True)])
    for quantize in (True, False):
        batched = clip_preprocess(x, 224, quantize=quantize)
        singles = torch.cat([clip_preprocess(x[i:i + 1], 224, quantize=quantize) for i in range(2)])
        torch.testing.assert_close(batched, singles, rtol=0, atol=1e-6)
    assert_matches_official(x)


@pytest.mark.parametrize("h, w", [(300, 451), (40, 56), (1000, 700), (739, 267)])
def test_float_path_is_close(h, w):
    # no uint8 steps: differs by the input truncation (half a grey level on average) and roundings
    for x in (smooth_image(h, w, seed=3), noise_image(h, w, seed=4)):
        diff = (clip_preprocess(x, 224) - official(x)).abs()
        assert diff.max() <= 2.5 * GREY_LEVEL
        assert diff.mean() <= 0.7 * GREY_LEVEL


def test_float_path_is_differentiable():
    x = smooth_image(40, 56).requires_grad_()
    clip_preprocess(x, 32).sum().backward()
    assert x.grad is not None and torch.isfinite(x.grad).all() and x.grad.abs().sum() > 0


def test_a_first_call_under_inference_mode_does_not_break_gradients():
    """The resampling weights are cached; made by a first call under inference_mode (classify
    does that) they must still serve a differentiable call."""
    with torch.inference_mode():
        clip_preprocess(smooth_image(41, 59), 24)
    x = smooth_image(41, 59).requires_grad_()
    clip_preprocess(x, 24).sum().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0


def test_other_sizes_and_dtypes():
    x = smooth_image(50, 70)
    out = clip_preprocess(x.double(), 32, quantize=True)
    assert out.shape == (1, 3, 32, 32) and out.dtype == torch.float64
    assert clip_preprocess(x.double(), 32).dtype == torch.float64


def test_resize_rule_and_centre_crop():
    assert resized_size(300, 451, 224) == (224, 336)
    assert resized_size(451, 300, 224) == (336, 224)
    x = torch.zeros(1, 3, 224, 300)
    x[..., :, 38:262] = 1.0  # exactly the centre 224 columns
    mean, std = torch.tensor(OPENAI_MEAN).view(1, 3, 1, 1), torch.tensor(OPENAI_STD).view(1, 3, 1, 1)
    for quantize in (False, True):
        out = clip_preprocess(x, 224, quantize=quantize) * std + mean
        torch.testing.assert_close(out, torch.ones(1, 3, 224, 224))


def test_rejects_bad_input():
    with pytest.raises(ShapeError):
        clip_preprocess(torch.rand(3, 32, 32))
