"""Built-in plugin: registers daclip-kit embedders through the public hooks (no torch import)."""

from __future__ import annotations

from ..hookspecs import hookimpl  # noqa: F401
