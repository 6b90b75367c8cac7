"""Which files ``daclip-kit push`` uploads: native model folders only, never a pickle.

A push takes a native folder (``config.json`` naming its network + ``model.safetensors``: a
trained network, a DA-CLIP, a distilled student), a training checkpoint folder
(``OUT/checkpoints/step-N``: each native folder in it, e.g. ``network`` and ``network-ema``, goes
to the subfolder of that name), a model folder (a ``model_index.json`` and its component folders:
``daclip-kit adapt``'s output) or a training run folder (``OUT``: its newest checkpoint). Only
``config.json`` and ``model.safetensors`` of each model folder are uploaded (and a DA-CLIP's
unknown-degradation state ``ood.safetensors``), with the ``model_index.json``
(:mod:`daclip_kit.model.unit`); ``trainer_state.pt``, run folders, reports and any other file stay
home. A restorer travels with the DA-CLIP it was trained with: a checkpoint's ``daclip/`` goes up
beside the network folders, and a native restorer folder pushed alone whose DA-CLIP lies beside it
(``../daclip``) is uploaded as ``NAME/`` + ``daclip/`` + an index, so ``hf://OWNER/REPO`` restores
with its own DA-CLIP. Torch-free.
"""

from __future__ import annotations

import json
import struct
from dataclasses import dataclass
from pathlib import Path

from ..checkpoint import CONFIG_NAME, WEIGHTS_NAME
from ..core.ood import STATE_FILE
from ..errors import CheckpointError, InputError
from ..model.resolve import DACLIP_FOLDER
from ..model.unit import MODEL_INDEX, index_text, read_index
from ..pretrained import NativeInfo, native_info
from ..train.checkpoints import CHECKPOINTS, STATE_NAME, list_checkpoints, run_dir_of, step_of
from ..train.pairing import SIBLING

#: The files of a native folder that are uploaded.
UPLOADED = (CONFIG_NAME, WEIGHTS_NAME)
#: Files uploaded with a native folder where it has them: a DA-CLIP's unknown-degradation reference
#: state (:data:`daclip_kit.core.ood.STATE_FILE`).
OPTIONAL = (STATE_FILE,)


def uploaded_files(folder: Path) -> tuple[str, ...]:
    """The names of ``folder``'s files a push uploads."""
    return (*UPLOADED, *(name for name in OPTIONAL if (folder / name).is_file()))
_HEADER_LIMIT = 100 << 20  # safetensors caps its JSON header at 100 MB


@dataclass(frozen=True)
class ModelFolder:
    """One native folder to upload: from ``local`` to ``repo_path`` (``""``: the repository root)."""

    local: Path
    repo_path: str
    info: NativeInfo


@dataclass(frozen=True)
class PushPlan:
    """What a push uploads and what its model card can tell.

    Attributes:
        source: the folder given.
        models: the native folders, first the one the card describes.
        run_dir: the training run folder they came from, if any.
        step: the checkpoint's step, if known.
        skipped: files in the given folders that are not uploaded (names).
        index: the text of the ``model_index.json`` uploaded at the repository root (``None``: none).
    """

    source: Path
    models: tuple[ModelFolder, ...]
    run_dir: Path | None = None
    step: int | None = None
    skipped: tuple[str, ...] = ()
    index: str | None = None


def check_safetensors(path: Path) -> None:
    """Raise :class:`CheckpointError` unless ``path`` starts like a safetensors file (an 8-byte
    header length and a JSON object): a pickle renamed ``model.safetensors`` is refused."""
    try:
        with path.open("rb") as f:
            head = f.read(8)
            size = struct.unpack("<Q", head)[0] if len(head) == 8 else -1
            header = json.loads(f.read(size)) if 1 < size <= _HEADER_LIMIT else None
    except (OSError, ValueError) as exc:
        raise CheckpointError(f"{path} is not a safetensors file ({exc}); write the folder with save_network() "
                              "or `daclip-kit convert`.") from None
    if not isinstance(header, dict):
        raise CheckpointError(f"{path} is not a safetensors file (no JSON header); write the folder with "
                              "save_network() or `daclip-kit convert`.")


def check_native(folder: Path) -> NativeInfo:
    """The ``config.json`` of the native folder ``folder``, checked for upload.

    Raises:
        CheckpointError: a file is missing (named), the config is not the native format or names
            no network, or the weights are not safetensors.
    """
    missing = [name for name in UPLOADED if not (folder / name).is_file()]
    if missing:
        raise CheckpointError(f"{folder} is not a native model folder: it has no {' and no '.join(missing)}. Push a "
                              "folder written by save_network(), `daclip-kit convert` or `daclip-kit train`.")
    info = native_info(folder)
    if not info.name:
        raise CheckpointError(f"{folder / CONFIG_NAME} does not name its network (a folder of an older format); load "
                              "it and write it again with save_network() before pushing.")
    check_safetensors(folder / WEIGHTS_NAME)
    return info


def _others(folder: Path, kept: set[str]) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name not in kept)


def plan_push(folder: str | Path) -> PushPlan:
    """The upload plan for ``folder`` (see the module docstring).

    Raises:
        InputError: not a folder.
        CheckpointError: not a native, checkpoint or run folder (one line naming what is missing),
            or a model folder in it that fails :func:`check_native`.
    """
    src = Path(folder).expanduser()
    if not src.is_dir():
        raise InputError(f"{str(src)!r} is not a folder; push a native model folder (config.json + "
                         "model.safetensors), a training checkpoint or a run folder.")
    if (src / CONFIG_NAME).is_file() and (src / WEIGHTS_NAME).is_file():
        info = check_native(src)
        run_dir = step = None
        if src.parent.parent.name == CHECKPOINTS:
            run_dir, step = run_dir_of(src.parent), step_of(src.parent)
        skipped = tuple(_others(src, set(uploaded_files(src))))
        daclip = _sibling_daclip(src)
        if daclip is None:
            return PushPlan(src, (ModelFolder(src, "", info),), run_dir, step, skipped)
        models = (ModelFolder(src, src.name, info), ModelFolder(daclip, DACLIP_FOLDER, check_native(daclip)))
        return PushPlan(src, models, run_dir, step, skipped, index_text(src.name, DACLIP_FOLDER, info.provenance))
    # a training checkpoint, or a model folder (an index naming its components: `adapt`'s OUT, a pulled model)
    checkpoint = src if (src / STATE_NAME).is_file() or (src / MODEL_INDEX).is_file() else None
    if checkpoint is None and (src / CHECKPOINTS).is_dir():
        found = list_checkpoints(src)
        checkpoint = found[-1] if found else None
    if checkpoint is None:
        missing = [name for name in UPLOADED if not (src / name).is_file()]
        raise CheckpointError(f"{src} is not a native model folder (no {' and no '.join(missing)}), nor a training "
                              f"checkpoint ({STATE_NAME}) or run folder ({CHECKPOINTS}/step-N/) holding one.")
    subfolders = sorted(p for p in checkpoint.iterdir() if p.is_dir() and (p / CONFIG_NAME).is_file())
    if not subfolders:
        raise CheckpointError(f"{checkpoint} holds no native model folder (a subfolder with {CONFIG_NAME} and "
                              f"{WEIGHTS_NAME}); nothing to push.")
    index = read_index(checkpoint)
    first = index.restorer if index is not None else None
    # the model the index names (else the EMA weights) is the one to use, so the card describes it first
    subfolders.sort(key=lambda p: (p.name != first, not p.name.endswith("-ema"), p.name == DACLIP_FOLDER, p.name))
    folders = tuple(ModelFolder(p, p.name, check_native(p)) for p in subfolders)
    kept = {p.name for p in subfolders} | ({MODEL_INDEX} if index is not None else set())
    left = _others(checkpoint, kept) + [f"{p.name}/{n}" for p in subfolders
                                      for n in _others(p, set(uploaded_files(p)))]
    run_dir = run_dir_of(checkpoint) if checkpoint.parent.name == CHECKPOINTS else None
    text = (checkpoint / MODEL_INDEX).read_text(encoding="utf-8") if index is not None else None
    return PushPlan(src, folders, run_dir, step_of(checkpoint), tuple(left), text)


def _sibling_daclip(folder: Path) -> Path | None:
    """The DA-CLIP folder a native restorer records beside itself (``../daclip``), else ``None``.

    Raises:
        CheckpointError: the record points beside the folder but nothing is there.
    """
    data = json.loads((folder / CONFIG_NAME).read_text(encoding="utf-8"))
    record = data.get("daclip") if isinstance(data, dict) else None
    if not isinstance(record, dict) or record.get("weights") != SIBLING:
        return None
    daclip = (folder / SIBLING).resolve()
    if not ((daclip / CONFIG_NAME).is_file() and (daclip / WEIGHTS_NAME).is_file()):
        raise CheckpointError(f"{folder} was trained with the DA-CLIP beside it ({SIBLING}), which is missing at "
                              f"{daclip}; push the whole checkpoint folder, or put the DA-CLIP back.")
    return daclip
