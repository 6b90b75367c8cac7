"""Lazy package exports: names resolved from submodules on first attribute access."""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from typing import Any


def lazy_exports(package: str, exports: Mapping[str, str], namespace: dict[str, Any]) -> Callable[[str], Any]:
    """Return a module ``__getattr__`` for ``package`` that imports ``exports[name]`` on demand.

    ``exports`` maps a public name to its module, absolute (``"daclip_kit.factory"``) or relative
    to ``package`` (``"peak_snr"``). The resolved value is cached in ``namespace`` (the package's
    ``globals()``), so each name is imported once.
    """

    def __getattr__(name: str) -> Any:
        module = exports.get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        full = module if module.startswith("daclip_kit") else f"{package}.{module}"
        value = getattr(importlib.import_module(full), name)
        namespace[name] = value
        return value

    return __getattr__
