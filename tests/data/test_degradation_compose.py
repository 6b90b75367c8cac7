"""Composed degradations: physical order, multi-label annotation, determinism, exclusions."""

from __future__ import annotations

import pytest
import torch

from daclip_kit import ConfigError, create_degradation
from daclip_kit.degradations.composition import (
    PHYSICAL_ORDER,
    RandomComposition,
    compose,
    degradation_text,
    folder_name,
    parse_labels,
    physical_order,
)


def test_physical_order_puts_scene_before_optics_before_sensor_before_storage():
    assert physical_order(["jpeg-compressed", "noisy", "hazy"]) == ["hazy", "noisy", "jpeg-compressed"]
    assert physical_order(["uncompleted", "motion-blurry", "raindrop"]) == ["raindrop", "motion-blurry", "uncompleted"]
    assert physical_order(["my-plugin-fog", "jpeg-compressed", "shadowed"]) == [
        "shadowed", "my-plugin-fog", "jpeg-compressed"]
    assert set(PHYSICAL_ORDER) == set(__import__("daclip_kit").DEGRADATIONS)


def test_label_text_and_folder_round_trip():
    labels = ["hazy", "noisy", "jpeg-compressed"]
    assert degradation_text(labels) == "hazy, noisy, jpeg-compressed"
    assert folder_name(labels) == "hazy+noisy+jpeg-compressed"
    assert parse_labels(folder_name(labels)) == labels
    assert parse_labels(degradation_text(labels)) == labels
    assert parse_labels("rainy") == ["rainy"]


def test_compose_applies_in_physical_order_whatever_the_given_order():
    x = torch.rand(2, 3, 48, 48, generator=torch.Generator().manual_seed(0)) * 0.8 + 0.1
    a, la = compose(x, ["noisy", "hazy"], torch.Generator().manual_seed(1))
    b, lb = compose(x, ["hazy", "noisy"], torch.Generator().manual_seed(1))
    assert la == lb == ["hazy", "noisy"]
    assert torch.equal(a, b)
    # same as applying by hand, haze first
    g = torch.Generator().manual_seed(1)
    by_hand = create_degradation("noisy")(create_degradation("hazy")(x, generator=g), generator=g)
    assert torch.equal(a, by_hand)


def test_jpeg_after_noise_keeps_8bit_jpeg_structure():
    x = torch.full((1, 3, 64, 64), 0.5)
    out, labels = compose(x, ["jpeg-compressed", "noisy"], torch.Generator().manual_seed(0))
    assert labels == ["noisy", "jpeg-compressed"]
    # JPEG last smooths the noise: residual below sigma 50/255
    assert float((out - x).std()) < 0.8 * 50 / 255


def test_random_composition_draws_2_to_3_distinct_labels_and_respects_exclusions():
    rc = RandomComposition()
    g = torch.Generator().manual_seed(0)
    sizes = set()
    for _ in range(200):
        labels = rc.sample_labels(g)
        sizes.add(len(labels))
        assert len(set(labels)) == len(labels)
        assert not {"rainy", "snowy"} <= set(labels)
        assert labels == physical_order(labels)
    assert sizes == {2, 3}


def test_random_composition_is_deterministic_and_per_image():
    x = torch.rand(3, 3, 40, 40, generator=torch.Generator().manual_seed(0))
    rc = RandomComposition(pool=("hazy", "noisy", "low-light", "shadowed"))
    a, la = rc(x, torch.Generator().manual_seed(5))
    b, lb = RandomComposition(pool=("hazy", "noisy", "low-light", "shadowed"))(x, torch.Generator().manual_seed(5))
    assert torch.equal(a, b) and la == lb
    assert len(la) == 3 and all(2 <= len(ls) <= 3 for ls in la)
    assert a.shape == x.shape and a.min() >= 0 and a.max() <= 1


def test_bad_composition_settings_are_errors():
    with pytest.raises(ConfigError):
        RandomComposition(count=(3, 2))
    with pytest.raises(ConfigError):
        RandomComposition(pool=("hazy",), count=(2, 3))
    with pytest.raises(ConfigError):
        compose(torch.rand(1, 3, 8, 8), [])
