"""PSNR / SSIM / Y conversion against scikit-image and hand-computed values."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from skimage.color import rgb2ycbcr
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

from daclip_kit.errors import ShapeError
from daclip_kit.metrics import psnr, psnr_y, rgb_to_y, ssim, ssim_y


def _pair(seed=0, shape=(3, 3, 40, 48), noise=0.08):
    g = torch.Generator().manual_seed(seed)
    gt = torch.rand(*shape, generator=g)
    pred = (gt + noise * torch.randn(*shape, generator=g)).clamp(0, 1)
    return pred, gt


def _u8(x: torch.Tensor) -> np.ndarray:
    """Independent uint8 conversion: (B,3,H,W) [0,1] -> (B,H,W,3) uint8."""
    return np.rint(np.clip(x.numpy().astype(np.float64), 0, 1) * 255).astype(np.uint8).transpose(0, 2, 3, 1)


def test_psnr_matches_skimage_on_uint8_with_crop():
    pred, gt = _pair()
    ours = psnr(pred, gt)
    a, b = _u8(pred), _u8(gt)
    for i in range(pred.shape[0]):
        ref = peak_signal_noise_ratio(b[i, 4:-4, 4:-4], a[i, 4:-4, 4:-4], data_range=255)
        assert ours[i].item() == pytest.approx(ref, abs=1e-9)


def test_ssim_matches_skimage_gaussian_window():
    pred, gt = _pair(seed=1)
    ours = ssim(pred, gt)
    a, b = _u8(pred), _u8(gt)
    for i in range(pred.shape[0]):
        ref = structural_similarity(a[i, 4:-4, 4:-4], b[i, 4:-4, 4:-4], gaussian_weights=True, sigma=1.5,
                                    use_sample_covariance=False, data_range=255, channel_axis=2)
        assert ours[i].item() == pytest.approx(ref, abs=1e-9)


def test_y_channel_metrics_match_skimage_luma():
    pred, gt = _pair(seed=2)
    ya = rgb2ycbcr(_u8(pred)[0].astype(np.float64) / 255)[..., 0][4:-4, 4:-4]  # 0..255 scale, unrounded
    yb = rgb2ycbcr(_u8(gt)[0].astype(np.float64) / 255)[..., 0][4:-4, 4:-4]
    assert psnr_y(pred, gt)[0].item() == pytest.approx(peak_signal_noise_ratio(yb, ya, data_range=255), abs=1e-9)
    ref_ssim = structural_similarity(ya, yb, gaussian_weights=True, sigma=1.5, use_sample_covariance=False,
                                     data_range=255)
    assert ssim_y(pred, gt)[0].item() == pytest.approx(ref_ssim, abs=1e-9)
    assert psnr(pred, gt, y_channel=True)[0] == psnr_y(pred, gt)[0]


def test_rgb_to_y_limited_range_endpoints():
    x = torch.stack([torch.zeros(3, 2, 2), torch.ones(3, 2, 2)])
    y = rgb_to_y(x)
    assert y.shape == (2, 1, 2, 2)
    torch.testing.assert_close(y[0], torch.full((1, 2, 2), 16 / 255))
    torch.testing.assert_close(y[1], torch.full((1, 2, 2), 235 / 255))
    red = torch.zeros(1, 3, 1, 1)
    red[:, 0] = 1
    assert rgb_to_y(red).item() == pytest.approx((65.481 + 16) / 255)


def test_psnr_hand_made_uniform_error():
    gt = torch.full((1, 3, 32, 32), 100 / 255)
    pred = gt + 10 / 255  # every pixel off by exactly 10 levels
    assert psnr(pred, gt).item() == pytest.approx(20 * math.log10(255 / 10), abs=1e-9)


def test_psnr_identical_is_infinite_and_ssim_is_one():
    _, gt = _pair()
    assert torch.isinf(psnr(gt, gt)).all()
    torch.testing.assert_close(ssim(gt, gt), torch.ones(3, dtype=torch.float64))


def test_crop_border_removes_border_errors():
    gt = torch.full((1, 3, 32, 32), 0.5)
    pred = gt.clone()
    pred[..., :4, :] = 1.0  # errors only in the top 4 rows
    assert torch.isinf(psnr(pred, gt, crop_border=4)).all()
    assert torch.isfinite(psnr(pred, gt, crop_border=0)).all()
    assert ssim(pred, gt, crop_border=4).item() == pytest.approx(1.0)
    assert ssim(pred, gt, crop_border=0).item() < 1.0


def test_quantize_rounds_sub_level_differences_away():
    gt = torch.full((1, 3, 24, 24), 100 / 255)
    pred = gt + 0.3 / 255  # rounds back to level 100
    assert torch.isinf(psnr(pred, gt)).all()
    assert psnr(pred, gt, quantize=False).item() == pytest.approx(20 * math.log10(255 / 0.3), rel=1e-6)


def test_out_of_range_values_are_clamped_like_tensor2img():
    gt = torch.full((1, 3, 24, 24), 1.0)
    assert torch.isinf(psnr(gt + 0.5, gt)).all()


def test_shape_errors_are_clear():
    a = torch.rand(1, 3, 32, 32)
    with pytest.raises(ShapeError, match="same shape"):
        psnr(a, torch.rand(1, 3, 32, 31))
    with pytest.raises(ShapeError, match="crop_border"):
        psnr(a, a, crop_border=16)
    with pytest.raises(ShapeError, match="at least 11x11"):
        ssim(torch.rand(1, 3, 16, 16), torch.rand(1, 3, 16, 16))
    with pytest.raises(ShapeError, match="4 dimensions"):
        psnr(a[0], a[0])


def test_registered_metrics_resolve_to_the_functions():
    from daclip_kit import get_metric
    from daclip_kit.plugins import get_registry

    reg = get_registry("metrics")
    assert {"psnr", "ssim", "psnr-y", "ssim-y", "lpips", "fid"} <= set(reg.names())
    assert get_metric("psnr") is psnr and get_metric("ssim-y") is ssim_y
    assert reg.get("lpips").higher_is_better is False
    assert reg.get("fid").paired is False
