"""How a message names a setting the user can change: as the running verb's flag, or as a keyword.

Library code reached from several verbs (and from Python) does not write flags into its messages;
it names the setting with :func:`option`::

    raise ConfigError(f"... raise {option('max_memory', 'BYTES')} or use {option('precision', 'bf16')}.")

Under ``daclip-kit restore``, which accepts ``--max-memory`` and ``--precision``, this reads
``raise --max-memory BYTES or use --precision bf16``. From Python, or under a verb that has no such
flag (``adapt`` runs the trainers and the pipelines but has no ``--precision`` of its own), it reads
``raise max_memory=BYTES or use precision=bf16``: the keyword of the function or config that was
called, never a flag the verb would refuse.

The CLI sets the flags of the verb it runs (:func:`verb_flags`) before calling it; that holds for
the whole process (the demo's request threads included) until the verb returns.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Iterator

_flags: frozenset[str] = frozenset()


def option(name: str, value: str = "", *, python: str | None = None) -> str:
    """The setting ``name`` as the reader can change it.

    Args:
        name: the flag without its dashes, in keyword form (``"max_memory"`` for ``--max-memory``).
        value: what to give it (``"BYTES"``, ``"bf16"``); empty for a switch (``--overwrite``).
        python: how to say it when the running verb has no such flag, when the keyword differs from
            ``name`` (default ``name=value``, ``name=True`` for a switch).

    Returns:
        ``"--max-memory BYTES"`` when the running verb accepts ``--max-memory``, else the keyword form.
    """
    flag = "--" + name.replace("_", "-")
    if flag in _flags:
        return f"{flag} {value}".rstrip()
    if python is not None:
        return python
    return f"{name}={value or True}"


@contextlib.contextmanager
def verb_flags(flags: Iterable[str]) -> Iterator[None]:
    """Within the block, :func:`option` spells the settings whose flags are in ``flags``
    (``"--max-memory"``, ...) as those flags. Restores the previous flags on exit."""
    global _flags
    before, _flags = _flags, frozenset(flags)
    try:
        yield
    finally:
        _flags = before
