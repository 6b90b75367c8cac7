"""What an exported graph says about itself (torch-free apart from the schedule).

Every exported file carries one flat ``{key: string}`` map (JSON values as strings): in an ONNX
file its ``metadata_props`` (ONNX Runtime: ``session.get_modelmeta().custom_metadata_map``), in a
TorchScript file the extra file ``daclip_kit.json``, in a ``.pt2`` file the extra file
``daclip_kit.json``. Keys (all prefixed ``daclip_kit.``):

* ``format`` (``daclip-kit-export/1``), ``model`` (registry name), ``graph`` (``backbone``,
  ``denoiser`` or ``encoder``), ``exporter``, ``version``;
* ``inputs`` / ``outputs``: JSON lists of ``{"name", "role", "shape"}`` in graph order;
* ``size_divisor``, ``pad_mode``, ``padding`` (``"inside"``: the graph pads and crops itself);
* denoisers: ``context_dim``, ``prediction`` (``noise``, or ``clean``: the output is the clean
  image and a runner turns it into noise, ``(x_t - lq - alpha_t (clean - lq)) / sigma_t`` with
  ``mr_schedule``'s ``alpha``/``sigma`` at ``t``), ``sde`` (``max_sigma, T, schedule, eps,
  lam``), ``mr_schedule`` (the MRS schedule on the integer steps ``0..T``: ``t``, ``alpha``, ``sigma``, ``lambda``) and
  ``sampler`` (the MRS settings a run uses by default);
* encoders: ``preprocess`` (``image_size``, ``mean``, ``std`` and the resize rule).
"""

from __future__ import annotations

import json
from dataclasses import asdict
from typing import Any

FORMAT = "daclip-kit-export/1"
PREFIX = "daclip_kit."
#: Name of the metadata file inside TorchScript and ``.pt2`` archives.
EXTRA_FILE = "daclip_kit.json"
#: SDE settings a denoiser's schedule is built from.
SDE_KEYS = ("max_sigma", "T", "schedule", "eps")


def flatten(meta: dict[str, Any]) -> dict[str, str]:
    """``{"daclip_kit.<key>": string}``: strings kept, everything else as JSON."""
    return {PREFIX + k: v if isinstance(v, str) else json.dumps(v) for k, v in meta.items()}


def unflatten(props: dict[str, str]) -> dict[str, Any]:
    """Inverse of :func:`flatten` for the ``daclip_kit.`` keys (JSON values decoded)."""
    out: dict[str, Any] = {}
    for key, value in props.items():
        if not key.startswith(PREFIX):
            continue
        try:
            out[key[len(PREFIX):]] = json.loads(value)
        except json.JSONDecodeError:
            out[key[len(PREFIX):]] = value
    return out


def denoiser_sampling(trained: dict[str, Any] | None) -> dict[str, Any]:
    """``sde``, ``mr_schedule`` and ``sampler`` metadata of a denoiser.

    Args:
        trained: ``{"name", "config"}`` of the sampler the network was trained with (a native
            folder's record), or ``None`` for the official SDE (``max_sigma 50, T 100, cosine,
            eps 0.005``). Its SDE settings are kept; the MRS settings are the ``mrs`` defaults.
    """
    from ..samplers.mrs.config import MRSConfig
    from ..samplers.mrs.schedule import make_mr_schedule

    recorded = dict((trained or {}).get("config", {}))
    cfg = MRSConfig(**{k: recorded[k] for k in SDE_KEYS if k in recorded})
    sched = make_mr_schedule(cfg.lam, cfg.T, cfg.schedule, cfg.eps)
    settings = {k: v for k, v in asdict(cfg).items() if k not in (*SDE_KEYS, "algorithm")}
    settings["num_sample_steps"] = cfg.num_sample_steps or 10
    return {
        "sde": {**{k: getattr(cfg, k) for k in SDE_KEYS}, "lam": cfg.lam},
        "mr_schedule": {"t": sched.t_array.tolist(), "alpha": sched.alpha_array.tolist(),
                        "sigma": sched.sigma_array.tolist(), "lambda": sched.lambda_array.tolist()},
        "sampler": {"name": "mrs", "config": settings},
    }
