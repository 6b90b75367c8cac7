"""One rich console for tables and progress (stdout) and one for messages (stderr)."""

from __future__ import annotations

import functools
import json
import math
import sys
from typing import Any, Literal

from ..errors import DaclipKitError

#: The width of stdout when it is not a terminal and ``$COLUMNS`` is not set: wide enough that no
#: table cell, path or command is ever wrapped in a pipe or a file (tables size to their content).
PIPE_WIDTH = 1 << 14


@functools.cache
def stdout():
    """The console of tables and results: the terminal's width, ``$COLUMNS`` when set, and otherwise,
    in a pipe or a file, :data:`PIPE_WIDTH` (nothing is hard-wrapped there)."""
    from rich.console import Console, ConsoleDimensions

    class _Stdout(Console):
        def _pipe_size(self) -> ConsoleDimensions:
            size = Console.size.fget(self)  # type: ignore[attr-defined]
            # $COLUMNS, set now or when the console was made (rich then took it as _width), is honoured
            if self._width is None and not self.is_terminal and not self._environ.get("COLUMNS"):
                return ConsoleDimensions(PIPE_WIDTH, size.height)
            return size

        size = property(_pipe_size, Console.size.fset)  # type: ignore[attr-defined]

    return _Stdout(highlight=False, soft_wrap=False)


@functools.cache
def stderr():
    from rich.console import Console

    return Console(stderr=True, highlight=False, soft_wrap=True)


def _nonfinite_path(data: Any, path: str = "") -> str | None:
    """Where in ``data`` the first NaN or infinite float sits (``"[0].top_k[1].prob"``), or ``None``."""
    if isinstance(data, float):
        return None if math.isfinite(data) else (path or "the value")
    if isinstance(data, dict):
        for key, value in data.items():
            found = _nonfinite_path(value, f"{path}.{key}" if path else str(key))
            if found:
                return found
    elif isinstance(data, (list, tuple)):
        for i, value in enumerate(data):
            found = _nonfinite_path(value, f"{path}[{i}]")
            if found:
                return found
    return None


def _nonfinite_to_null(data: Any) -> Any:
    if isinstance(data, float):
        return data if math.isfinite(data) else None
    if isinstance(data, dict):
        return {k: _nonfinite_to_null(v) for k, v in data.items()}
    if isinstance(data, (list, tuple)):
        return [_nonfinite_to_null(v) for v in data]
    return data


def print_json(data: Any, *, nonfinite: Literal["error", "null"] = "error") -> None:
    """Write ``data`` as JSON to stdout (no colour, machine-readable), always valid JSON.

    Args:
        data: dicts, lists, strings, numbers (anything else is written as its ``str``).
        nonfinite: what a NaN or infinite float does: ``"error"`` raises (nothing is written),
            ``"null"`` writes ``null`` in its place (the caller has said so on stderr).

    Raises:
        DaclipKitError: ``nonfinite="error"`` and ``data`` holds NaN or Infinity, which JSON cannot
            express; the message names where.
    """
    where = _nonfinite_path(data)
    if where is not None:
        if nonfinite != "null":
            raise DaclipKitError(f"The JSON output would hold a NaN or infinite number at {where}, which is not "
                                 "valid JSON; nothing was printed. The computation produced it: check the inputs "
                                 "and weights (run without --json to see the values).")
        data = _nonfinite_to_null(data)
    sys.stdout.write(json.dumps(data, indent=2, default=str, allow_nan=False) + "\n")


def error(message: str) -> None:
    from rich.markup import escape

    stderr().print(f"[bold red]error:[/] {escape(message)}")


def warning(message: str) -> None:
    from rich.markup import escape

    stderr().print(f"[yellow]warning:[/] {escape(message)}")


def progress_bar(*, disable: bool = False, remaining: bool = False, status: bool = False):
    """The CLI's progress bar on stderr (description, bar, done/total, elapsed; optionally the time
    remaining and a ``status`` field), cleared when done; ``disable`` for JSON output or quiet ranks."""
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    columns = [TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn()]
    if remaining:
        columns.append(TimeRemainingColumn())
    if status:
        columns.append(TextColumn("{task.fields[status]}"))
    return Progress(*columns, console=stderr(), transient=True, disable=disable)
