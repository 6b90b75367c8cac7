"""Name -> spec registries, built from the plugin hooks.

A registry holds the specs of one kind together with the plugin that registered each. Names are
unique: a second registration of a name is a :class:`DuplicateComponentError` that names both
plugins, never a silent overwrite. The plugin host (:mod:`daclip_kit.plugins`) adds specs in a fixed
order (built-ins first) and turns that error into a failure of the later plugin, so the first
registration wins and nothing is lost silently.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from .errors import DuplicateComponentError, UnknownComponentError

S = TypeVar("S")


@dataclass(frozen=True)
class Entry(Generic[S]):
    """A registered spec and where it came from."""

    spec: S
    plugin: str
    distribution: str = ""
    version: str = ""

    def provider(self) -> str:
        dist = f"{self.distribution} {self.version}".strip()
        return f"plugin {self.plugin!r}" + (f" ({dist})" if dist else "")


def _natural_key(name: str) -> list[tuple[int, int, str]]:
    return [(0, int(part), "") if part.isdigit() else (1, 0, part) for part in re.split(r"(\d+)", name) if part]


class Registry(Generic[S]):
    """Specs of one kind, keyed by ``spec.name``.

    Args:
        kind: singular kind name used in messages (``"backbone"``).
        list_command: the command that lists the names, quoted in errors (``"daclip-kit ls backbones"``).
    """

    def __init__(self, kind: str, list_command: str = ""):
        self.kind = kind
        self.list_command = list_command
        self._entries: dict[str, Entry[S]] = {}
        self._frozen = False

    def add(self, spec: S, *, plugin: str, distribution: str = "", version: str = "") -> None:
        """Register ``spec``; raise :class:`DuplicateComponentError` if its name is taken."""
        if self._frozen:
            raise RuntimeError(f"The {self.kind} registry is frozen; register through a plugin hook.")
        name = getattr(spec, "name", None)
        if not isinstance(name, str) or not name:
            raise TypeError(f"{plugin}: a {self.kind} spec needs a non-empty string 'name', got {spec!r}")
        new = Entry(spec, plugin, distribution, version)
        old = self._entries.get(name)
        if old is not None:
            raise DuplicateComponentError(
                f"{self.kind} {name!r} is registered twice: by {old.provider()} and by "
                f"{new.provider()}. Uninstall or block one of them (DACLIP_KIT_PLUGINS=... "
                f"allows only the listed plugins)."
            )
        self._entries[name] = new

    def freeze(self) -> Registry[S]:
        self._frozen = True
        return self

    def get(self, name: str) -> S:
        """Return the spec called ``name`` or raise :class:`UnknownComponentError`."""
        return self.entry(name).spec

    def entry(self, name: str) -> Entry[S]:
        try:
            return self._entries[name]
        except KeyError:
            raise UnknownComponentError(self.kind, name, self._entries, list_command=self.list_command) from None

    def names(self) -> list[str]:
        """Registered names in natural order ("2" before "10")."""
        return sorted(self._entries, key=_natural_key)

    def entries(self) -> list[Entry[S]]:
        return [self._entries[n] for n in self.names()]

    def __contains__(self, name: Any) -> bool:
        return name in self._entries

    def __iter__(self) -> Iterator[S]:
        return (e.spec for e in self.entries())

    def __len__(self) -> int:
        return len(self._entries)
