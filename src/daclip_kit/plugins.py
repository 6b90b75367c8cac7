"""The plugin host: built-in plugins, entry points and the registries built from their hooks.

Nothing here runs at import. :func:`get_plugin_manager` builds the manager on first use and caches
it; :func:`reset` drops the cache (tests use it).

A plugin can never break the host (nor ``daclip-kit --help``, ``ls`` or ``plugins``). Each of
these is recorded against the plugin as a :class:`~daclip_kit.errors.PluginLoadError`, logged,
shown as *failed* by ``daclip-kit plugins``, and skipped:

* an entry point that fails to import, including one that calls ``sys.exit()`` or raises any
  other :class:`BaseException` (``SystemExit``, ``KeyboardInterrupt``, ...) while importing;
* a registration hook that raises (again any :class:`BaseException`) or returns anything but a
  list or tuple of the kind's spec class (:data:`SPEC_TYPES`) with well-formed fields: a
  non-empty ``name`` without spaces, ``"module:attr"`` strings in ``target``/``config``/
  ``convert``/``meter``, text in ``summary``, a plain file name in a ``WeightSpec.filename``.
  The whole answer of that hook is skipped; the plugin's other hooks still count;
* a name that is already taken in its kind. **Conflict rule**: the built-in component always
  wins; between third-party plugins the one registered first wins, and entry points are
  registered in the order of their entry-point names (then distribution name), followed by
  in-process plugins (:func:`register_plugin`) in the order they were registered. The later
  spec is skipped and the error names both plugins; the plugin's other specs stay registered.

Environment switches:

``DACLIP_KIT_DISABLE_PLUGIN_AUTOLOAD=1``
    load no entry points (built-ins only).
``DACLIP_KIT_PLUGINS=a,b``
    load only the entry points with these names (built-ins are always loaded).
``DACLIP_KIT_TRACE_PLUGINS=1``
    log every hook call and its results at INFO level.
"""

from __future__ import annotations

import contextlib
import functools
import importlib
import logging
import math
import os
import re
import sys
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import pluggy

from . import __version__, hookspecs
from .errors import PluginLoadError, UnknownComponentError
from .registry import Registry
from .specs import KINDS, CommandSpec, ComponentSpec, load_target

if sys.version_info >= (3, 12):  # pragma: no cover - depends on interpreter
    from importlib import metadata as importlib_metadata
else:
    import importlib_metadata

log = logging.getLogger(__name__)

ENTRY_POINT_GROUP = "daclip_kit"
ENV_DISABLE_AUTOLOAD = "DACLIP_KIT_DISABLE_PLUGIN_AUTOLOAD"
ENV_ALLOW = "DACLIP_KIT_PLUGINS"
ENV_TRACE = "DACLIP_KIT_TRACE_PLUGINS"

#: Built-in plugins, registered exactly like third-party entry points.
BUILTIN_PLUGINS: tuple[str, ...] = (
    "daclip_kit.embedders.plugin",
    "daclip_kit.backbones.plugin",
    "daclip_kit.adapters.plugin",
    "daclip_kit.samplers.plugin",
    "daclip_kit.metrics.plugin",
    "daclip_kit.bench.plugin",
    "daclip_kit.weights.plugin",
    "daclip_kit.degradations.plugin",
    "daclip_kit.data.plugin",
    "daclip_kit.pipelines.plugin",
    "daclip_kit.train.plugin",
    "daclip_kit.demo.plugin",
    "daclip_kit.cli.plugin",
)

#: The spec class each registration hook must return (``"module:attr"``, imported when checked;
#: all are torch-free spec modules).
SPEC_TYPES: dict[str, str] = {
    "embedders": "daclip_kit.specs:EmbedderSpec",
    "backbones": "daclip_kit.specs:BackboneSpec",
    "adapters": "daclip_kit.specs:AdapterSpec",
    "samplers": "daclip_kit.specs:SamplerSpec",
    "metrics": "daclip_kit.specs:MetricSpec",
    "tables": "daclip_kit.bench.spec:TableSpec",
    "weights": "daclip_kit.specs:WeightSpec",
    "degradations": "daclip_kit.specs:DegradationSpec",
    "datasets": "daclip_kit.specs:DatasetSpec",
    "pipelines": "daclip_kit.specs:PipelineSpec",
    "commands": "daclip_kit.specs:CommandSpec",
}

_SINGULAR = {k: k[:-1] for k in KINDS}
#: Spec fields that hold ``"module:attr"`` strings (``None`` allowed except for ``target``).
_TARGET_FIELDS = ("target", "config", "convert", "meter")
_TEXT_FIELDS = ("summary", "title", "description")
_DOTTED = r"[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*"
_TARGET_RE = re.compile(rf"^{_DOTTED}:{_DOTTED}$")
#: Component names: no spaces, quotes or separators of the CLI's own syntax.
_NAME_RE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.@+-]*$")
_COMMAND_RE = re.compile(r"^[a-z0-9][a-z0-9_-]*$")


@dataclass
class PluginInfo:
    """One plugin as ``daclip-kit plugins`` shows it.

    ``errors`` lists everything held against the plugin (import failure, hooks that raised or
    answered wrongly, names it could not take); ``error`` is the first of them.
    """

    name: str
    module: str
    distribution: str
    version: str
    builtin: bool
    hooks: list[str] = field(default_factory=list)
    errors: list[PluginLoadError] = field(default_factory=list)

    @property
    def error(self) -> PluginLoadError | None:
        return self.errors[0] if self.errors else None

    @property
    def ok(self) -> bool:
        return not self.errors

    @property
    def source(self) -> str:
        """``"distribution version"`` of the plugin, or ``"unknown distribution"``."""
        return f"{self.distribution} {self.version}".strip() or "unknown distribution"


def describe_exception(exc: BaseException) -> str:
    """``"Type: message"`` of ``exc``, saying what ``sys.exit()`` was called with."""
    if isinstance(exc, SystemExit):
        return f"SystemExit({exc.code!r}) (it called sys.exit())"
    text = _safe_str(exc)
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def _safe_str(obj: Any, limit: int = 300) -> str:
    try:
        text = str(obj)
    except BaseException:
        text = f"<{type(obj).__name__} that cannot be shown>"
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _safe_repr(obj: Any, limit: int = 300) -> str:
    try:
        text = repr(obj)
    except BaseException:
        text = f"<{type(obj).__name__}>"
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _target_fields(spec: Any) -> tuple[str, ...]:
    if isinstance(spec, ComponentSpec):
        return tuple(a for a in _TARGET_FIELDS if hasattr(spec, a))
    return ("target",) if isinstance(spec, CommandSpec) else ()


def check_specs(kind: str, specs: Any) -> str:
    """Why ``specs`` (a registration hook's answer for ``kind``) is not acceptable, or ``""``.

    It must be a list or tuple of instances of the kind's spec class (:data:`SPEC_TYPES`) whose
    ``name`` is a non-empty word, whose ``"module:attr"`` fields are well formed, and whose text
    fields are strings.
    """
    expected = load_target(SPEC_TYPES[kind])
    if not isinstance(specs, (list, tuple)):
        return (f"returned {type(specs).__name__} {_safe_repr(specs, 80)}, expected a list of "
                f"{expected.__name__} objects")
    for i, spec in enumerate(specs):
        where = f"item {i}"
        if not isinstance(spec, expected):
            return f"{where} is a {type(spec).__name__}, expected a {expected.__name__}"
        name = getattr(spec, "name", None)
        if not isinstance(name, str) or not name:
            return f"{where} has name {_safe_repr(name, 80)}, expected a non-empty string"
        where = f"{_SINGULAR[kind]} {name!r}" if len(name) <= 80 else f"{where} (name too long)"
        pattern = _COMMAND_RE if kind == "commands" else _NAME_RE
        if len(name) > 80 or not pattern.match(name):
            return f"{where}: the name must match {pattern.pattern} (at most 80 characters)"
        for attr in _target_fields(spec):
            value = getattr(spec, attr)
            if value is None and attr != "target":
                continue
            if not isinstance(value, str) or not _TARGET_RE.match(value):
                return f"{where} has {attr}={_safe_repr(value, 80)}, expected 'package.module:attribute'"
        for attr in _TEXT_FIELDS:
            if hasattr(spec, attr) and not isinstance(getattr(spec, attr), str):
                return f"{where} has a {type(getattr(spec, attr)).__name__} {attr}, expected text"
        if kind == "weights":
            filename = spec.filename
            if (not isinstance(filename, str) or not filename or filename in (".", "..")
                    or "/" in filename or "\\" in filename or "\0" in filename):
                return f"{where} has filename={_safe_repr(filename, 80)}, expected a plain file name"
    return ""


class PluginHost:
    """A :class:`pluggy.PluginManager` plus what was loaded, what failed, and the registries."""

    def __init__(self, pm: pluggy.PluginManager):
        self.pm = pm
        self.infos: dict[str, PluginInfo] = {}
        #: entry points that were not loaded at all (a name declared twice or taken by a built-in)
        self.rejected: list[PluginInfo] = []
        self._registries: dict[str, Registry[Any]] = {}
        self._order: dict[str, int] = {}

    # -- loading -----------------------------------------------------------------------------

    def register_module(self, module_name: str, *, name: str, distribution: str, version: str,
                        builtin: bool, entry_point: str = "", load: Callable[[], object] | None = None) -> None:
        """Import ``module_name`` (or call ``load()``) and register the result.

        A failure, whatever it raises (``SystemExit`` and ``KeyboardInterrupt`` included), is
        recorded in :attr:`infos` and logged, never raised.
        """
        info = PluginInfo(name, module_name, distribution, version, builtin)
        self.infos[name] = info
        self._order.setdefault(name, len(self._order))
        try:
            module = load() if load is not None else importlib.import_module(module_name)
            self.pm.register(module, name=name)
        except BaseException as exc:
            where = entry_point or module_name
            self._record(info, PluginLoadError(
                f"Plugin {name!r} ({where}, from {info.source}) failed to load: {describe_exception(exc)}. "
                f"It is skipped; fix or uninstall it, or set {ENV_ALLOW}=... to load only the plugins "
                "you need.",
                entry_point=where, distribution=distribution, version=version,
            ), exc)
            return
        try:
            info.hooks = sorted(h.name for h in self.pm.get_hookcallers(module) or ())
        except BaseException:
            info.hooks = []

    def load_entry_points(self) -> None:
        if os.environ.get(ENV_DISABLE_AUTOLOAD, "").strip() not in ("", "0"):
            log.info("%s is set: no entry-point plugins loaded", ENV_DISABLE_AUTOLOAD)
            return
        allow_raw = os.environ.get(ENV_ALLOW)
        allow = None if allow_raw is None else {a.strip() for a in allow_raw.split(",") if a.strip()}
        try:
            found = list(importlib_metadata.entry_points(group=ENTRY_POINT_GROUP))
        except Exception as exc:
            log.warning("Cannot list the %r entry points (%s); no third-party plugins are loaded.",
                        ENTRY_POINT_GROUP, describe_exception(exc))
            return
        described = sorted(((ep, *_distribution(ep)) for ep in found),
                           key=lambda t: (str(t[0].name), t[1], str(t[0].value)))
        first_by_name: dict[str, str] = {}
        for ep, dist_name, dist_version in described:
            name, value = str(ep.name), str(ep.value)
            if allow is not None and name not in allow:
                continue
            where = f"{name} = {value}"
            if name in first_by_name or name in self.infos:
                taken_by = (f"the built-in plugin {name!r}" if name in self.infos and self.infos[name].builtin
                            else f"the entry point {first_by_name.get(name) or name!r}")
                info = PluginInfo(name, value.partition(":")[0], dist_name, dist_version, builtin=False)
                self._record(info, PluginLoadError(
                    f"Plugin {name!r} ({where}, from {info.source}) is not loaded: its entry-point name is "
                    f"already taken by {taken_by}. Rename the entry point or uninstall one of the distributions.",
                    entry_point=where, distribution=dist_name, version=dist_version,
                ), None)
                self.rejected.append(info)
                continue
            first_by_name[name] = f"{where} ({dist_name})" if dist_name else where
            self.register_module(value.partition(":")[0], name=name, distribution=dist_name,
                                 version=dist_version, builtin=False, entry_point=where, load=ep.load)

    def _record(self, info: PluginInfo | None, err: PluginLoadError, cause: BaseException | None) -> None:
        err.__cause__ = cause
        if info is not None:
            info.errors.append(err)
        log.warning("%s", err)

    # -- registries --------------------------------------------------------------------------

    def registry(self, kind: str) -> Registry[Any]:
        """The registry of ``kind`` (one of :data:`daclip_kit.specs.KINDS`), built on first use."""
        if kind not in KINDS:
            raise UnknownComponentError("kind", kind, KINDS)
        reg = self._registries.get(kind)
        if reg is None:
            reg = self._build(kind)
            self._registries[kind] = reg
        return reg

    def clear_registries(self) -> None:
        """Drop the built registries and the errors found while building them (found again on
        the next build)."""
        self._registries.clear()
        for info in [*self.infos.values(), *self.rejected]:
            info.errors = [e for e in info.errors if not e.kind]

    def _priority(self, plugin_name: str) -> tuple[float, str]:
        return (self._order.get(plugin_name, math.inf), plugin_name)

    def is_builtin(self, plugin_name: str) -> bool:
        info = self.infos.get(plugin_name)
        return bool(info and info.builtin)

    def _build(self, kind: str) -> Registry[Any]:
        singular = _SINGULAR[kind]
        hook = f"daclip_kit_register_{kind}"
        reg: Registry[Any] = Registry(singular, list_command=f"daclip-kit ls {kind}")
        caller = getattr(self.pm.hook, hook)
        trace = os.environ.get(ENV_TRACE, "").strip() not in ("", "0")
        for impl in sorted(caller.get_hookimpls(), key=lambda i: self._priority(i.plugin_name)):
            plugin = impl.plugin_name
            info = self.infos.get(plugin)
            meta = {"entry_point": plugin, "distribution": info.distribution if info else "",
                    "version": info.version if info else "", "kind": kind}
            try:
                specs = impl.function()
                if not isinstance(specs, (list, tuple)) and hasattr(specs, "close"):
                    specs.close()  # a generator or coroutine from a wrongly declared hook
                problem = check_specs(kind, specs)
            except BaseException as exc:
                self._record(info, PluginLoadError(
                    f"Plugin {plugin!r} failed in {hook}: {describe_exception(exc)}. Its {kind} are skipped.",
                    **meta), exc)
                continue
            if problem:
                self._record(info, PluginLoadError(
                    f"Plugin {plugin!r}: {hook} {problem}. Its {kind} are skipped; fix the plugin.", **meta), None)
                continue
            if trace:
                log.info("hook %s of %s -> %s", hook, plugin, _safe_repr(specs, 2000))
            dist, version = meta["distribution"], meta["version"]
            for spec in specs:
                if spec.name in reg:
                    old = reg.entry(spec.name)
                    winner = "the built-in one" if self.is_builtin(old.plugin) else "the first registered one"
                    self._record(info, PluginLoadError(
                        f"Plugin {plugin!r}{_dist_text(dist, version)} registers {singular} {spec.name!r}, which "
                        f"{old.provider()} already registers; {winner} is kept and this one is skipped. "
                        f"Rename it in the plugin, or uninstall one of them ({ENV_ALLOW}=... loads only the "
                        "listed plugins).", **meta), None)
                    continue
                reg.add(spec, plugin=plugin, distribution=dist, version=version)
        return reg.freeze()


def _dist_text(dist: str, version: str) -> str:
    text = f"{dist} {version}".strip()
    return f" ({text})" if text else ""


def _distribution(ep: Any) -> tuple[str, str]:
    """``(name, version)`` of the distribution declaring ``ep``; ``("", "")`` when unknown."""
    try:
        dist = getattr(ep, "dist", None)
        if dist is None:
            return "", ""
        name = dist.metadata["Name"]
        return str(name or ""), str(dist.version or "")
    except Exception:
        return "", ""


def _trace_before(hook_name: str, hook_impls: Sequence[pluggy.HookImpl], kwargs: Mapping[str, Any]) -> None:
    log.info("calling %s(%s) on %s", hook_name, kwargs, [i.plugin_name for i in hook_impls])


def _trace_after(outcome: pluggy.Result[Any], hook_name: str, hook_impls: Sequence[pluggy.HookImpl],
                 kwargs: Mapping[str, Any]) -> None:
    result = outcome.get_result() if outcome.exception is None else outcome.exception
    log.info("%s returned %s", hook_name, _safe_repr(result, 2000))


def _own_version() -> str:

    return str(__version__)  # the package's lazy attribute (typed Any)


@functools.cache
def get_host() -> PluginHost:
    """The process-wide :class:`PluginHost` (built-ins + entry points), created on first use."""
    pm = pluggy.PluginManager(hookspecs.PROJECT)
    pm.add_hookspecs(hookspecs)
    if os.environ.get(ENV_TRACE, "").strip() not in ("", "0"):
        pm.add_hookcall_monitoring(_trace_before, _trace_after)
    host = PluginHost(pm)
    for module_name in BUILTIN_PLUGINS:
        short = module_name.removeprefix("daclip_kit.").removesuffix(".plugin")
        host.register_module(module_name, name=f"daclip_kit.{short}", distribution="daclip-kit",
                             version=_own_version(), builtin=True)
    host.load_entry_points()
    return host


def get_plugin_manager() -> pluggy.PluginManager:
    """The cached :class:`pluggy.PluginManager` with every plugin registered."""
    return get_host().pm


def call_hook(name: str, *, firstresult: bool = False, **kwargs: Any) -> Any:
    """Call hook ``name`` with every plugin isolated from the others, in pluggy's order.

    A third-party implementation that raises (``sys.exit()`` included; Ctrl-C is not caught) is
    skipped with one warning naming the plugin, and the next one answers; a built-in's error
    propagates. With ``firstresult`` the first non-``None`` answer is returned, else the list of
    answers.
    """
    hook = getattr(get_plugin_manager().hook, name)
    answers = []
    for impl in reversed(hook.get_hookimpls()):  # pluggy calls the last registered first
        try:
            answer = impl.function(*(kwargs[arg] for arg in impl.argnames))
        except KeyboardInterrupt:
            raise
        except BaseException as exc:  # a plugin's failure must not end the caller's work
            if is_builtin_plugin(impl.plugin_name):
                raise
            log.warning("plugin %s failed in %s and was skipped: %s", impl.plugin_name, name,
                        describe_exception(exc))
            continue
        if answer is not None:
            if firstresult:
                return answer
            answers.append(answer)
    return None if firstresult else answers


def get_registry(kind: str) -> Registry[Any]:
    """The registry of ``kind`` (``"backbones"``, ``"embedders"``, ...)."""
    return get_host().registry(kind)


def is_builtin_plugin(plugin_name: str) -> bool:
    """Whether ``plugin_name`` (as in :attr:`daclip_kit.registry.Entry.plugin`) is a built-in."""
    return get_host().is_builtin(plugin_name)


def register_plugin(plugin: object, name: str | None = None) -> str:
    """Register an in-process plugin (a module or object with ``@hookimpl`` functions).

    Use it in notebooks, scripts and tests; installed distributions use the ``daclip_kit``
    entry-point group instead. Registries built earlier are rebuilt on next use. Its components
    come after the built-ins and entry points: a name they already use is reported and skipped.

    Returns:
        the name the plugin was registered under.
    """
    host = get_host()
    try:
        registered = host.pm.register(plugin, name=name)
    except ValueError as exc:  # pluggy: the name or the object is already registered
        raise PluginLoadError(
            f"Plugin {name or plugin!r} cannot be registered: it (or its name) is already registered. "
            "Unregister the old one with get_plugin_manager().unregister(name=...) or pick another name."
        ) from exc
    if registered is None:
        raise PluginLoadError(f"Plugin {name or plugin!r} is blocked and was not registered.")
    module = getattr(plugin, "__name__", type(plugin).__name__)
    info = PluginInfo(registered, module, "", "", builtin=False)
    info.hooks = sorted(h.name for h in host.pm.get_hookcallers(plugin) or ())
    host.infos[registered] = info
    host._order.setdefault(registered, len(host._order))
    host.clear_registries()
    return registered


@contextlib.contextmanager
def quiet_plugin_warnings() -> Iterator[None]:
    """Inside, the plugin host logs no warnings (for a caller that reports every plugin failure
    itself, as ``daclip-kit plugins`` does)."""
    before = log.level
    log.setLevel(logging.ERROR)
    try:
        yield
    finally:
        log.setLevel(before)


def plugin_infos() -> list[PluginInfo]:
    """Every plugin the host tried to load, built-ins first, failures included.

    Every registry is built first, so a plugin whose registration hook raises, answers wrongly
    or takes a name already in use shows as failed.
    """
    host = get_host()
    for kind in KINDS:
        host.registry(kind)
    infos = list(host.infos.values()) + list(host.rejected)
    return sorted(infos, key=lambda i: (not i.builtin, i.name))


def reset() -> None:
    """Forget the cached host so the next call rebuilds it (environment changes, tests)."""
    get_host.cache_clear()
