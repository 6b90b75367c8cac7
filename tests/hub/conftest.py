"""The ``hub`` fixture of the Hub tests: :class:`fake_hub.FakeHub` served on 127.0.0.1."""

from __future__ import annotations

import pytest
from fake_hub import FakeHub


@pytest.fixture
def hub(monkeypatch, tmp_path):
    """The fake Hub, with HF_ENDPOINT at it, a token, xet off and offline mode off for this test."""
    from huggingface_hub import constants

    server = FakeHub().start()
    monkeypatch.setenv("HF_ENDPOINT", server.url)
    monkeypatch.setenv("HF_TOKEN", "hf_test_write_token")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf-home"))
    monkeypatch.setenv("DACLIP_KIT_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.delenv("TRANSFORMERS_OFFLINE", raising=False)
    # huggingface_hub reads these once, at import
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setattr(constants, "HF_HUB_DISABLE_XET", True)
    yield server
    server.stop()
