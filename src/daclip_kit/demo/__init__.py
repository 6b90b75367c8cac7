"""The web demo (``daclip-kit demo``): a Gradio page over :func:`daclip_kit.restore` and
:func:`daclip_kit.classify`.

:mod:`daclip_kit.demo.core` holds what the page does as plain functions (``run_restore``,
``run_classify``, ``make_examples``; no Gradio), :mod:`daclip_kit.demo.app` the page itself
(imports Gradio, from the ``[demo]`` extra). Importing this package imports neither torch nor Gradio.
"""

from __future__ import annotations

from .core import (
    DemoSettings,
    Example,
    RestoreResult,
    make_examples,
    run_classify,
    run_restore,
)

__all__ = ["DemoSettings", "Example", "RestoreResult", "make_examples", "run_classify", "run_restore"]
