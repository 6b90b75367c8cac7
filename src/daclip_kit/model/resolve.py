"""The one model resolver: any reference -> :class:`~daclip_kit.model.unit.ModelUnit` (torch-free).

Reference kinds (:data:`~daclip_kit.model.unit.REFERENCE_KINDS`): a registered weights name, a
released file, a native folder, a model folder (``model_index.json``), a training checkpoint
folder, a training run folder (its newest checkpoint) and ``hf://OWNER/NAME[@REV][/SUB]`` (any of
the folder kinds on the Hub, cached under ``$DACLIP_KIT_CACHE/hub``). A distilled student is a
native folder like any other; its K-step sampler comes with it.

Files are found by :func:`daclip_kit.weights.fetch.find_weights` (``--weights-dir`` folders, the
cache, plugins); named weights missing locally stay :class:`~daclip_kit.specs.WeightSpec` entries
of the unit so that a verb downloads everything it needs together, or names it all in one error
(:func:`provide`). A DA-CLIP recorded by a restorer is looked up where the record says (beside it in
the same checkpoint, model folder or Hub repository; by name; by ``hf://``) and checked against its
recorded SHA-256; it is never replaced by the released DA-CLIP.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import replace
from pathlib import Path, PurePosixPath
from typing import Any

from ..checkpoint import read_json_config
from ..errors import CheckpointError, ConfigError, WeightsNotFoundError
from ..options import option
from ..specs import WeightSpec
from ..weights.fetch import find_weights, is_path_like, provide_weights
from ..weights.hub import is_hub_ref
from .unit import (
    MODEL_INDEX,
    ModelIndex,
    ModelUnit,
    PairedDaclip,
    daclip_facts,
    is_native_dir,
    read_index,
    read_record,
    weights_sha256,
)

#: How Python callers give a DA-CLIP (messages name ``--daclip-weights`` under the verbs that have it).
GIVE_DACLIP = "embedder_weights=PATH"

log = logging.getLogger(__name__)

#: The component folders of a training checkpoint, in the order a restorer is chosen.
RESTORER_FOLDERS = ("network-ema", "network")
DACLIP_FOLDER = "daclip"
DACLIP_NAME = "daclip"


def resolve_model(ref: str | Path, *, search_dirs: Sequence[str | Path] = (),
                  cache_dir: str | Path | None = None) -> ModelUnit:
    """The whole model ``ref`` names.

    Args:
        ref: a reference of any kind (see the module docstring).
        search_dirs: folders searched first for named weights (``--weights-dir``).
        cache_dir: the daclip-kit cache (default ``$DACLIP_KIT_CACHE``).

    Nothing is downloaded except what an ``hf://`` reference names (it asks for it); named
    weights missing locally are left for :func:`provide`.

    Raises:
        WeightsNotFoundError: a path that does not exist; a folder that holds no model (saying what
            was expected); a Hub reference that cannot be fetched.
        UnknownComponentError: neither a path nor a registered weights name.
        CheckpointError: an unreadable ``config.json``, ``model_index.json`` or record.
    """
    text = str(ref)
    if is_hub_ref(ref):
        from .hub import hub_model

        local, base = hub_model(text, cache_dir)
        unit = _local_unit(text, local, search_dirs, cache_dir, hub_base=base)
        return replace(unit, kind="hub")
    if is_path_like(ref):
        path = Path(ref).expanduser()
        if not path.exists():
            raise WeightsNotFoundError(f"{text!r} does not exist; give a weights file, a native or model folder, a "
                                       "training run or checkpoint folder, hf://OWNER/NAME or a weights name "
                                       "(daclip-kit weights list).")
        return _local_unit(text, path, search_dirs, cache_dir)
    found = find_weights(text, search_dirs=search_dirs, cache_dir=cache_dir)
    spec = found if isinstance(found, WeightSpec) else _spec(text)
    on_disk = found if isinstance(found, Path) else None
    kind, _, network = spec.model.partition(":")
    if network == DACLIP_NAME:
        return ModelUnit(text, "name", daclip=PairedDaclip(text, path=on_disk, spec=None if on_disk else spec,
                                                             embed_dim=_bundled_dim(spec)))
    return ModelUnit(text, "name", network=on_disk, network_spec=None if on_disk else spec,
                     network_name=network if kind == "backbone" else "")


def _bundled_dim(spec: WeightSpec) -> int | None:
    """Embedding width of a released DA-CLIP (its bundled open_clip config)."""
    from ..embedders.daclip.architectures import model_config

    name = spec.config.get("model")
    dim = model_config(str(name)).get("embed_dim") if name else None
    return int(dim) if isinstance(dim, int) else None


def _spec(name: str) -> WeightSpec:
    from ..weights.fetch import get_weight_spec

    return get_weight_spec(name)


def _local_unit(ref: str, path: Path, search_dirs: Sequence[str | Path], cache_dir: str | Path | None,
                *, hub_base: str | None = None) -> ModelUnit:
    if path.is_file():
        return ModelUnit(ref, "file", network=path)
    index = read_index(path)
    if index is not None:
        unit = _indexed_unit(ref, path, index, search_dirs, cache_dir, hub_base)
        return replace(unit, kind="checkpoint") if _step_of(path) is not None else unit
    if is_native_dir(path):
        return _native_unit(ref, "native", path, search_dirs, cache_dir, hub_base)
    from ..train.checkpoints import CHECKPOINTS, list_checkpoints

    def holds_model(folder: Path) -> bool:
        return (folder / MODEL_INDEX).is_file() or any(
            is_native_dir(folder / n) for n in (*RESTORER_FOLDERS, DACLIP_FOLDER))

    if holds_model(path):
        model = _checkpoint_model(path)
        unit = _local_unit(ref, model, search_dirs, cache_dir, hub_base=_sub(hub_base, model.name)
                           if model != path else hub_base)
        return replace(unit, kind="checkpoint")
    checkpoints = list_checkpoints(path, complete=holds_model)
    if checkpoints:
        log.info("%s: using its newest checkpoint %s", path, checkpoints[-1].name)
        unit = _local_unit(ref, checkpoints[-1], search_dirs, cache_dir, hub_base=hub_base)
        return replace(unit, kind="run")
    raise WeightsNotFoundError(
        f"{ref!r} is a folder but holds no model: not a native folder (config.json + model.safetensors), a model "
        f"folder ({MODEL_INDEX}), a training checkpoint ({'|'.join((*RESTORER_FOLDERS, DACLIP_FOLDER))}/) or a "
        f"run folder ({CHECKPOINTS}/step-N/); give one of those.")


def _step_of(checkpoint: Path) -> int | None:
    """The step of a training checkpoint folder (``checkpoints/step-N``), else ``None``."""
    from ..train.checkpoints import CHECKPOINTS, step_of

    if checkpoint.is_symlink():  # checkpoints/best -> step-N
        checkpoint = checkpoint.resolve()
    return step_of(checkpoint) if checkpoint.parent.name == CHECKPOINTS else None


def _sub(hub_base: str | None, name: str) -> str | None:
    """The Hub base of the component folder ``name`` of the folder at ``hub_base``."""
    return None if hub_base is None else f"{hub_base.rstrip('/')}/{name}"


def _checkpoint_model(checkpoint: Path) -> Path:
    """The folder a checkpoint stands for: the checkpoint itself when it has an index, else its
    restorer (EMA first), else its DA-CLIP."""
    if (checkpoint / MODEL_INDEX).is_file():
        return checkpoint
    for name in (*RESTORER_FOLDERS, DACLIP_FOLDER):
        if is_native_dir(checkpoint / name):
            log.info("%s: using %s", checkpoint, name)
            return checkpoint / name
    raise WeightsNotFoundError(f"{checkpoint} holds no model folder")  # holds_model() said it has one


def _indexed_unit(ref: str, folder: Path, index: ModelIndex, search_dirs: Sequence[str | Path],
                  cache_dir: str | Path | None, hub_base: str | None) -> ModelUnit:
    def component(name: str) -> Path:
        path = folder / name
        if not is_native_dir(path):
            raise WeightsNotFoundError(f"{folder / MODEL_INDEX} names the component folder {name!r}, but {path} is "
                                       "not a native folder (config.json + model.safetensors); copy the whole model "
                                       "folder.")
        return path

    provenance = dict(index.provenance)
    if index.restorer is None:
        if index.daclip is None:
            raise CheckpointError(f"{folder / MODEL_INDEX} names neither a restorer nor a DA-CLIP.")
        unit = _native_unit(ref, "model", component(index.daclip), search_dirs, cache_dir,
                            _sub(hub_base, index.daclip))
        return replace(unit, provenance={**provenance, **unit.provenance})
    unit = _native_unit(ref, "model", component(index.restorer), search_dirs, cache_dir,
                        _sub(hub_base, index.restorer))
    if index.daclip is not None and unit.daclip is None and not unit.unconditioned:
        # an index written for a restorer that records nothing: the index's DA-CLIP is its pair (a
        # component folder of this model, else a reference)
        source = f"./{index.daclip}" if (folder / index.daclip).is_dir() else index.daclip
        unit = replace(unit, daclip=_find_daclip(source, folder, search_dirs, cache_dir, hub_base, {}))
    return replace(unit, provenance={**provenance, **unit.provenance})


def _native_unit(ref: str, kind: str, folder: Path, search_dirs: Sequence[str | Path],
                 cache_dir: str | Path | None, hub_base: str | None) -> ModelUnit:
    data = read_json_config(folder)
    name = str(data.get("name", "") or ("daclip" if data.get("kind") == "daclip" else ""))
    config = data.get("config", {}) if "format" in data else {k: v for k, v in data.items() if k != "kind"}
    provenance = dict(data.get("provenance") or {})
    step = _step_of(folder.parent)
    if step is not None:
        provenance.setdefault("step", step)
    if name == DACLIP_NAME:
        dim, words = daclip_facts(folder)
        return ModelUnit(ref, kind, daclip=PairedDaclip(str(folder), path=folder, embed_dim=dim, words=words),
                         provenance=provenance)
    sampler = data.get("sampler")
    unit = ModelUnit(ref, kind, network=folder, network_name=name, network_config=dict(config),
                     sampler=dict(sampler) if isinstance(sampler, Mapping) else None, provenance=provenance)
    where = str(folder / "config.json")
    if "daclip" in data:
        if data["daclip"] is None:
            return replace(unit, unconditioned=True)
        record = read_record(data["daclip"], where)
        return replace(unit, daclip=_find_daclip(record["weights"], folder, search_dirs, cache_dir, hub_base,
                                                 record))
    legacy = _run_embedder(folder, search_dirs)
    if legacy is None:
        return unit
    if isinstance(legacy, str):  # "none": the run trained without an embedder
        return replace(unit, unconditioned=True)
    return replace(unit, daclip=legacy)


def _find_daclip(source: str, base: Path, search_dirs: Sequence[str | Path], cache_dir: str | Path | None,
                 hub_base: str | None, record: Mapping[str, Any]) -> PairedDaclip:
    """The DA-CLIP ``source`` names, seen from the folder ``base`` (a relative folder is relative to it,
    within the same Hub repository for a Hub model), checked against ``record``."""
    said_words = record.get("degradations")
    paired = PairedDaclip(source, sha256=str(record.get("sha256") or ""), embed_dim=record.get("embed_dim"),
                          words=tuple(said_words) if said_words else None)
    if is_hub_ref(source) or not is_path_like(source):
        try:
            found = resolve_model(source, search_dirs=search_dirs, cache_dir=cache_dir)
        except WeightsNotFoundError as exc:
            return replace(paired, missing=str(exc))
        if found.daclip is None:
            raise CheckpointError(f"{base}: its recorded DA-CLIP {source!r} is not a DA-CLIP "
                                  f"({found.network_name or 'a network'}); write the folder again.")
        path, spec = found.daclip.path, found.daclip.spec
    else:
        relative = PurePosixPath(source)
        path = base / Path(*relative.parts) if not relative.is_absolute() else Path(source)
        if hub_base is not None and not relative.is_absolute() and not path.exists():
            from .hub import hub_sibling

            try:
                path = hub_sibling(hub_base, source, cache_dir)
            except WeightsNotFoundError as exc:
                return replace(paired, missing=str(exc))
        path = path.resolve() if path.exists() else path
        if not path.exists():
            return replace(paired, missing=f"{path} does not exist")
        if path.is_dir() and not is_native_dir(path):
            return replace(paired, missing=f"{path} is not a native DA-CLIP folder")
        spec = None
    if path is not None:
        dim, words = daclip_facts(path)
        paired = replace(paired, path=path, embed_dim=paired.embed_dim or dim, words=paired.words or words)
        if paired.sha256:
            actual = weights_sha256(path)
            if actual != paired.sha256:
                raise CheckpointError(
                    f"{base}: the DA-CLIP it was trained with ({source}) has SHA-256 {paired.sha256[:12]}..., but "
                    f"{path} has {actual[:12]}...: a different DA-CLIP. Put the DA-CLIP the restorer was trained with "
                    f"back, or pass another explicitly with {option('daclip_weights', 'PATH', python=GIVE_DACLIP)}"
                    " (checked for embedding width and words).")
    return replace(paired, spec=spec)


def _run_embedder(folder: Path, search_dirs: Sequence[str | Path]) -> PairedDaclip | str | None:
    """For a restorer saved before records existed, inside a training run: the DA-CLIP its run
    config names (``"none"``: trained without one; ``None``: not in a run, or no run config)."""
    from ..train.checkpoints import CHECKPOINTS

    if folder.parent.parent.name != CHECKPOINTS:
        return None
    from .runs import run_embedder

    checkpoint = folder.parent
    found = run_embedder(checkpoint.parent.parent, checkpoint, [Path(d) for d in search_dirs])
    if found is None:
        return None
    if found["embedder"] == "":
        return "none"
    if found["embedder"] != DACLIP_NAME:
        return None
    weights = found["embedder_weights"]
    if weights is None:
        return None
    dim, words = daclip_facts(Path(weights)) if Path(weights).is_dir() else (None, None)
    return PairedDaclip(str(weights), path=Path(weights), embed_dim=dim, words=words)


def provide(unit: ModelUnit, daclip: PairedDaclip | None = None, *, download: bool = True,
            search_dirs: Sequence[str | Path] = (),
            cache_dir: str | Path | None = None) -> tuple[ModelUnit, PairedDaclip | None]:
    """``unit`` and ``daclip`` (the DA-CLIP it runs with, :func:`pair`) with every named file on disk:
    downloaded together, or, when they cannot be (``download=False``, offline), named in one error
    with the ways to provide them.

    Raises:
        WeightsNotFoundError: something is missing and cannot be downloaded, or a recorded DA-CLIP that
            cannot be found (naming it and ``--daclip-weights``).
    """
    if daclip is not None and daclip.missing:
        raise WeightsNotFoundError(
            f"{unit.ref} was trained with the DA-CLIP {daclip.describe()}, which cannot be found: {daclip.missing}. "
            "Copy the whole model folder (its daclip/ beside the network), or pass that DA-CLIP with "
            f"{option('daclip_weights', 'PATH', python=GIVE_DACLIP)}; the released DA-CLIP is never used in "
            "its place.")
    wanted: list[tuple[Path | WeightSpec, str]] = []
    if unit.network_spec is not None:
        wanted.append((unit.network_spec, option("weights", _filename(unit.network_spec))))
    if daclip is not None and daclip.spec is not None:
        wanted.append((daclip.spec, option("daclip_weights", _filename(daclip.spec),
                                           python=f"embedder_weights={_filename(daclip.spec)}")))
    if not wanted:
        return unit, daclip
    paths = iter(provide_weights(wanted, download=download, search_dirs=search_dirs, cache_dir=cache_dir))
    if unit.network_spec is not None:
        unit = replace(unit, network=next(paths), network_spec=None)
    if daclip is not None and daclip.spec is not None:
        daclip = replace(daclip, path=next(paths), spec=None)
    return unit, daclip


def _filename(item: Path | WeightSpec) -> str:
    return item.name if isinstance(item, Path) else item.filename


def daclip_of(ref: str | Path, *, search_dirs: Sequence[str | Path] = (),
              cache_dir: str | Path | None = None) -> PairedDaclip:
    """The DA-CLIP ``ref`` names: a DA-CLIP itself (any reference kind), or the one a restorer is paired with.

    Raises:
        ConfigError: ``ref`` is a restorer that records no DA-CLIP, or was trained without one.
    """
    unit = resolve_model(ref, search_dirs=search_dirs, cache_dir=cache_dir)
    if unit.kind == "file" and unit.network is not None:  # a released DA-CLIP file does not say what it is
        return PairedDaclip(str(ref), path=unit.network)
    if unit.daclip is None:
        what = "was trained without an embedder" if unit.unconditioned else "records no DA-CLIP"
        raise ConfigError(f"{ref} is a {unit.network_name or 'restoration'} network that {what}; give a DA-CLIP "
                          "(a weights name such as daclip-vit-b-32, a DA-CLIP folder or a `train daclip` run).")
    return unit.daclip if unit.is_daclip else replace(unit.daclip, source=f"{unit.daclip.source} (paired with {ref})")


def pair(unit: ModelUnit, given: str | Path | None, default: str | None, *, search_dirs: Sequence[str | Path] = (),
         cache_dir: str | Path | None = None) -> PairedDaclip | None:
    """The DA-CLIP a restorer runs with: ``given`` (``--daclip-weights``) when there is one, checked
    against the recorded pair; else the recorded one; else ``default`` (the recipe's, for networks
    that record nothing, such as the released files); ``None`` for an unconditioned network.

    Raises:
        ConfigError: ``given`` contradicts the recorded DA-CLIP (embedding width or words), naming both.
    """
    if given is not None:
        chosen = daclip_of(given, search_dirs=search_dirs, cache_dir=cache_dir)
        recorded = unit.daclip
        if recorded is not None:
            clash = []
            if recorded.embed_dim and chosen.embed_dim and recorded.embed_dim != chosen.embed_dim:
                clash.append(f"{chosen.embed_dim}-d embeddings instead of {recorded.embed_dim}-d")
            if recorded.words and chosen.words and tuple(recorded.words) != tuple(chosen.words):
                clash.append(f"the words {', '.join(chosen.words)} instead of {', '.join(recorded.words)}")
            if clash:
                raise ConfigError(f"The DA-CLIP given ({chosen.describe()}) does not fit {unit.ref}, which was trained "
                                  f"with {recorded.describe()}: {'; '.join(clash)}. Leave out "
                                  f"{option('daclip_weights', python='embedder_weights=')} to "
                                  "use the model's own DA-CLIP, or give one of the same width and words.")
            if recorded.sha256 and chosen.path is not None and weights_sha256(chosen.path) != recorded.sha256:
                log.warning("%s runs with %s instead of the DA-CLIP it was trained with (%s), as asked.",
                            unit.ref, chosen.describe(), recorded.describe())
        return chosen
    if unit.unconditioned:
        return None
    if unit.daclip is not None:
        return unit.daclip
    if default:
        return daclip_of(default, search_dirs=search_dirs, cache_dir=cache_dir)
    return None
