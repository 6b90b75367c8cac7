"""``daclip-kit adapt``: two folders of pairs to a model that removes their degradation.

:func:`adapt_model` runs, in order:

1. **resolve** the base model (``--from``: any reference the one resolver takes) with its DA-CLIP;
2. **preflight** the pairs (:mod:`.preflight`): objective, continue or anew, learning rate, replay;
3. **add** the pairs to the data root as the new degradation (as ``data add``);
4. **measure before**: the val pairs of the new degradation and of each degradation the base
   restorer was trained on (its provenance's ``data.degradations``; every word of its DA-CLIP where it
   does not say, as for the released models) restored by the base model, and how its DA-CLIP names
   every word's val images (the new one is not among its words: its unknown-degradation check
   should flag it);
5. **continue DA-CLIP** with the new word (:func:`.runs.daclip_run`); its last validation calibrates
   the unknown-degradation check on the val images of every word;
6. **adapt the restorer** conditioned on that DA-CLIP (:func:`.runs.restorer_run`), validating as it
   goes; the best checkpoint by val PSNR is kept;
7. **write OUT** as one model: ``network-ema/`` (the restorer, recording ``../daclip``), ``daclip/``
   and ``model_index.json`` (written last: a folder without it is not a model yet);
8. **measure after** and check that nothing was forgotten (:func:`.report.forgetting`); write
   ``OUT/report.json``.

The training runs stay in ``OUT/runs/{daclip,restorer}`` (metrics, TensorBoard, validation images).
"""

from __future__ import annotations

import logging
import os
import shutil
import time
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from ..errors import ConfigError, InputError
from ..types import DEGRADATIONS
from .report import REPORT_NAME, AdaptReport, forgetting

log = logging.getLogger(__name__)

#: The folders of OUT that hold the model (the rest, ``runs/`` and ``report.json``, is its record).
RESTORER_DIR = "network-ema"
DACLIP_DIR = "daclip"
RUNS_DIR = "runs"
#: The from-scratch learning rates of the restorer recipes by network width: the tiny recipe's
#: (``irsde_tiny``, nf 32) and the official one (``irsde_official``, nf 64).
SMALL_NETWORK_LR = 1e-3


@dataclass(frozen=True)
class AdaptSettings:
    """What ``daclip-kit adapt`` was asked (its flags; see ``daclip-kit adapt --help``).

    Attributes:
        name: the new degradation's word.
        lq: the user's degraded images.
        gt: their clean versions, matched by file stem.
        base: the model to adapt (``--from``): a registry name, released file, run folder, ``hf://``...
        root: the data root holding the known degradations (replayed) that receives ``name``.
        out: the adapted model's folder (new, or empty).
        steps: the restorer's training steps.
        daclip_steps: DA-CLIP's (``None``: from ``steps`` and the preflight's ratio).
        val: pairs of the new degradation held out for validation and the report (``None``: 10%).
        val_fraction: the share held out instead of ``val`` (as ``data add --val-fraction``).
        daclip_weights: the DA-CLIP of a base model that records none (``None``: the recipe's).
        choices: preflight choices set by hand (``objective``, ``init``, ``lr``, ``new_share``,
            ``daclip_steps_ratio``).
        daclip_set: ``section.key=value`` overrides of the DA-CLIP run's config.
        restorer_set: the same for the restorer run.
        device: ``"auto"``, ``"cpu"``, ``"cuda"``.
        eval_steps: sampler steps when restoring for validation and the report (``None``: the model's).
        eval_limit: val pairs per known degradation restored for the report (``None``: all).
        seed: seeds the val draw and both runs.
        overwrite: replace ``name`` in ``root`` and an earlier ``adapt`` output in ``out``.
        captions: as ``data add --captions``.
        link: as ``data add --link``.
        skip_bad: as ``data add --skip-bad``.
        search_dirs: folders searched first for named weights.
    """

    name: str
    lq: Path
    gt: Path
    base: str
    root: Path
    out: Path
    steps: int = 2000
    daclip_steps: int | None = None
    val: int | None = None
    val_fraction: float | None = None
    daclip_weights: str | None = None
    choices: Mapping[str, Any] = field(default_factory=dict)
    daclip_set: tuple[str, ...] = ()
    restorer_set: tuple[str, ...] = ()
    device: str = "auto"
    eval_steps: int | None = None
    eval_limit: int | None = 8
    seed: int = 0
    overwrite: bool = False
    captions: str = "auto"
    link: bool = False
    skip_bad: bool = False
    search_dirs: tuple[str, ...] = ()


def check_out(out: Path, overwrite: bool) -> None:
    """Refuse an ``out`` that holds anything but an earlier ``adapt`` output (never removing a
    user's files); with ``overwrite`` an earlier output is removed.

    Raises:
        InputError: ``out`` is a file, holds other files, or an earlier output without ``overwrite``.
    """
    if out.exists() and not out.is_dir():
        raise InputError(f"--out {str(out)!r} is a file; give a new folder for the adapted model.")
    if not out.is_dir() or not any(out.iterdir()):
        return
    ours = {RESTORER_DIR, DACLIP_DIR, RUNS_DIR, REPORT_NAME, "model_index.json"}
    others = sorted(p.name for p in out.iterdir() if p.name not in ours)
    if others:
        raise InputError(f"--out {str(out)!r} holds files that adapt did not write ({', '.join(others[:3])}); give a "
                         "new or empty folder.")
    if not overwrite:
        raise InputError(f"--out {str(out)!r} holds an earlier adapted model; pass --overwrite to replace it or "
                         "give a new folder.")
    for child in out.iterdir():
        shutil.rmtree(child) if child.is_dir() and not child.is_symlink() else child.unlink()


def _train_images(root: Path, names: list[str]) -> tuple[int, int]:
    """``(pairs, smallest side)`` of the training LQ images of ``names`` (sides read from the first
    64 of each folder)."""
    from PIL import Image

    side, count = None, 0
    for name in names:
        files = sorted(p for p in (root / "train" / name / "LQ").iterdir() if p.is_file())
        count += len(files)
        for path in files[:64]:
            with Image.open(path) as im:
                side = min(side or min(im.size), min(im.size))
    if side is None:
        raise InputError(f"{root}/train has no images of {', '.join(names)}; nothing to train on.")
    return count, side


def _trained_on(provenance: Mapping[str, Any], words: tuple[str, ...]) -> tuple[str, ...]:
    """The degradations the base restorer was trained on, as its provenance records them (a
    `train restoration` run's ``data.degradations``), among ``words``; all of ``words`` where it does
    not say (the released models: the ten)."""
    data = provenance.get("data")
    recorded = data.get("degradations") if isinstance(data, Mapping) else None
    if not isinstance(recorded, (list, tuple)) or not recorded:
        return words
    return tuple(w for w in words if w in recorded) or words


def _csv_rows(root: Path) -> int:
    path = root / "daclip_train.csv"
    if not path.is_file():
        raise InputError(f"{path} is missing: DA-CLIP trains on it; add the known degradations with "
                         "`daclip-kit data add` or `daclip-kit data prepare` first.")
    return max(0, sum(1 for line in path.read_text(encoding="utf-8").splitlines() if line.strip()) - 1)


def _vision_width(daclip: Path) -> int | None:
    from ..checkpoint import read_json_config
    from ..model.unit import is_native_dir

    if not is_native_dir(daclip):
        return None  # a released file: the ViT-B/32 and up
    config = read_json_config(daclip).get("config", {})
    vision = (config.get("model_config") or {}).get("vision_cfg") or {}
    width = vision.get("width")
    return int(width) if isinstance(width, int) else None


def _link_tree(source: Path, target: Path) -> None:
    """``target`` becomes a copy of the folder ``source`` (files hard-linked where possible),
    placed by one rename."""
    from ..train.pairing import link_or_copy

    staging = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    if staging.exists():
        shutil.rmtree(staging)
    shutil.copytree(source, staging, copy_function=lambda s, d: link_or_copy(Path(s), Path(d)))
    os.replace(staging, target)


def write_model(out: Path, checkpoint: Path, provenance: Mapping[str, Any]) -> Path:
    """OUT as one model: the checkpoint's restorer (EMA) and its DA-CLIP, then the index."""
    from ..model.unit import write_index

    for name in (RESTORER_DIR, DACLIP_DIR):
        if not (checkpoint / name).is_dir():
            raise InputError(f"{checkpoint} has no {name}/ folder; the restorer run did not save a whole model.")
        _link_tree(checkpoint / name, out / name)
    return write_index(out / "model_index.json", RESTORER_DIR, DACLIP_DIR, provenance)


def adapt_model(settings: AdaptSettings, *, say: Callable[[str], None] = log.info) -> AdaptReport:
    """Adapt ``settings.base`` to the degradation of the pairs ``settings.lq``/``settings.gt`` (the
    module docstring lists the steps); ``say`` receives one line per step and the preflight's.

    Returns:
        the :class:`~daclip_kit.adapt.report.AdaptReport` (also written to ``OUT/report.json``).

    Raises:
        InputError: bad folders or pairs (all problems of the pairs at once, as ``data add``), an
            ``out`` that is not new, a name the model already knows.
        ConfigError: a bad choice or override; a base that is a DA-CLIP alone or has no DA-CLIP.
        WeightsNotFoundError: a base model that cannot be found or downloaded.
    """
    from ..data.add import add_degradation, check_name
    from ..model import pair, provide, resolve_model
    from ..pipelines.recipe import get_recipe
    from ..train.checkpoints import read_best, step_dir
    from ..train.daclip import train_daclip
    from ..train.restoration import train_restoration
    from .evaluation import input_scores, naming, restoration_scores, val_sets
    from .preflight import BASE_LR, preflight, report_lines
    from .runs import DataFacts, daclip_run, daclip_steps, restorer_run

    s = settings
    check_name(s.name)
    if s.steps < 1:
        raise ConfigError(f"--steps must be at least 1, got {s.steps}.")
    out = Path(s.out)
    check_out(out, s.overwrite)
    seconds: dict[str, float] = {}
    clock = time.perf_counter()

    def lap(name: str) -> None:
        nonlocal clock
        now = time.perf_counter()
        seconds[name] = round(now - clock, 1)
        clock = now

    say(f"base model: resolving {s.base}")
    unit = resolve_model(s.base, search_dirs=s.search_dirs)
    if unit.is_daclip:
        raise ConfigError(f"--from {s.base} is a DA-CLIP alone; give a restorer (a DA-CLIP-conditioned IR-SDE such "
                          "as universal-ir, or a `train restoration` run).")
    if unit.unconditioned:
        raise ConfigError(f"--from {s.base} was trained without DA-CLIP; adapt needs a DA-CLIP-conditioned restorer "
                          "(train one without DA-CLIP on your data with `daclip-kit train restoration`).")
    paired = pair(unit, s.daclip_weights, get_recipe("irsde-universal").embedder_weights or None,
                  search_dirs=s.search_dirs)
    unit, paired = provide(unit, paired, download=True, search_dirs=s.search_dirs)
    if paired is None or paired.path is None or unit.network is None:
        raise ConfigError(f"--from {s.base}: its DA-CLIP could not be found; pass --daclip-weights REF.")
    base_words = tuple(paired.words or DEGRADATIONS)
    if s.name in base_words:
        raise InputError(f"{s.name!r} is already one of the model's degradation words ({', '.join(base_words)}); "
                         "choose a new word for your degradation.")
    base_daclip = paired.path
    restored_words = _trained_on(unit.provenance, base_words)
    lap("resolve")

    prediction = str(unit.network_config.get("prediction", "noise"))
    nf = unit.network_config.get("nf")
    base_lr = SMALL_NETWORK_LR if isinstance(nf, int) and nf < 64 else BASE_LR
    analysis, plan = preflight(s.lq, s.gt, s.choices, model_prediction=prediction, base_lr=base_lr,
                               skip_bad=s.skip_bad)
    for line in report_lines(analysis, plan):
        say(line)
    lap("preflight")

    root = Path(s.root)
    added = add_degradation(s.name, s.lq, s.gt, root, val=s.val, val_fraction=s.val_fraction, link=s.link,
                            overwrite=s.overwrite, skip_bad=s.skip_bad, captions=s.captions, seed=s.seed)
    say(f"data: {added.counts.get('train', 0)} train and {added.counts.get('val', 0)} val pairs of {s.name} "
        f"added to {root}")
    new_sets = val_sets(root, [s.name])
    if not new_sets:
        raise ConfigError(f"No val pair of {s.name} was held out, so the adapted model cannot be measured; "
                          "pass --val N (at least 1) with more pairs.")
    known_sets = val_sets(root, list(restored_words))  # restored before and after (nothing forgotten)
    named_sets = val_sets(root, list(base_words))  # named by DA-CLIP before and after
    known_train = [w for w in restored_words if (root / "train" / w / "LQ").is_dir()]
    pairs, side = _train_images(root, [*known_train, s.name])
    facts = DataFacts(root=root, new=s.name, known=tuple(known_train), train_rows=_csv_rows(root),
                      train_pairs=pairs, min_side=side)
    everything = {**known_sets, **new_sets}
    to_name = {**named_sets, **new_sets}
    lap("data")

    say(f"before: restoring the val pairs of {len(everything)} degradations with the base model")
    inputs = input_scores(everything, limit=s.eval_limit)
    before = restoration_scores(s.base, everything, device=s.device, limit=s.eval_limit, steps=s.eval_steps,
                                seed=s.seed, daclip=s.daclip_weights)
    named_before = naming(base_daclip, to_name, device=s.device, limit=s.eval_limit)
    lap("measure_before")

    d_steps = daclip_steps(s.steps, plan, s.daclip_steps)
    say(f"DA-CLIP: continuing {base_daclip} with {s.name!r} for {d_steps} steps")
    d_cfg = daclip_run(base_daclip, facts, out / RUNS_DIR / "daclip", steps=d_steps, device=s.device, seed=s.seed,
                       width=_vision_width(base_daclip), user=s.daclip_set)
    d_result = train_daclip(d_cfg)
    assert d_result.checkpoint is not None  # the last step is always saved
    new_daclip = d_result.checkpoint / DACLIP_DIR
    lap("train_daclip")

    val_every = max(1, s.steps // 4)
    val_count = min(16, 2 * (len(known_train) + 1))  # round-robin over the run's degradation folders
    say(f"restorer: {plan.init} ({plan.objective} prediction) for {s.steps} steps, lr {plan.lr:g}")
    r_cfg = restorer_run(unit, new_daclip, plan, facts, out / RUNS_DIR / "restorer", steps=s.steps,
                         device=s.device, seed=s.seed, val_count=val_count, val_every=val_every,
                         eval_steps=s.eval_steps, user=s.restorer_set)
    r_result = train_restoration(r_cfg)
    best = read_best(r_result.out_dir)
    checkpoint = step_dir(r_result.out_dir, int(best["step"])) if best else r_result.checkpoint
    assert checkpoint is not None
    lap("train_restorer")

    provenance = {"adapted_from": s.base, "degradation": s.name, "checkpoint": str(checkpoint),
                  "best": best, "preflight": plan.to_dict()}
    write_model(out, checkpoint, provenance)
    say(f"model: {out} (restorer of {checkpoint.name} and its DA-CLIP)")

    after = restoration_scores(out, everything, device=s.device, limit=s.eval_limit, steps=s.eval_steps,
                               seed=s.seed)
    named_after = naming(out / DACLIP_DIR, to_name, device=s.device, limit=s.eval_limit)
    lap("measure_after")

    report = AdaptReport(
        name=s.name, base=s.base, out=out,
        preflight={"analysis": analysis.to_dict(pairs=False), "plan": plan.to_dict()},
        data=added.to_dict(),
        new={"input": inputs[s.name], "before": before[s.name], "after": after[s.name],
             "pairs": min(len(list(new_sets[s.name].lq.iterdir())), s.eval_limit or 10**9)},
        known={w: {"input": inputs[w], "before": before[w], "after": after[w]} for w in known_sets},
        forgetting=forgetting({w: inputs[w] for w in known_sets}, {w: before[w] for w in known_sets},
                              {w: after[w] for w in known_sets}),
        naming={"before": named_before, "after": named_after},
        calibration=resolve_model(out).calibration,
        runs={"daclip": str(d_result.out_dir), "restorer": str(r_result.out_dir), "checkpoint": str(checkpoint)},
        seconds=seconds, settings={k: (str(v) if isinstance(v, Path) else v) for k, v in asdict(s).items()})
    report.write()
    return report
