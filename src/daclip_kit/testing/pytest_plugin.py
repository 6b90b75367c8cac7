"""pytest plugin shipped with daclip-kit (entry point ``pytest11``): fixtures for plugin authors.

Import-light: torch is imported only when a fixture that needs it is used.
"""

from __future__ import annotations

import pytest

from daclip_kit import plugins


@pytest.fixture
def dk_plugin_host(monkeypatch):
    """A freshly built :class:`daclip_kit.plugins.PluginHost` (cache cleared before and after)."""

    plugins.reset()
    yield plugins.get_host()
    plugins.reset()


@pytest.fixture
def tiny_image():
    """``(2, 3, 37, 45)`` float RGB in [0, 1]: odd sizes that are multiples of nothing useful."""
    import torch

    g = torch.Generator().manual_seed(0)
    return torch.rand(2, 3, 37, 45, generator=g)
