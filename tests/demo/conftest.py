"""Fixtures of the demo tests: settings with the tiny models (``tiny_models``, tests/conftest.py) and
a small noisy photo."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest


@pytest.fixture
def settings(tiny_models):
    """Demo settings with the tiny models on the CPU."""
    from daclip_kit.demo.core import DemoSettings

    return DemoSettings(weights=tiny_models["weights"], embedder_weights=tiny_models["daclip"], device="cpu")


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


@pytest.fixture(autouse=True)
def gradio_temp_dir(tmp_path, monkeypatch):
    """Gradio's upload and cache folder of each test in the test's own folder; ``app.start`` sets
    ``GRADIO_TEMP_DIR`` for the process, and this puts the previous value back afterwards."""
    monkeypatch.setenv("GRADIO_TEMP_DIR", str(tmp_path / "gradio-default"))
