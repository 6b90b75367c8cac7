"""``python -m daclip_kit.bench --table 3``: the same command as ``daclip-kit bench``."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from ..cli.bench import configure
from ..cli.main import main as cli_main


def main(argv: Sequence[str] | None = None) -> int:

    return cli_main(["bench", *(sys.argv[1:] if argv is None else argv)])


def build_parser() -> argparse.ArgumentParser:
    """The bench argument parser on its own (documentation, shell completion)."""

    parser = argparse.ArgumentParser(prog="python -m daclip_kit.bench",
                                     description="Reproduce the DA-CLIP paper's tables 2-12.")
    configure(parser)
    return parser


if __name__ == "__main__":
    sys.exit(main())
