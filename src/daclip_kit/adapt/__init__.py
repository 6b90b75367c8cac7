"""Adapting a model to a user's own degradation: ``daclip-kit adapt`` (torch-free to import).

* :func:`adapt_model` / :class:`AdaptSettings` (:mod:`.workflow`): two folders of pairs to one model
  (restorer + its DA-CLIP + words + calibration) with a report.
* :func:`analyse_folders` / :func:`decide` (:mod:`.preflight`): what the pairs are (global colour map,
  local structure, noise, blur, blocking, misalignment) and how to train on them.
* :class:`AdaptReport` / :func:`forgetting` (:mod:`.report`): ``OUT/report.json`` and the
  "nothing forgotten" check.

Example:
    >>> from daclip_kit.adapt import AdaptSettings, adapt_model  # doctest: +SKIP
    >>> report = adapt_model(AdaptSettings(name="banding", lq=Path("my/lq"), gt=Path("my/gt"),  # doctest: +SKIP
    ...     base="universal-ir", root=Path("datasets/universal"), out=Path("models/banding")))
    >>> report.forgetting["ok"], report.new["after"]["psnr"]  # doctest: +SKIP
"""

from __future__ import annotations

from .._lazy import lazy_exports

_LAZY = {
    "AdaptSettings": "workflow",
    "adapt_model": "workflow",
    "AdaptReport": "report",
    "forgetting": "report",
    "Analysis": "preflight",
    "Plan": "preflight",
    "analyse_folders": "preflight",
    "decide": "preflight",
}

__all__ = list(_LAZY)

__getattr__ = lazy_exports(__name__, _LAZY, globals())
