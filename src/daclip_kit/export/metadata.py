"""What an exported graph says about itself (torch-free apart from a denoiser's sampler).

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
  ``mr_schedule``'s ``alpha``/``sigma`` at ``t``), ``sampler`` (``{"name", "config"}``: the sampler
  ``daclip-kit restore --weights`` runs the network with, its config complete: the record of the
  native folder the network came from, e.g. a plain IR-SDE model's ``irsde`` posterior or a
  distilled student's K-step ``mrs``, else the network's registered sampler with its defaults;
  ``create_sampler(name, **config)`` rebuilds it), ``steps`` (the network evaluations of such a
  run), ``sde`` (``max_sigma, T, schedule, eps, lam`` of that sampler) and ``mr_schedule`` (the
  schedule the sampler runs on, at the integer steps ``0..T``: ``t``, ``alpha``, ``sigma``,
  ``lambda``, and ``keep_theta_0``: ``true`` for the MRS code's SDE, ``false`` for the training
  SDE of IR-SDE and of ``training_schedule`` runs, where ``alpha_0 = 1``, ``sigma_0 = 0`` and
  ``lambda_0`` is infinite, written ``null``);
* encoders: ``preprocess`` (``image_size``, ``mean``, ``std`` and the resize rule).
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, is_dataclass
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


def denoiser_sampling(trained: dict[str, Any] | None, default: str = "irsde") -> dict[str, Any]:
    """``sampler``, ``steps``, ``sde`` and ``mr_schedule`` metadata of a denoiser.

    Args:
        trained: ``{"name", "config"}`` of the sampler a native folder records (what ``restore
            --weights FOLDER`` runs: a plain model's ``irsde``, a distilled student's K-step
            ``mrs``), or ``None``: the sampler ``default`` with its defaults (the official SDE,
            ``max_sigma 50, T 100, cosine, eps 0.005``).
        default: the network's registered sampler (used when nothing is recorded).

    Raises:
        ConfigError: a recorded sampler whose config its sampler refuses.
    """
    from ..factory import create_sampler
    from ..samplers.mrs.schedule import make_mr_schedule

    record = trained or {"name": default, "config": {}}
    name = str(record["name"])
    sampler = create_sampler(name, **dict(record.get("config") or {}))
    own = sampler.config
    config = asdict(own) if is_dataclass(own) and not isinstance(own, type) else dict(record.get("config") or {})
    if "num_sample_steps" in config and config["num_sample_steps"] is None:
        config["num_sample_steps"] = int(sampler.default_steps)  # the count a run without steps= takes
    sde = {k: config.get(k, official) for k, official in zip(SDE_KEYS, (50.0, 100, "cosine", 0.005), strict=True)}
    lam = sde["max_sigma"] / 255 if sde["max_sigma"] >= 1 else sde["max_sigma"]
    keep = bool(getattr(sampler.config, "keeps_theta_0", False))  # IR-SDE: the training SDE (theta_0 subtracted)
    sched = make_mr_schedule(lam, int(sde["T"]), sde["schedule"], sde["eps"], keep_theta_0=keep)
    lambdas = [v if math.isfinite(v) else None for v in sched.lambda_array.tolist()]
    return {
        "sampler": {"name": name, "config": config},
        "steps": len(sampler.timesteps(None)),
        "sde": {**sde, "lam": lam},
        "mr_schedule": {"t": sched.t_array.tolist(), "alpha": sched.alpha_array.tolist(),
                        "sigma": sched.sigma_array.tolist(), "lambda": lambdas, "keep_theta_0": keep},
    }
