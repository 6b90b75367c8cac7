"""``daclip-kit`` entry point: argparse root, verbs from the plugin hook, clean errors.

Exit codes: 0 success, 1 runtime error (message, no traceback), 2 usage error.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Sequence

from .. import __version__
from ..errors import DaclipKitError
from ..plugins import get_registry
from ..specs import load_target
from . import console
from .console import error

log = logging.getLogger("daclip_kit")


def _setup_logging(verbose: int, no_color: bool) -> None:
    from rich.logging import RichHandler


    if no_color:
        os.environ["NO_COLOR"] = "1"
    level = logging.WARNING - 10 * min(verbose, 2)
    handler = RichHandler(console=console.stderr(), show_time=False, show_path=False)
    logging.basicConfig(level=level, handlers=[handler], format="%(message)s", force=True)


def build_parser(argv: Sequence[str]) -> argparse.ArgumentParser:
    """The root parser; only the verb named in ``argv`` gets its arguments (lazy import)."""

    parser = argparse.ArgumentParser(
        prog="daclip-kit",
        description="DA-CLIP toolkit: degradation-aware embeddings, universal image restoration, "
        "data synthesis and paper benchmarks.",
    )
    parser.add_argument("--version", action="version", version=f"daclip-kit {__version__}")
    parser.add_argument("-v", "--verbose", action="count", default=0, help="more log output (-vv for debug)")
    parser.add_argument("--no-color", action="store_true", help="plain output without colours")
    parser.add_argument("--debug", action="store_true", help="show tracebacks of errors")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    specs = {s.name: s for s in get_registry("commands")}
    wanted = next((a for a in argv if not a.startswith("-")), None)
    for name in sorted(specs):
        spec = specs[name]
        p = sub.add_parser(name, help=spec.summary, description=spec.summary)
        if name == wanted:
            load_target(spec.target)(p)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in argv or os.environ.get("DACLIP_KIT_DEBUG", "") not in ("", "0")
    try:
        parser = build_parser(argv)
        args = parser.parse_args(argv)
        _setup_logging(args.verbose, args.no_color)
        func = getattr(args, "func", None)
        if func is None:
            parser.print_help()
            return 2
        return int(func(args) or 0)
    except DaclipKitError as exc:
        if debug:
            raise

        error(str(exc))
        return 1
    except KeyboardInterrupt:

        error("interrupted")
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
