"""Typed configuration: dataclasses are the source of truth.

* :func:`from_dict` builds a (possibly nested) dataclass from a mapping and rejects unknown keys
  with a suggestion.
* :func:`apply_overrides` applies ``a.b=value`` strings, coercing ``value`` by the field's type
  (bool, int, float, str, tuples/lists of those, ``Optional``, ``Literal``). Nothing is evaluated.
* :func:`load_toml` reads a TOML run file into a dataclass.
* :class:`Component` is a section naming a registered component plus that component's own
  settings (``[network] name = "irsde-unet"``, ``nf = 64``); the settings are checked against the
  component's config when the run is validated
  (:func:`daclip_kit.components.check_component`).
"""

from __future__ import annotations

import dataclasses
import sys
import types
import typing
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from .errors import ConfigError, suggest

if TYPE_CHECKING:
    from _typeshed import DataclassInstance

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

#: A config dataclass.
T = TypeVar("T", bound="DataclassInstance")


@dataclasses.dataclass(frozen=True)
class Component:
    """A registered component and its settings: one TOML table, ``name`` plus the component's keys.

    Example (TOML)::

        [network]
        name = "irsde-unet"
        nf = 32
        ch_mult = [1, 1, 1, 1]

    Attributes:
        name: registry name (``daclip-kit ls <kind>``).
        options: keyword config of the component; values may still be strings from ``--set``
            until :func:`daclip_kit.components.check_component` types them.
    """

    name: str
    options: Mapping[str, Any] = dataclasses.field(default_factory=dict)

    def merged(self, data: Mapping[str, Any], where: str) -> Component:
        """This section updated by a TOML table / dict: a new ``name`` starts from no options."""
        data = dict(data)
        name = data.pop("name", self.name)
        if not isinstance(name, str) or not name:
            raise ConfigError(f"{where}.name must be a registered name (a string), got {name!r}.")
        base = dict(self.options) if name == self.name else {}
        return Component(name, {**base, **data})

    def with_option(self, key: str, value: Any) -> Component:
        """``--set section.key=value``; ``key == "name"`` switches component (options reset)."""
        if key == "name":
            return Component(str(value), {}) if value != self.name else self
        return Component(self.name, {**dict(self.options), key: value})


_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}


def _hints(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def _is_dataclass_type(tp: Any) -> bool:
    return isinstance(tp, type) and dataclasses.is_dataclass(tp)


def _coerce(value: Any, tp: Any, where: str) -> Any:
    """Convert ``value`` (from TOML/JSON or a CLI string) to type ``tp``."""
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if tp is Any:
        return value
    if origin in (typing.Union, types.UnionType):
        if type(None) in args and (value is None or (isinstance(value, str) and value.lower() in ("none", "null"))):
            return None
        errors = []
        for arg in args:
            if arg is type(None):
                continue
            try:
                return _coerce(value, arg, where)
            except ConfigError as exc:
                errors.append(str(exc))
        raise ConfigError(f"{where}: {value!r} matches none of {tp}: {'; '.join(errors)}")
    if origin is typing.Literal:
        for choice in args:
            if value == choice or (isinstance(value, str) and str(choice) == value):
                return choice
        raise ConfigError(f"{where}: {value!r} is not one of {list(args)}.{suggest(str(value), map(str, args))}")
    if origin in (tuple, list, Sequence) or tp in (tuple, list):
        if isinstance(value, str):
            value = [v.strip() for v in value.strip("[]()").split(",") if v.strip()]
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{where}: expected a list, got {value!r}")
        if origin is tuple and len(args) == 2 and args[1] is Ellipsis:
            item_types = [args[0]] * len(value)
        elif origin is tuple and args:
            if len(args) != len(value):
                raise ConfigError(f"{where}: expected {len(args)} items, got {len(value)}")
            item_types = list(args)
        else:
            item_types = [args[0] if args else Any] * len(value)
        items = [_coerce(v, t, f"{where}[{i}]") for i, (v, t) in enumerate(zip(value, item_types, strict=True))]
        return tuple(items) if (origin is tuple or tp is tuple) else items
    if origin in (dict, Mapping) or tp is dict:
        if not isinstance(value, Mapping):
            raise ConfigError(f"{where}: expected a table/mapping, got {value!r}")
        return dict(value)
    if tp is Component:
        if isinstance(value, Component):
            return value
        if not isinstance(value, Mapping):
            raise ConfigError(f"{where}: expected a table with 'name' and settings, got {value!r}")
        return Component("").merged(value, where)
    if _is_dataclass_type(tp):
        if isinstance(value, tp):
            return value
        if not isinstance(value, Mapping):
            raise ConfigError(f"{where}: expected a table for {tp.__name__}, got {value!r}")
        return from_dict(tp, value, where=where)
    if tp is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in _TRUE | _FALSE:
            return value.lower() in _TRUE
        if isinstance(value, int) and value in (0, 1):
            return bool(value)
        raise ConfigError(f"{where}: expected true/false, got {value!r}")
    if tp is int:
        if isinstance(value, bool):
            raise ConfigError(f"{where}: expected an integer, got {value!r}")
        if isinstance(value, int):
            return value
        if isinstance(value, float) and value.is_integer():
            return int(value)
        if isinstance(value, str):
            try:
                return int(value.replace("_", ""))
            except ValueError:
                pass
        raise ConfigError(f"{where}: expected an integer, got {value!r}")
    if tp is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        if isinstance(value, str):
            try:
                return float(value)
            except ValueError:
                pass
        raise ConfigError(f"{where}: expected a number, got {value!r}")
    if tp is str:
        if isinstance(value, str):
            return value
        raise ConfigError(f"{where}: expected a string, got {value!r}")
    if tp is Path:
        return Path(value)
    return value


def coerce_value(value: Any, tp: Any, where: str) -> Any:
    """Convert ``value`` (a TOML/JSON value or a CLI string) to type ``tp`` as config fields are.

    Raises:
        ConfigError: naming ``where`` and the expected type.
    """
    return _coerce(value, tp, where)


def from_dict(cls: type[T], data: Mapping[str, Any] | None = None, *, where: str = "") -> T:
    """Build dataclass ``cls`` from ``data``; unknown keys raise :class:`ConfigError`.

    Example:
        >>> from dataclasses import dataclass
        >>> @dataclass(frozen=True)
        ... class C:
        ...     width: int = 64
        >>> from_dict(C, {"width": "32"})
        C(width=32)
    """
    data = dict(data or {})
    hints = _hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls) if f.init}
    unknown = [k for k in data if k not in fields]
    if unknown:
        key = unknown[0]
        raise ConfigError(
            f"Unknown config key {(where + '.' if where else '') + key!r} for {cls.__name__}."
            f"{suggest(key, fields)} Valid keys: {', '.join(sorted(fields))}."
        )
    kwargs = {}
    for k, v in data.items():
        name = f"{where + '.' if where else ''}{k}"
        default = _field_default(fields[k])
        if hints[k] is Component and isinstance(default, Component) and isinstance(v, Mapping):
            kwargs[k] = default.merged(v, name)
        else:
            kwargs[k] = _coerce(v, hints[k], name)
    try:
        return cls(**kwargs)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"Invalid {cls.__name__} config: {exc}") from exc


def _field_default(f: dataclasses.Field) -> Any:
    if f.default is not dataclasses.MISSING:
        return f.default
    if f.default_factory is not dataclasses.MISSING:
        return f.default_factory()
    return None


def to_dict(obj: Any) -> dict[str, Any]:
    """Dataclass -> plain dict of JSON/TOML-friendly values (tuples become lists; a
    :class:`Component` becomes its flat table)."""

    def conv(v: Any) -> Any:
        if isinstance(v, Component):
            return {"name": v.name, **{k: conv(x) for k, x in v.options.items()}}
        if dataclasses.is_dataclass(v) and not isinstance(v, type):
            return {f.name: conv(getattr(v, f.name)) for f in dataclasses.fields(v)}
        if isinstance(v, (list, tuple)):
            return [conv(x) for x in v]
        if isinstance(v, Mapping):
            return {k: conv(x) for k, x in v.items()}
        if isinstance(v, Path):
            return str(v)
        return v

    return conv(obj)


def split_setting(text: str, what: str = "Override", form: str = "'section.key=value'") -> tuple[str, str]:
    """Split ``"key=value"`` into ``("key", "value")`` (stripped).

    Raises:
        ConfigError: no ``=`` or an empty key: "``what`` ``text`` must look like ``form``".
    """
    key, sep, value = text.partition("=")
    if not sep or not key.strip():
        raise ConfigError(f"{what} {text!r} must look like {form}.")
    return key.strip(), value.strip()


def parse_override(text: str) -> tuple[list[str], str]:
    """Split ``"a.b=value"`` into ``(["a", "b"], "value")``."""
    key, value = split_setting(text)
    return key.split("."), value


def apply_overrides(obj: T, overrides: Sequence[str]) -> T:
    """Return a copy of dataclass ``obj`` with ``a.b=value`` overrides applied.

    Values are coerced by the field's declared type; unknown keys raise :class:`ConfigError`.
    """
    for text in overrides:
        path, value = parse_override(text)
        obj = _set_path(obj, path, value, where="")
    return obj


def _set_path(obj: Any, path: list[str], value: str, where: str) -> Any:
    head, rest = path[0], path[1:]
    full = f"{where}.{head}" if where else head
    if isinstance(obj, Component):
        if rest:
            raise ConfigError(f"Cannot set {full}.{'.'.join(rest)}: settings of [{where}] are one level deep.")
        return obj.with_option(head, value)
    if not (dataclasses.is_dataclass(obj) and not isinstance(obj, type)):
        raise ConfigError(f"Cannot set {full!r}: {where or 'the config'} is not a section.")
    names = {f.name for f in dataclasses.fields(obj)}
    if head not in names:
        raise ConfigError(
            f"Unknown config key {full!r} for {type(obj).__name__}.{suggest(head, names)} "
            f"Valid keys: {', '.join(sorted(names))}."
        )
    if rest:
        new = _set_path(getattr(obj, head), rest, value, full)
    else:
        new = _coerce(value, _hints(type(obj))[head], full)
    return dataclasses.replace(obj, **{head: new})


def load_toml(cls: type[T], path: str | Path, overrides: Sequence[str] = ()) -> T:
    """Read a TOML run file into dataclass ``cls`` and apply ``overrides``."""
    path = Path(path)
    try:
        with path.open("rb") as fh:
            data = tomllib.load(fh)
    except FileNotFoundError:
        raise ConfigError(f"Run file {str(path)!r} does not exist.") from None
    except IsADirectoryError:
        raise ConfigError(f"Run file {str(path)!r} is a folder; give a .toml file.") from None
    except UnicodeDecodeError as exc:
        raise ConfigError(f"Run file {str(path)!r} is not UTF-8 text ({exc.reason} at byte {exc.start}); "
                          "TOML files must be UTF-8.") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"Run file {str(path)!r} is not valid TOML: {exc}") from None
    except OSError as exc:
        raise ConfigError(f"Run file {str(path)!r} cannot be read: {exc.strerror or exc}.") from None
    return apply_overrides(from_dict(cls, data), overrides)


#: Binary units of :func:`parse_size`.
SIZE_UNITS = {"k": 2**10, "m": 2**20, "g": 2**30, "t": 2**40}


def parse_size(text: str | int, what: str = "size") -> int:
    """Bytes of a size such as ``"12G"``, ``"500M"``, ``"1.5GiB"`` or ``2147483648`` (binary units).

    Raises:
        ConfigError: not a positive size (one line naming ``what`` and the forms it takes).
    """
    if isinstance(text, int) and not isinstance(text, bool):
        value = text
    else:
        raw = str(text).strip().lower().removesuffix("b").removesuffix("i")
        try:
            value = int(float(raw[:-1]) * SIZE_UNITS[raw[-1]]) if raw and raw[-1] in SIZE_UNITS else int(float(raw))
        except (ValueError, OverflowError):
            value = 0
    if value <= 0:
        raise ConfigError(f"{what}={text!r} is not a positive size; use e.g. 12G, 500M or 2147483648.")
    return value

