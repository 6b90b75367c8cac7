"""Stand-ins for installed plugins: fake distributions, entry points and plugin modules, so the
plugin host can be tested without installing anything (used with the ``fake_eps`` fixture)."""

from __future__ import annotations

import sys
import types


class FakeDist:
    """What ``importlib.metadata`` says about a distribution: its name and version."""

    def __init__(self, name: str, version: str):
        self.metadata = {"Name": name}
        self.version = version


class FakeEntryPoint:
    """An entry point of group ``daclip_kit``; ``load()`` imports ``value`` (a module name) or
    raises ``error``."""

    def __init__(self, name: str, value: str, dist=("fake-dist", "9.9"), error: BaseException | None = None):
        self.name = name
        self.value = value
        self.dist = FakeDist(*dist)
        self._error = error

    def load(self):
        if self._error is not None:
            raise self._error
        return __import__(self.value, fromlist=["_"])


def install_module(monkeypatch, name: str, **attrs) -> types.ModuleType:
    """Put a module called ``name`` with ``attrs`` into ``sys.modules`` for the test."""
    mod = types.ModuleType(name)
    for key, value in attrs.items():
        setattr(mod, key, value)
    monkeypatch.setitem(sys.modules, name, mod)
    return mod
