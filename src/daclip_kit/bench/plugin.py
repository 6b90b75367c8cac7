"""Built-in plugin: registers the paper's benchmark tables and the ``bench`` verb (no torch import)."""

from __future__ import annotations

from ..hookspecs import hookimpl
from ..specs import CommandSpec


@hookimpl
def daclip_kit_register_tables():
    from .tables import BUILTIN_TABLES

    return list(BUILTIN_TABLES)


@hookimpl
def daclip_kit_register_commands():
    return [CommandSpec(name="bench", target="daclip_kit.cli.bench:configure",
                        summary="reproduce the paper's tables 2-12 (ours / paper / delta)")]
