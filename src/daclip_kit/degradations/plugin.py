"""Built-in plugin: registers daclip-kit degradations through the public hooks (no torch import)."""

from __future__ import annotations

from ..hookspecs import hookimpl  # noqa: F401
