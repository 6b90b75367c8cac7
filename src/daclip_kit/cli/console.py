"""One rich console for tables and progress (stdout) and one for messages (stderr)."""

from __future__ import annotations

import functools
import json
import sys
from typing import Any


@functools.cache
def stdout():
    from rich.console import Console

    return Console(highlight=False, soft_wrap=False)


@functools.cache
def stderr():
    from rich.console import Console

    return Console(stderr=True, highlight=False, soft_wrap=True)


def print_json(data: Any) -> None:
    """Write ``data`` as JSON to stdout (no colour, machine-readable)."""
    sys.stdout.write(json.dumps(data, indent=2, default=str) + "\n")


def error(message: str) -> None:
    from rich.markup import escape

    stderr().print(f"[bold red]error:[/] {escape(message)}")
