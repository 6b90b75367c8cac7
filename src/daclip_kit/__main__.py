"""``python -m daclip_kit ...``: the ``daclip-kit`` command (also under ``torchrun``)."""

from __future__ import annotations

import sys

from .cli.main import main

if __name__ == "__main__":
    sys.exit(main())
