"""The version of the installed distribution; its one source is ``version`` in pyproject.toml.

Read from the distribution's metadata when ``daclip_kit.__version__`` is first asked for (not at
``import daclip_kit``). A source tree on ``sys.path`` that was never installed has no metadata: its
version is :data:`UNKNOWN` rather than an error (``pip install -e .`` gives it the real one).
"""

from __future__ import annotations

from importlib import metadata

DISTRIBUTION = "daclip-kit"
#: The version of a source tree that is not installed (a PEP 440 local version, lower than any release).
UNKNOWN = "0+unknown"


def distribution_version() -> str:
    """``importlib.metadata.version("daclip-kit")``, or :data:`UNKNOWN` when it is not installed."""
    try:
        return metadata.version(DISTRIBUTION)
    except metadata.PackageNotFoundError:
        return UNKNOWN


__version__ = distribution_version()
