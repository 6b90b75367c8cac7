"""Tiny local models for the demo tests: a random tiny DA-CLIP and a tiny IR-SDE U-Net, written as
native folders (no download, a few MB)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest


@pytest.fixture(scope="session")
def tiny_models(tmp_path_factory) -> dict[str, Path]:
    """``{"weights": U-Net folder, "daclip": DA-CLIP folder}``."""
    from daclip_kit.demo.tiny import write_tiny_models

    unet, daclip = write_tiny_models(tmp_path_factory.mktemp("demo-models"))
    return {"weights": unet, "daclip": daclip}


@pytest.fixture(scope="session")
def photo(tmp_path_factory) -> Path:
    """A small noisy RGB PNG, 40 wide and 28 high."""
    from PIL import Image

    path = tmp_path_factory.mktemp("demo-photo") / "noisy-photo.png"
    rng = np.random.default_rng(7)
    ramp = np.linspace(0, 255, 40)[None, :, None] * np.ones((28, 1, 3))
    noisy = np.clip(ramp + rng.normal(0, 40, ramp.shape), 0, 255).astype(np.uint8)
    Image.fromarray(noisy).save(path)
    return path
