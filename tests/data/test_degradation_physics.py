"""Physical effect, determinism and batch handling of the ten degradation generators."""

from __future__ import annotations

import io

import numpy as np
import pytest
import torch
from PIL import Image

from daclip_kit import DEGRADATIONS, ShapeError, create_degradation, list_components


def texture(size: int = 96, seed: int = 0, batch: int = 1) -> torch.Tensor:
    """A natural-ish test image: smooth colour gradient plus fine random detail, in [0.1, 0.9]."""
    g = torch.Generator().manual_seed(seed)
    y = torch.linspace(0, 1, size).view(1, 1, size, 1)
    x = torch.linspace(0, 1, size).view(1, 1, 1, size)
    base = torch.cat([0.3 + 0.3 * x + 0 * y, 0.4 + 0.2 * y + 0 * x, 0.5 - 0.2 * x * y], 1)
    detail = torch.rand(batch, 3, size, size, generator=g) - 0.5
    return (base + 0.3 * detail).clamp(0.1, 0.9)


#: generators without randomness at their default settings (a fixed JPEG quality)
FIXED = {"jpeg-compressed"}


def gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def laplacian_energy(x: torch.Tensor) -> float:
    lap = 4 * x[..., 1:-1, 1:-1] - x[..., :-2, 1:-1] - x[..., 2:, 1:-1] - x[..., 1:-1, :-2] - x[..., 1:-1, 2:]
    return float(lap.pow(2).mean())


def test_the_ten_official_names_are_registered():
    assert set(DEGRADATIONS) <= set(list_components("degradations"))


@pytest.mark.parametrize("name", DEGRADATIONS)
def test_deterministic_for_a_fixed_generator_and_seed_dependent(name):
    deg = create_degradation(name)
    x = texture(48)
    a, b = deg(x, generator=gen(3)), deg(x, generator=gen(3))
    c = deg(x, generator=gen(4))
    assert torch.equal(a, b)
    assert torch.equal(a, c) if name in FIXED else not torch.equal(a, c)


@pytest.mark.parametrize("name", DEGRADATIONS)
def test_batch_shape_range_dtype_and_independent_elements(name):
    deg = create_degradation(name)
    x = texture(40).repeat(3, 1, 1, 1)[..., :36]  # 3 identical 40x36 images
    out = deg(x, generator=gen(0))
    assert out.shape == x.shape and out.dtype == x.dtype
    assert out.min() >= 0 and out.max() <= 1
    # identical inputs get their own random parameters
    assert torch.equal(out[0], out[1]) if name in FIXED else not torch.equal(out[0], out[1])
    assert deg(x.double(), generator=gen(0)).dtype == torch.float64
    assert deg(x[:0], generator=gen(0)).shape == (0, 3, 40, 36)


@pytest.mark.parametrize("name", DEGRADATIONS)
def test_rejects_images_that_are_not_b3hw(name):
    deg = create_degradation(name)
    with pytest.raises(ShapeError, match="4 dimensions"):
        deg(torch.rand(3, 16, 16))
    with pytest.raises(ShapeError, match="3 channels"):
        deg(torch.rand(1, 1, 16, 16))


def test_noise_sigma_on_a_flat_image_is_50_over_255():
    x = torch.full((1, 3, 128, 128), 0.5)
    out = create_degradation("noisy")(x, generator=gen(0))
    residual = out - x
    assert abs(float(residual.std()) - 50 / 255) < 0.006
    # 8-bit truncation as the official script: values are multiples of 1/255
    assert torch.allclose(out * 255, torch.round(out * 255), atol=1e-4)


def test_noise_is_clipped_and_configurable():
    dark = torch.full((1, 3, 64, 64), 0.02)
    out = create_degradation("noisy")(dark, generator=gen(1))
    assert out.min() == 0 and (out == 0).float().mean() > 0.3
    x = torch.full((1, 3, 128, 128), 0.5)
    low = create_degradation("noisy", sigma=15.0, quantize=False)(x, generator=gen(0))
    assert abs(float((low - x).std()) - 15 / 255) < 0.003


def test_low_light_is_darker_and_noisy():
    x = texture(64)
    out = create_degradation("low-light")(x, generator=gen(0))
    assert out.mean() < 0.5 * x.mean()
    flat = torch.full((1, 3, 64, 64), 0.6)
    dark = create_degradation("low-light")(flat, generator=gen(0))
    assert dark.std() > 0  # sensor noise on a flat field


def test_haze_lowers_contrast_and_lifts_the_mean():
    x = texture(96) * 0.6  # a darkish scene
    out = create_degradation("hazy")(x, generator=gen(0))
    assert out.mean() > x.mean() + 0.05
    # local contrast (detail) is attenuated by the transmission t < 1
    assert laplacian_energy(out) < 0.7 * laplacian_energy(x)
    # far (top) rows are hazier than near (bottom) rows with the default horizon weight
    assert laplacian_energy(out[..., :16, :]) < laplacian_energy(out[..., -16:, :])


def test_motion_blur_removes_high_frequencies_and_keeps_the_mean():
    x = texture(96)
    out = create_degradation("motion-blurry")(x, generator=gen(0))
    assert laplacian_energy(out) < 0.3 * laplacian_energy(x)
    assert abs(float(out.mean() - x.mean())) < 0.01


def test_motion_blur_kernel_is_normalised():
    from daclip_kit.degradations.base import Draw
    from daclip_kit.degradations.blur import trajectory_kernel

    k = trajectory_kernel(Draw(gen(0)), 21, 15.0, 0.3, 64, torch.zeros(1))
    assert k.shape == (21, 21) and abs(float(k.sum()) - 1) < 1e-5 and k.min() >= 0
    assert (k > 0).sum() > 10  # spread along a path, not a delta


def test_jpeg_is_a_real_codec_at_quality_10():
    x = texture(64)
    out = create_degradation("jpeg-compressed")(x, generator=gen(0))
    arr = (x[0].permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, format="JPEG", quality=10)
    ref = np.asarray(Image.open(io.BytesIO(buf.getvalue())).convert("RGB"), dtype=np.float32) / 255
    assert torch.allclose(out[0].permute(1, 2, 0), torch.from_numpy(ref), atol=1e-6)
    better = create_degradation("jpeg-compressed", quality=90)(x, generator=gen(0))
    assert (better - x).abs().mean() < (out - x).abs().mean()


def test_jpeg_shows_8x8_blocking_on_a_smooth_image():
    ramp = torch.linspace(0.2, 0.8, 64)
    x = (ramp.view(1, 1, 1, 64) * 0.5 + ramp.view(1, 1, 64, 1) * 0.5).repeat(1, 3, 1, 1)
    out = create_degradation("jpeg-compressed")(x, generator=gen(0))
    d = (out[..., :, 1:] - out[..., :, :-1]).abs().mean(dim=(0, 1, 2))  # per column step
    boundary = d[7::8].mean()
    inside = torch.cat([d[i::8] for i in range(7)]).mean()
    assert boundary > 1.5 * inside


def test_raindrops_change_local_regions_and_blur_them():
    x = texture(96)
    out = create_degradation("raindrop")(x, generator=gen(2))
    changed = (out - x).abs().amax(1) > 0.02
    frac = float(changed.float().mean())
    assert 0.01 < frac < 0.8
    assert laplacian_energy(out * changed) < laplacian_energy(x * changed)


def test_rain_streaks_brighten_and_follow_the_fall_direction():
    flat = torch.full((1, 3, 96, 96), 0.3)
    rain = create_degradation("rainy", angle=(0.0, 0.0), spread=0.0, veil=(0.0, 0.0))
    out = rain(flat, generator=gen(0))
    assert out.mean() > flat.mean()
    assert torch.all(out >= flat - 1e-6)  # screen blend only brightens
    gx = (out[..., :, 1:] - out[..., :, :-1]).abs().mean()
    gy = (out[..., 1:, :] - out[..., :-1, :]).abs().mean()
    assert gx > 2 * gy  # vertical streaks: strong horizontal gradients


def test_shadows_only_darken_soft_edged_regions():
    x = texture(96)
    deg = create_degradation("shadowed", darkness=(0.3, 0.3))
    out = deg(x, generator=gen(0))
    ratio = (out / x).mean(1)
    assert torch.all(ratio <= 1 + 1e-5)
    assert (ratio < 0.5).float().mean() > 0.02  # a real shadow
    assert (ratio > 0.999).float().mean() > 0.1  # lit parts untouched
    assert ((ratio > 0.45) & (ratio < 0.95)).any()  # penumbra


def test_snow_adds_bright_flakes():
    x = texture(96) * 0.5
    out = create_degradation("snowy")(x, generator=gen(0))
    assert out.mean() > x.mean()
    assert (out.amin(1) > 0.75).float().mean() > (x.amin(1) > 0.75).float().mean() + 0.005


def test_inpainting_holes_are_white_thin_strokes():
    x = torch.full((1, 3, 96, 96), 0.2)
    out = create_degradation("uncompleted")(x, generator=gen(0))
    hole = (out == 1.0).all(1)
    keep = (out - x).abs().amax(1) == 0
    assert torch.all(hole | keep)  # every pixel is either untouched or pure white
    assert 0.08 < float(hole.float().mean()) < 0.5
    # thin: most hole pixels have a kept pixel within 3 px
    near_keep = torch.nn.functional.max_pool2d(keep.float()[None], 7, 1, 3)[0] > 0
    assert float((near_keep & hole).sum()) > 0.8 * float(hole.sum())


def test_inpainting_masks_from_files_follow_the_official_convention(tmp_path):
    mask = np.full((32, 32, 3), 255, np.uint8)
    mask[:, :16] = 0  # black = hole
    Image.fromarray(mask).save(tmp_path / "000000.png")
    x = torch.full((1, 3, 64, 64), 0.3)
    out = create_degradation("uncompleted", mask_dir=str(tmp_path))(x, generator=gen(0))
    assert torch.all(out[..., :, :30] == 1.0)
    assert torch.allclose(out[..., :, 34:], x[..., :, 34:])


def test_invalid_configs_are_reported():
    from daclip_kit import ConfigError

    with pytest.raises(ConfigError, match="low > high"):
        create_degradation("hazy", beta=(2.0, 1.0))
    with pytest.raises(ConfigError, match="quality"):
        create_degradation("jpeg-compressed", quality=0)
    with pytest.raises(ConfigError, match="beta"):
        create_degradation("hazy", bta=(1.0, 2.0))


def test_contract_of_plugin_authors_holds_for_built_ins():
    from daclip_kit import testing

    for name in DEGRADATIONS:
        testing.check_degradation_contract(name)
