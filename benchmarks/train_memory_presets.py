"""Memory presets of the official training recipes for 12, 24 and 80 GiB GPUs (estimates).

For ``irsde_official`` and ``daclip_official`` the models are built on the ``meta`` device (the
official sizes, no weights, no data) and :func:`daclip_kit.train.memory.estimate_training_memory`
gives the recipe's estimate; for each budget, :func:`~daclip_kit.train.memory.settings_that_fit`
lists the settings that fit it. Attention is modelled with the fused kernels (the choice PyTorch
makes on the CPU here, and on CUDA for these head sizes and dtypes). Usage::

    python benchmarks/train_memory_presets.py            # a Markdown table (docs/train.md)
    python benchmarks/train_memory_presets.py --json presets.json
"""

from __future__ import annotations

import argparse
import copy
import json
from pathlib import Path
from types import SimpleNamespace

import torch

BUDGETS_GIB = (12, 24, 80)
#: Kernel choice as on a CUDA GPU: the fused kernels (see daclip_kit.ops.memory).
DEVICE = torch.device("cpu")


def restoration_task(cfg):
    """The memory-relevant part of a :class:`~daclip_kit.train.restoration.RestorationTask` of ``cfg``."""
    from daclip_kit.embedders.daclip.architectures import model_config
    from daclip_kit.embedders.daclip.model import DaCLIP
    from daclip_kit.factory import create_backbone
    from daclip_kit.train.restoration import RestorationTask

    with torch.device("meta"):
        net = create_backbone(cfg.network.name, **dict(cfg.network.options))
        ema = copy.deepcopy(net)
        embedder = DaCLIP.from_config(model_config(cfg.embedder.options.get("model", "daclip_ViT-B-32")))
    task = SimpleNamespace(net=net, ema=SimpleNamespace(model=ema), embedder=embedder, denoiser=True)
    task.trainable = lambda: list(net.named_parameters())
    task.memory_trace = lambda c, m: RestorationTask.memory_trace(task, c, m)
    task.checkpoint_units = lambda: RestorationTask.checkpoint_units(task)
    return task


def daclip_task(cfg):
    """The memory-relevant part of a :class:`~daclip_kit.train.daclip.DaClipTask` of ``cfg``."""
    from daclip_kit.embedders.daclip.architectures import model_config
    from daclip_kit.embedders.daclip.model import DaCLIP
    from daclip_kit.train.daclip import DaClipTask

    with torch.device("meta"):
        model = DaCLIP.from_config(cfg.model.model_config or model_config(cfg.model.name)).lock_clip()
    task = SimpleNamespace(model=model)
    task.trainable = lambda: [(n, p) for n, p in model.named_parameters() if p.requires_grad]
    task.memory_trace = lambda c, m: DaClipTask.memory_trace(task, c, m)
    task.checkpoint_units = lambda: DaClipTask.checkpoint_units(task)
    return task


def presets() -> list[dict]:
    from daclip_kit.train.config import load_run_config
    from daclip_kit.train.memory import FIT_FRACTION, estimate_training_memory, settings_that_fit

    rows = []
    for kind, recipe, build in (("restoration", "irsde_official", restoration_task),
                                ("daclip", "daclip_official", daclip_task)):
        cfg = load_run_config(kind, recipe)
        task = build(cfg)
        est = estimate_training_memory(task, cfg, DEVICE)
        row = {"recipe": recipe, "estimate": est.describe(), "total_gib": est.total / 2**30, "budgets": {}}
        for gib in BUDGETS_GIB:
            budget = gib * 2**30
            if est.total <= budget * FIT_FRACTION:
                row["budgets"][gib] = [{"set": [], "total_gib": est.total / 2**30}]
                continue
            row["budgets"][gib] = [{"set": o, "total_gib": e.total / 2**30}
                                   for o, e in settings_that_fit(task, cfg, DEVICE, 1, budget)]
        rows.append(row)
    return rows


def markdown(rows: list[dict]) -> str:
    lines = ["| recipe | estimate as published | " + " | ".join(f"{g} GiB GPU" for g in BUDGETS_GIB) + " |",
             "|---|---|" + "---|" * len(BUDGETS_GIB)]
    for row in rows:
        cells = []
        for gib in BUDGETS_GIB:
            options = row["budgets"][str(gib)] if str(gib) in row["budgets"] else row["budgets"][gib]
            shown = [("as published" if not o["set"] else " ".join(f"`{s}`" for s in o["set"]))
                     + f" (~{o['total_gib']:.1f} GiB)" for o in options[:3]]
            cells.append("<br>".join(shown) or "nothing fits")
        lines.append(f"| `{row['recipe']}` | ~{row['total_gib']:.1f} GiB | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--json", type=Path, help="also write the rows here")
    args = parser.parse_args()
    rows = presets()
    for row in rows:
        print(f"{row['recipe']}: {row['estimate']}")
    print(markdown(rows))
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2) + "\n")


if __name__ == "__main__":
    main()
