"""Built-in plugin: registers daclip-kit bench through the public hooks (no torch import)."""

from __future__ import annotations

from ..hookspecs import hookimpl  # noqa: F401
