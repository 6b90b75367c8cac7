"""The plugin host: built-in plugins, entry points and the registries built from their hooks.

Nothing here runs at import. :func:`get_plugin_manager` builds the manager on first use and caches
it; :func:`reset` drops the cache (tests use it).

Environment switches:

``DACLIP_KIT_DISABLE_PLUGIN_AUTOLOAD=1``
    load no entry points (built-ins only).
``DACLIP_KIT_PLUGINS=a,b``
    load only the entry points with these names (built-ins are always loaded).
``DACLIP_KIT_TRACE_PLUGINS=1``
    log every hook call and its results at INFO level.
"""

from __future__ import annotations

import functools
import importlib
import logging
import os
import sys
from dataclasses import dataclass, field

import pluggy

from . import __version__, hookspecs
from .errors import DuplicateComponentError, PluginLoadError, UnknownComponentError
from .registry import Registry
from .specs import KINDS

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
    "daclip_kit.cli.plugin",
)

_SINGULAR = {k: k[:-1] for k in KINDS}


@dataclass
class PluginInfo:
    """One plugin as ``daclip-kit plugins`` shows it."""

    name: str
    module: str
    distribution: str
    version: str
    builtin: bool
    hooks: list[str] = field(default_factory=list)
    error: PluginLoadError | None = None

    @property
    def ok(self) -> bool:
        return self.error is None


class PluginHost:
    """A :class:`pluggy.PluginManager` plus what was loaded, what failed, and the registries."""

    def __init__(self, pm: pluggy.PluginManager):
        self.pm = pm
        self.infos: dict[str, PluginInfo] = {}
        self._registries: dict[str, Registry] = {}

    # -- loading -----------------------------------------------------------------------------

    def register_module(self, module_name: str, *, name: str, distribution: str, version: str,
                        builtin: bool, entry_point: str = "", load=None) -> None:
        """Import ``module_name`` (or call ``load()``) and register the result.

        A failure is recorded in :attr:`infos` and logged, never raised.
        """
        info = PluginInfo(name, module_name, distribution, version, builtin)
        self.infos[name] = info
        try:
            module = load() if load is not None else importlib.import_module(module_name)
            self.pm.register(module, name=name)
        except Exception as exc:  # noqa: BLE001 - any plugin failure is reported and skipped
            where = entry_point or module_name
            dist = f"{distribution} {version}".strip() or "unknown distribution"
            err = PluginLoadError(
                f"Plugin {name!r} ({where}, from {dist}) failed to load: "
                f"{type(exc).__name__}: {exc}. It is skipped; fix or uninstall it, or set "
                f"{ENV_ALLOW}=... to load only the plugins you need.",
                entry_point=where, distribution=distribution, version=version,
            )
            err.__cause__ = exc
            info.error = err
            log.warning("%s", err)
            return
        info.hooks = sorted(h.name for h in self.pm.get_hookcallers(module) or ())

    def load_entry_points(self) -> None:
        if os.environ.get(ENV_DISABLE_AUTOLOAD, "").strip() not in ("", "0"):
            log.info("%s is set: no entry-point plugins loaded", ENV_DISABLE_AUTOLOAD)
            return
        allow_raw = os.environ.get(ENV_ALLOW)
        allow = None if allow_raw is None else {a.strip() for a in allow_raw.split(",") if a.strip()}
        eps = sorted(importlib_metadata.entry_points(group=ENTRY_POINT_GROUP), key=lambda e: e.name)
        seen: set[str] = set()
        for ep in eps:
            if ep.name in seen or ep.name in self.infos:
                continue
            seen.add(ep.name)
            if allow is not None and ep.name not in allow:
                continue
            dist = getattr(ep, "dist", None)
            dist_name = dist.metadata["Name"] if dist is not None else ""
            dist_version = dist.version if dist is not None else ""
            self.register_module(
                ep.value.partition(":")[0], name=ep.name, distribution=dist_name,
                version=dist_version, builtin=False, entry_point=f"{ep.name} = {ep.value}",
                load=ep.load,
            )

    # -- registries --------------------------------------------------------------------------

    def registry(self, kind: str) -> Registry:
        """The registry of ``kind`` (one of :data:`daclip_kit.specs.KINDS`), built on first use."""
        if kind not in KINDS:
            raise UnknownComponentError("kind", kind, KINDS)
        reg = self._registries.get(kind)
        if reg is None:
            reg = self._build(kind)
            self._registries[kind] = reg
        return reg

    def _build(self, kind: str) -> Registry:
        reg: Registry = Registry(_SINGULAR[kind], list_command=f"daclip-kit ls {kind}")
        caller = getattr(self.pm.hook, f"daclip_kit_register_{kind}")
        trace = os.environ.get(ENV_TRACE, "").strip() not in ("", "0")
        for impl in caller.get_hookimpls():
            info = self.infos.get(impl.plugin_name)
            try:
                specs = impl.function()
            except Exception as exc:  # noqa: BLE001 - a failing plugin is reported and skipped
                err = PluginLoadError(
                    f"Plugin {impl.plugin_name!r} failed in daclip_kit_register_{kind}: "
                    f"{type(exc).__name__}: {exc}. Its {kind} are skipped.",
                    entry_point=impl.plugin_name,
                    distribution=info.distribution if info else "",
                    version=info.version if info else "",
                )
                err.__cause__ = exc
                if info is not None and info.error is None:
                    info.error = err
                log.warning("%s", err)
                continue
            if trace:
                log.info("hook daclip_kit_register_%s of %s -> %r", kind, impl.plugin_name, specs)
            for spec in specs or ():
                reg.add(spec, plugin=impl.plugin_name,
                        distribution=info.distribution if info else "",
                        version=info.version if info else "")
        return reg.freeze()


def _trace_before(hook_name, hook_impls, kwargs):
    log.info("calling %s(%s) on %s", hook_name, kwargs, [i.plugin_name for i in hook_impls])


def _trace_after(outcome, hook_name, hook_impls, kwargs):
    log.info("%s returned %r", hook_name, outcome.get_result() if outcome.exception is None else outcome.exception)


def _own_version() -> str:

    return __version__


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


def get_registry(kind: str) -> Registry:
    """The registry of ``kind`` (``"backbones"``, ``"embedders"``, ...)."""
    return get_host().registry(kind)


def register_plugin(plugin: object, name: str | None = None) -> str:
    """Register an in-process plugin (a module or object with ``@hookimpl`` functions).

    Use it in notebooks, scripts and tests; installed distributions use the ``daclip_kit``
    entry-point group instead. Registries built earlier are rebuilt on next use.

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
    host._registries.clear()
    return registered


def plugin_infos() -> list[PluginInfo]:
    """Every plugin the host tried to load, built-ins first, failures included.

    Every registry is built first, so a plugin whose registration hook raises shows as failed.
    """
    host = get_host()
    for kind in KINDS:
        try:
            host.registry(kind)
        except DuplicateComponentError as exc:
            log.warning("%s", exc)
    infos = list(host.infos.values())
    return sorted(infos, key=lambda i: (not i.builtin, i.name))


def reset() -> None:
    """Forget the cached host so the next call rebuilds it (environment changes, tests)."""
    get_host.cache_clear()
