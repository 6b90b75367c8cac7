"""The Chromium the browser tests drive (the demo's, the documentation site's) through Playwright.

It is Debian's ``chromium`` package (``scripts/setup.sh``, the README's set-up, installs it), or the executable
``$DACLIP_KIT_CHROMIUM`` names; Playwright downloads no browser. Without one the tests fail, they are never skipped.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

#: Executable names of Chromium, Debian's first (scripts/setup.sh looks for the same).
CHROMIUM_NAMES = ("chromium", "chromium-browser", "google-chrome")


def chromium_executable() -> str:
    """Path of an installed Chromium, from ``$DACLIP_KIT_CHROMIUM`` or ``PATH``; fails without one."""
    wanted = os.environ.get("DACLIP_KIT_CHROMIUM")
    if wanted:
        if not Path(wanted).is_file():
            pytest.fail(f"DACLIP_KIT_CHROMIUM={wanted!r} is not a file; point it at a Chromium executable.")
        return wanted
    for name in CHROMIUM_NAMES:
        path = shutil.which(name)
        if path:
            return path
    pytest.fail("Chromium is not installed, so the pages cannot be tested in a browser: run "
                "`scripts/setup.sh` (it runs `apt-get install -y chromium`) or set "
                "DACLIP_KIT_CHROMIUM=/path/to/chrome.")
