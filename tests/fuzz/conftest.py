"""Fixtures of the fuzz cases."""

from __future__ import annotations

import pytest


@pytest.fixture
def fake_eps(monkeypatch):
    """The entry points the plugin host sees: append ``FakeEntryPoint`` objects to this list."""
    from daclip_kit import plugins

    eps: list = []

    def entry_points(group):
        assert group == "daclip_kit"
        return list(eps)

    monkeypatch.setattr(plugins.importlib_metadata, "entry_points", entry_points)
    return eps


@pytest.fixture
def no_real_allocation(monkeypatch):
    """Fail the test if a network built on the meta device is ever allocated (``to_empty``)."""
    import torch

    calls: list = []

    def refuse(self, *args, **kwargs):
        calls.append(type(self).__name__)
        raise AssertionError(f"{type(self).__name__} was allocated; the guard should have refused it first")

    monkeypatch.setattr(torch.nn.Module, "to_empty", refuse)
    return calls
