"""The model card (``README.md``) that ``daclip-kit push`` writes beside the weights.

Hub model-card YAML front matter (``license``, ``library_name: daclip-kit``, ``tags``,
``pipeline_tag``), then: how to use the weights, the architecture and its config, the sampler
settings the network was trained with, a summary of the training run (data, steps, settings) and
its last validation metrics when the folder came from a run, the architecture's licence and the
BibTeX of the papers (DA-CLIP, IR-SDE and the backbone's own). Torch-free.
"""

from __future__ import annotations

import contextlib
import json
import re
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

from .. import papers
from ..plugins import get_registry
from .folders import PushPlan

#: SPDX-style licences the Hub knows by id; anything else is ``other`` with a name.
_HUB_LICENSES = {"mit": "mit", "apache-2.0": "apache-2.0", "bsd-3-clause": "bsd-3-clause",
                 "bsd-2-clause": "bsd-2-clause", "cc-by-4.0": "cc-by-4.0"}


def _spec(kind: str, name: str):
    registry = get_registry(kind)
    return registry.get(name) if name in registry else None


def _hub_license(text: str) -> dict[str, str]:
    key = text.strip().lower()
    if key in _HUB_LICENSES:
        return {"license": _HUB_LICENSES[key]}
    slug = re.sub(r"[^a-z0-9]+", "-", key).strip("-")[:60] or "unknown"
    return {"license": "other", "license_name": slug}


def _yaml_list(values: list[str]) -> str:
    return "\n".join(f"- {json.dumps(v)}" for v in values)


def _json_block(obj: Mapping[str, Any]) -> str:
    """A JSON object, one top-level key per line."""
    rows = [f"  {json.dumps(str(k))}: {json.dumps(v, sort_keys=True, default=str)}" for k, v in sorted(obj.items())]
    return "```json\n{\n" + ",\n".join(rows) + "\n}\n```"


def read_run_summary(run_dir: Path | None, step: int | None) -> dict[str, Any]:
    """What a training run folder says about the weights: ``config`` (the parsed ``config.toml``),
    ``train`` (the last logged training record up to ``step``) and ``val`` (the last validation
    record up to ``step``). Missing or unreadable files give empty entries."""
    out: dict[str, Any] = {"config": {}, "train": {}, "val": {}}
    if run_dir is None:
        return out
    with contextlib.suppress(OSError, UnicodeDecodeError, tomllib.TOMLDecodeError):
        out["config"] = tomllib.loads((run_dir / "config.toml").read_text(encoding="utf-8"))
    try:
        lines = (run_dir / "metrics.jsonl").read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError):
        lines = []
    for line in lines:
        try:
            record = json.loads(line)
            at = int(record["step"])
        except (ValueError, TypeError, KeyError):
            continue
        if step is not None and at > step:
            continue
        if any(k.startswith("val_") for k in record):
            out["val"] = {k: v for k, v in record.items() if k == "step" or k.startswith("val_")}
        if "loss" in record:
            out["train"] = {k: v for k, v in record.items() if not k.startswith("val_")}
    return out


def _data_summary(config: Mapping[str, Any]) -> list[str]:
    data = config.get("data", {})
    if not isinstance(data, Mapping):
        return []
    rows = []
    if data.get("root"):
        rows.append(f"data set folder `{Path(str(data['root'])).name}` (split `{data.get('split', 'train')}`)")
    if data.get("degradations"):
        rows.append("degradations: " + ", ".join(f"`{d}`" for d in data["degradations"]))
    for key, label in (("patch_size", "patch size"), ("batch_size", "batch size")):
        if data.get(key) is not None:
            rows.append(f"{label}: {data[key]}")
    return rows


def _run_section(plan: PushPlan, summary: dict[str, Any]) -> str:
    config, train, val = summary["config"], summary["train"], summary["val"]
    if plan.run_dir is None and not config:
        return ""
    lines = ["## Training", ""]
    if plan.step is not None:
        total = config.get("max_steps")
        lines.append(f"- steps trained: {plan.step:,}" + (f" of {int(total):,} planned" if total else ""))
    lines += [f"- {row}" for row in _data_summary(config)]
    for key in ("loss", "objective", "precision", "seed"):
        if key in config:
            lines.append(f"- {key}: `{config[key]}`")
    optim = config.get("optim", {})
    if isinstance(optim, Mapping) and "lr" in optim:
        lines.append(f"- learning rate: {optim['lr']}")
    embedder = config.get("embedder", {})
    if isinstance(embedder, Mapping) and embedder.get("name"):
        weights = embedder.get("weights")
        shown = f" with weights `{Path(str(weights)).name}`" if weights and weights != "none" else ""
        lines.append(f"- conditioning embedder: `{embedder['name']}`{shown}")
    if train.get("loss") is not None:
        lines.append(f"- last logged training loss: {train['loss']:.6g} (step {train['step']})")
    if val:
        lines += ["", "### Validation", "", "| metric | value |", "|---|---|"]
        lines += [f"| {k.removeprefix('val_')} | {v:.6g} |" if isinstance(v, float) else
                  f"| {k.removeprefix('val_')} | {v} |" for k, v in val.items() if k != "step"]
        lines.append(f"\nMeasured at step {val['step']} on the run's validation split.")
    return "\n".join(lines) + "\n"


def _usage(plan: PushPlan, repo_id: str, name: str, is_embedder: bool) -> list[str]:
    """The card's "Use" section: one command that runs the model as it was pushed."""
    ref = f"hf://{repo_id}"
    if is_embedder:
        command = f"daclip-kit classify IMAGES --weights {ref}"
        extra = (f"With a restorer conditioned on it: `daclip-kit restore IMAGES -o OUT --weights RESTORER "
                 f"--daclip-weights {ref}`; `[embedder] weights` of a run file takes the reference too.")
    else:
        # irsde-universal is restore's default model: its U-Net needs no --model
        model_flag = "" if name == "irsde-unet" else f" --model {name}"
        if plan.index is None and plan.models[0].repo_path:
            ref += f"/{plan.models[0].repo_path}"
        command = f"daclip-kit restore IMAGES -o OUT{model_flag} --weights {ref}"
        extra = ("The DA-CLIP it was trained with comes with it (`daclip/`, named in `model_index.json`): no "
                 "`--daclip-weights` is needed." if plan.index is not None else
                 "Any daclip-kit option that takes a model takes this reference.")
    return ["```bash", command, "```", "", f"{extra} In Python: `daclip_kit.load(\"{ref}\")`. Files are cached "
            "under `$DACLIP_KIT_CACHE/hub`.", ""]


def model_card(plan: PushPlan, repo_id: str) -> str:
    """The ``README.md`` text for the weights ``plan`` uploads to ``repo_id``."""
    first = plan.models[0].info
    kind = first.component
    spec = _spec(kind, first.name)
    is_embedder = kind == "embedders"
    denoiser = getattr(spec, "kind", "") == "denoiser"
    license_text = getattr(spec, "license", "") or "unknown"
    summary = read_run_summary(plan.run_dir, plan.step)

    tags = ["daclip-kit", "image-restoration", first.name] + (["diffusion"] if denoiser else [])
    tags += ["da-clip"] if is_embedder or "degradation" in getattr(spec, "accepts", ()) else []
    meta = _hub_license(license_text)
    front = ["---", *(f"{k}: {json.dumps(v)}" for k, v in meta.items()), "library_name: daclip-kit",
             "tags:", _yaml_list(list(dict.fromkeys(tags))),
             f"pipeline_tag: {'image-feature-extraction' if is_embedder else 'image-to-image'}", "---", ""]

    what = "DA-CLIP embedder" if is_embedder else ("diffusion denoiser" if denoiser else "one-shot restoration network")
    body = [f"# {repo_id.split('/')[-1]}", "",
            f"A `{first.name}` {what} in daclip-kit's native format (`config.json` + `model.safetensors`), "
            "uploaded with `daclip-kit push`.", "", "## Use", ""]
    body += _usage(plan, repo_id, first.name, is_embedder)

    body += ["## Architecture", "", f"- network: `{first.name}` ({kind[:-1]})"]
    if spec is not None and spec.summary:
        body.append(f"- {spec.summary}")
    body += ["", _json_block(first.config), ""]
    if first.sampler:
        body += ["## Sampler", "", "The sampler settings the network was trained with (`restore` uses them):", "",
                 _json_block(first.sampler), ""]
    run = _run_section(plan, summary)
    if run:
        body.append(run)
    body += ["## License", "",
             f"The `{first.name}` architecture's reference code is under: {license_text}. "
             "These weights were trained with daclip-kit (MIT); check the licences of the training data as well.", ""]
    cites = [papers.DACLIP, papers.IRSDE]
    own = getattr(spec, "citation", "")
    if own and own not in cites:
        cites.append(own)
    body += ["## Citation", "", "```bibtex", "\n\n".join(cites), "```", ""]
    return "\n".join(front) + "\n".join(body)
