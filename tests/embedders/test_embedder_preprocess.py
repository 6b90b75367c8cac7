"""Tensor CLIP preprocessing against the official PIL transform (open_clip image_transform)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from daclip_kit.embedders.preprocess import (
    OPENAI_MEAN,
    OPENAI_STD,
    clip_preprocess,
    resized_size,
)
from daclip_kit.errors import ShapeError

GREY_LEVEL = 1 / 255 / min(OPENAI_STD)


def smooth_image(h, w, seed=0):
    g = torch.Generator().manual_seed(seed)
    base = torch.rand(1, 3, h // 8 + 2, w // 8 + 2, generator=g)
    x = torch.nn.functional.interpolate(base, (h, w), mode="bilinear", align_corners=False)
    return (x + 0.05 * torch.rand(1, 3, h, w, generator=g)).clamp(0, 1)


@pytest.mark.parametrize("h, w", [(300, 451), (40, 56), (37, 45), (224, 300), (256, 256)])
def test_matches_official_pil_transform_within_one_grey_level(h, w):
    from open_clip.transform import image_transform
    from PIL import Image

    x = smooth_image(h, w)
    arr = (x[0].permute(1, 2, 0).numpy() * 255).astype(np.uint8)  # the official truncation
    ref = image_transform(224, is_train=False)(Image.fromarray(arr)).unsqueeze(0)
    out = clip_preprocess(x, 224, quantize=True)
    assert out.shape == (1, 3, 224, 224)
    diff = (out - ref).abs()
    assert diff.max() <= GREY_LEVEL + 1e-4
    assert diff.mean() < 0.25 * GREY_LEVEL
    loose = (clip_preprocess(x, 224) - ref).abs()
    assert loose.max() <= 2.5 * GREY_LEVEL


def test_resize_rule_and_centre_crop():
    assert resized_size(300, 451, 224) == (224, 336)
    assert resized_size(451, 300, 224) == (336, 224)
    x = torch.zeros(1, 3, 224, 300)
    x[..., :, 38:262] = 1.0  # exactly the centre 224 columns
    out = clip_preprocess(x, 224) * torch.tensor(OPENAI_STD).view(1, 3, 1, 1) + torch.tensor(OPENAI_MEAN).view(1, 3, 1, 1)
    torch.testing.assert_close(out, torch.ones(1, 3, 224, 224))


def test_rejects_bad_input():
    with pytest.raises(ShapeError):
        clip_preprocess(torch.rand(3, 32, 32))
