"""Exception hierarchy of daclip-kit.

Every error says what was expected, what was found and what to do. All derive from
:class:`DaclipKitError`, so callers can catch the toolkit's errors in one place.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable


class DaclipKitError(Exception):
    """Base class of every error raised by daclip-kit."""


class UnknownComponentError(DaclipKitError, KeyError):
    """A component name is not registered.

    The message names the kind, the unknown name, close matches and the available names.
    """

    def __init__(self, kind: str, name: str, available: Iterable[str], *, list_command: str = ""):
        self.kind = kind
        self.name = name
        self.available = sorted(available)
        self.list_command = list_command
        super().__init__(self._message())

    def _message(self) -> str:
        shown = ", ".join(self.available[:40]) or "(none registered)"
        if len(self.available) > 40:
            shown += f", ... ({len(self.available) - 40} more)"
        listing = f" Run `{self.list_command}` to list them." if self.list_command else ""
        return (f"Unknown {self.kind} {self.name!r}.{suggest(self.name, self.available)} "
                f"Available {self.kind}s: {shown}.{listing}")

    def __str__(self) -> str:  # KeyError would otherwise quote the message
        return str(self.args[0])


class DuplicateComponentError(DaclipKitError):
    """Two plugins register the same component name."""


class PluginLoadError(DaclipKitError):
    """A plugin could not be imported or registered.

    Attributes:
        entry_point: ``name = value`` of the entry point (or the built-in module name).
        distribution: the distribution that declares it, with its version.
        kind: the registry kind (``"backbones"``) whose hook or names failed; ``""`` for a plugin
            that failed to load.
    """

    def __init__(self, message: str, *, entry_point: str = "", distribution: str = "", version: str = "",
                 kind: str = ""):
        self.entry_point = entry_point
        self.distribution = distribution
        self.version = version
        self.kind = kind
        super().__init__(message)


class ConfigError(DaclipKitError, ValueError):
    """A configuration value or key is invalid."""


class ShapeError(DaclipKitError, ValueError):
    """A tensor does not have the expected shape, dtype or range."""


class CheckpointError(DaclipKitError):
    """A checkpoint file cannot be read or does not match the model."""


class WeightsNotFoundError(DaclipKitError, FileNotFoundError):
    """Named weights are not available locally and cannot be downloaded."""


class InputError(DaclipKitError):
    """A user input (image file, folder, data set) is missing or unreadable."""


class NonFiniteError(DaclipKitError):
    """A computation produced NaN or infinite values (broken weights, an overflow in low precision)."""


class ProcessFailedError(DaclipKitError):
    """Another process of a torchrun job failed; the message is its error."""


def suggest(name: str, choices: Iterable[str]) -> str:
    """Return ``" Did you mean: x?"`` for the closest choice, or ``""``."""
    close = difflib.get_close_matches(name, list(choices), n=3, cutoff=0.5)
    return f" Did you mean: {', '.join(close)}?" if close else ""


class ExportError(DaclipKitError):
    """A network could not be exported (an operator the chosen format cannot express)."""
