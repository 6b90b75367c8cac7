"""Lazily exported names never share a name with a submodule of their package.

Once a submodule ``pkg.x`` is imported, Python sets the attribute ``pkg.x`` to that module, so a lazy
function ``x`` defined in it (``from pkg import x``) would silently become the module, depending on
what was imported before.
"""

from __future__ import annotations

import importlib
import pkgutil

import daclip_kit


def _packages():
    yield daclip_kit
    for info in pkgutil.walk_packages(daclip_kit.__path__, "daclip_kit."):
        if info.ispkg:
            yield importlib.import_module(info.name)


def test_no_lazy_export_is_named_like_a_submodule():
    clashes = []
    for package in _packages():
        lazy = getattr(package, "_LAZY", None)
        if not lazy:
            continue
        submodules = {m.name for m in pkgutil.iter_modules(package.__path__)}
        clashes += [f"{package.__name__}.{name}" for name in lazy if name in submodules]
    assert not clashes, f"lazy exports shadowed by submodules of the same name: {clashes}"


def test_a_lazy_function_stays_a_function_after_its_module_is_imported():
    import daclip_kit.metrics.naturalness  # noqa: F401  (the module that defines niqe)
    from daclip_kit.metrics import niqe

    assert callable(niqe) and niqe.__module__ == "daclip_kit.metrics.naturalness"
