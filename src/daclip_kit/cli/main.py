"""``daclip-kit`` entry point: argparse root, verbs from the plugin hook, clean errors.

Exit codes: 0 success, 1 runtime error (message, no traceback), 2 usage error.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import sys
from collections.abc import Sequence
from typing import Any

from .. import __version__
from ..errors import DaclipKitError, PluginLoadError
from ..options import verb_flags
from ..plugins import ENV_ALLOW, describe_exception, get_registry, is_builtin_plugin, quiet_plugin_warnings
from ..specs import load_target
from . import console
from .console import error

log = logging.getLogger("daclip_kit")


def _setup_logging(verbose: int, no_color: bool) -> None:
    """Log records go to stderr: through rich on a terminal, one plain ``level: message`` line
    each otherwise (pipes, CI logs, tests)."""
    if no_color:
        os.environ["NO_COLOR"] = "1"
    level = logging.WARNING - 10 * min(verbose, 2)
    err = console.stderr()
    if err.is_terminal:
        from rich.logging import RichHandler

        handler: logging.Handler = RichHandler(console=err, show_time=False, show_path=False)
        handler.setFormatter(logging.Formatter("%(message)s"))
    else:
        handler = _PlainHandler()
    logging.basicConfig(level=level, handlers=[handler], force=True)
    for noisy in ("PIL", "matplotlib", "urllib3", "httpx", "filelock"):  # their debug records are not ours
        logging.getLogger(noisy).setLevel(max(level, logging.INFO))


class _PlainHandler(logging.StreamHandler):
    """A stream handler on the current ``sys.stderr`` (captured streams included), one line per record."""

    @property
    def stream(self):
        return sys.stderr

    @stream.setter
    def stream(self, value):  # StreamHandler assigns it; the current sys.stderr is always used
        pass

    def format(self, record: logging.LogRecord) -> str:
        line = " ".join(f"{record.levelname.lower()}: {record.getMessage()}".split())
        if record.exc_info and logging.getLogger().level <= logging.DEBUG:  # -vv: the whole story
            line += "\n" + logging.Formatter().formatException(record.exc_info)
        return line


class _RootParser(argparse.ArgumentParser):
    """The root parser. Its help lists each verb's sub-verbs (``data add``) under the verb, read from
    the verbs' own parsers, which are configured for that only when the help is shown."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.verbs: dict[str, Any] = {}  # name -> registry entry of the verbs to list, set by build_parser

    def format_help(self) -> str:
        for action in self._actions:
            if isinstance(action, argparse._SubParsersAction) and self.verbs:
                rows: list[argparse.Action] = []
                for row in action._choices_actions:
                    rows.append(row)
                    entry = self.verbs.get(row.dest)
                    for path, summary in _sub_verbs(_configured(entry)) if entry is not None else ():
                        rows.append(argparse.Action([], dest=f"{row.dest} {path}", help=summary))
                action._choices_actions[:] = rows
                self.verbs = {}  # listed once, however often the help is formatted
        return super().format_help()


class _HelpFormatter(argparse.HelpFormatter):
    """Sets the help column with room for the sub-verbs (``data prepare``), which argparse lists one indent
    deeper than it measures them."""

    def add_argument(self, action: argparse.Action) -> None:
        nested = isinstance(action, argparse._SubParsersAction)
        if nested:
            self._indent()
        super().add_argument(action)
        if nested:
            self._dedent()


def _configured(entry: Any) -> argparse.ArgumentParser | None:
    """A fresh parser set up by the verb's ``configure``, or ``None`` with a warning when that fails (the
    root help still lists the other verbs)."""
    parser = argparse.ArgumentParser(prog=f"daclip-kit {entry.spec.name}")
    if not is_builtin_plugin(entry.plugin):
        try:
            _configure_plugin_command(entry, parser)
        except PluginLoadError as exc:
            log.warning("%s", exc)
            return None
        return parser
    try:
        load_target(entry.spec.target)(parser)
    except Exception as exc:
        log.warning("the sub-verbs of %r are not listed: it cannot be set up (%s); "
                    "`daclip-kit %s --help` shows the traceback", entry.spec.name, describe_exception(exc),
                    entry.spec.name)
        return None
    return parser


def _sub_verbs(parser: argparse.ArgumentParser | None, prefix: str = "") -> list[tuple[str, str]]:
    """``(path, summary)`` of every sub-verb under ``parser``, depth first (``"add"``, ...); aliases and
    sub-verbs whose help is suppressed are left out."""
    found: list[tuple[str, str]] = []
    for action in parser._actions if parser is not None else ():
        if isinstance(action, argparse._SubParsersAction):
            summaries = {row.dest: row.help for row in action._choices_actions}
            seen: set[int] = set()
            for name, sub in action.choices.items():
                if id(sub) in seen or summaries.get(name) == argparse.SUPPRESS:
                    continue
                seen.add(id(sub))
                found.append((f"{prefix}{name}", summaries.get(name) or ""))
                found.extend(_sub_verbs(sub, f"{prefix}{name} "))
    return found


def build_parser(argv: Sequence[str]) -> argparse.ArgumentParser:
    """The root parser; only the verb named in ``argv`` gets its arguments (lazy import). The root
    help also lists every verb's sub-verbs (:class:`_RootParser`)."""

    parser = _RootParser(
        prog="daclip-kit",
        formatter_class=_HelpFormatter,
        description="DA-CLIP toolkit: degradation-aware embeddings, universal image restoration, "
        "data synthesis and paper benchmarks.",
    )
    parser.add_argument("--version", action="version", version=f"daclip-kit {__version__}")
    parser.add_argument("-v", "--verbose", action="count", default=0, help="more log output (-vv for debug)")
    parser.add_argument("--no-color", action="store_true", help="plain output without colours")
    parser.add_argument("--debug", action="store_true", help="show tracebacks of errors")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    wanted = next((a for a in argv if not a.startswith("-")), None)
    # the plugins verb lists every plugin failure itself; say each once
    with quiet_plugin_warnings() if wanted == "plugins" else contextlib.nullcontext():
        entries = {e.spec.name: e for e in get_registry("commands").entries()}
    for name in sorted(entries):
        entry = entries[name]
        summary = entry.spec.summary.replace("%", "%%")  # argparse %-formats help texts
        p = sub.add_parser(name, help=summary, description=summary)
        p.set_defaults(_daclip_kit_verb=name)
        if name == wanted:
            if is_builtin_plugin(entry.plugin):
                load_target(entry.spec.target)(p)
            else:
                _configure_plugin_command(entry, p)
    parser.verbs = entries if wanted is None else {}
    return parser


def _plugin_label(entry) -> str:
    return f"command {entry.spec.name!r} of {entry.provider()}"


def _configure_plugin_command(entry, parser: argparse.ArgumentParser) -> None:
    """Set up a third-party verb; whatever its import or ``configure`` raises (``sys.exit()``
    included) becomes a one-line :class:`PluginLoadError`. Ctrl-C stays an interruption."""
    try:
        load_target(entry.spec.target)(parser)
    except KeyboardInterrupt:
        raise
    except BaseException as exc:
        raise PluginLoadError(
            f"The {_plugin_label(entry)} cannot be set up: {describe_exception(exc)}. Fix or uninstall "
            f"the plugin (`daclip-kit plugins` lists it), or set {ENV_ALLOW}=... to load only the plugins you need."
        ) from exc
    if not callable(parser.get_default("func")):
        raise PluginLoadError(f"The {_plugin_label(entry)} did not set a function to run "
                              "(its configure() must call parser.set_defaults(func=run)). Fix the plugin.")


def _run_plugin_command(entry, func, args: argparse.Namespace) -> int:
    """Run a third-party verb: its own errors are one line naming the plugin; its ``sys.exit(code)``
    is its exit status."""
    try:
        result = func(args)
    except (DaclipKitError, KeyboardInterrupt, SystemExit):
        raise
    except Exception as exc:
        raise PluginLoadError(f"The {_plugin_label(entry)} failed: {describe_exception(exc)} "
                              "(run with --debug for the traceback).") from exc
    if result is None:
        return 0
    if isinstance(result, bool) or not isinstance(result, int):
        raise PluginLoadError(f"The {_plugin_label(entry)} returned {type(result).__name__}, "
                              "not an exit status (int). Fix the plugin.")
    return result


def _flags_of(parser: argparse.ArgumentParser, func: Any) -> set[str]:
    """The flags of the (sub-)verb whose function is ``func`` and of the parsers above it: what the
    messages of the code it runs may name (:mod:`daclip_kit.options`)."""

    def chain(p: argparse.ArgumentParser) -> list[argparse.ArgumentParser] | None:
        if p.get_default("func") is func and p is not parser:
            return [p]
        for action in p._actions:
            if isinstance(action, argparse._SubParsersAction):
                for sub in action.choices.values():
                    found = chain(sub)
                    if found is not None:
                        return [p, *found]
        return None

    return {flag for p in chain(parser) or [parser] for action in p._actions for flag in action.option_strings
            if flag.startswith("--")}


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in argv or os.environ.get("DACLIP_KIT_DEBUG", "") not in ("", "0")
    try:
        # plugin problems found while listing the verbs are logged through the same handler
        _setup_logging(0, "--no-color" in argv)
        parser = build_parser(argv)
        args = parser.parse_args(argv)
        _setup_logging(args.verbose, args.no_color)
        func = getattr(args, "func", None)
        if func is None:
            parser.print_help()
            return 2
        entry = get_registry("commands").entry(getattr(args, "_daclip_kit_verb", args.command))
        with verb_flags(_flags_of(parser, func)):
            if not is_builtin_plugin(entry.plugin):
                return _run_plugin_command(entry, func, args)
            return int(func(args) or 0)
    except DaclipKitError as exc:
        if debug:
            raise

        error(str(exc))
        return 1
    except OSError as exc:  # disk full, permissions, a file vanishing: the system's words, one line
        if debug:
            raise
        where = f": {exc.filename}" if exc.filename else ""
        error(f"{exc.strerror or exc}{where} (run with --debug for the traceback)")
        return 1
    except KeyboardInterrupt as exc:  # a verb may say what was done before (restore: what --resume continues)
        error(str(exc) or "interrupted")
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
