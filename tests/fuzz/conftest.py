"""Fixtures of the fuzz cases."""

from __future__ import annotations

import pytest


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
