"""Every ``>>>`` example in the package's docstrings runs and prints what it says."""

from __future__ import annotations

import doctest
import importlib
import importlib.util
import pkgutil
from pathlib import Path

import pytest

import daclip_kit


def _runnable(example: doctest.Example) -> bool:
    return not example.options.get(doctest.SKIP, False)


def _modules_with_examples() -> list[str]:
    """Modules with at least one example that is not marked ``+SKIP`` (those need official weights)."""
    names = []
    finder = doctest.DocTestFinder()
    for info in pkgutil.walk_packages(daclip_kit.__path__, "daclip_kit."):
        origin = importlib.util.find_spec(info.name).origin
        if not (origin and origin.endswith(".py") and ">>>" in Path(origin).read_text(encoding="utf-8")):
            continue
        tests = finder.find(importlib.import_module(info.name))
        if any(_runnable(e) for t in tests for e in t.examples):
            names.append(info.name)
    return names


MODULES = _modules_with_examples()


def test_the_package_has_examples():
    assert len(MODULES) >= 10


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name, one_thread):
    module = importlib.import_module(name)
    result = doctest.testmod(module, report=False, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    assert result.attempted > 0, f"{name}: its '>>>' lines are not doctest examples"
    assert result.failed == 0, (f"{name}: {result.failed} of {result.attempted} examples failed "
                                "(run python -m doctest -v)")
