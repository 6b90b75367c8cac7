"""Loading DA-CLIP weights: official open_clip checkpoints and the native safetensors folder.

Official files (``daclip_ViT-B-32.pt``, ``wild-daclip_ViT-L-14.pt``) are open_clip training
checkpoints ``{"epoch", "name", "state_dict", "optimizer", "scaler"}`` whose state dict may carry a
``module.`` prefix and lists the vision tower twice (``visual.*`` and ``clip.visual.*``). They are
read with ``torch.load(weights_only=True)`` and loaded strictly: both aliases must be present, as
for the official ``strict=True`` load.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ...checkpoint import (
    build_on_meta,
    load_strict,
    read_pretrained_weights,
    read_state_dict,
    state_dict_sha256,
)
from ...core.ood import STATE_FILE, OodCalibration, check_state
from ...errors import CheckpointError, ConfigError, suggest
from ...options import option
from ...pretrained import native_info, save_network
from ...types import DEGRADATIONS
from .architectures import IGNORED_KEYS, config_names, model_config
from .model import DaCLIP

log = logging.getLogger(__name__)

DEFAULT_CONFIG = "daclip_ViT-B-32"
ALIAS_PREFIX = "visual."
CLIP_VISUAL_PREFIX = "clip.visual."


def _guess_config_name(state_dict: Mapping[str, Any]) -> str:
    """The bundled config whose patch embedding matches the checkpoint (B-32 when unsure)."""
    conv = state_dict.get("clip.visual.conv1.weight", state_dict.get("visual.conv1.weight"))
    if conv is None:
        return DEFAULT_CONFIG
    for name in config_names():
        vision = model_config(name)["vision_cfg"]
        if tuple(conv.shape) == (vision["width"], 3, vision["patch_size"], vision["patch_size"]):
            return name
    return DEFAULT_CONFIG


def _open_clip_keys() -> tuple[set[str], dict[str, set[str]]]:
    """The top-level keys ``open_clip.CLIP`` takes, and the fields of its vision and text configs."""
    import dataclasses
    import inspect

    import open_clip
    from open_clip.model import CLIPTextCfg, CLIPVisionCfg

    top = {n for n in inspect.signature(open_clip.CLIP.__init__).parameters if n != "self"}
    nested = {"vision_cfg": {f.name for f in dataclasses.fields(CLIPVisionCfg)},
              "text_cfg": {f.name for f in dataclasses.fields(CLIPTextCfg)}}
    return top | set(IGNORED_KEYS), nested


def check_model_config(config: Any, where: str) -> dict[str, Any]:
    """``config`` (an open_clip model JSON dict) when every key is one open_clip knows.

    Raises:
        ConfigError: not a dict, or an unknown key (named, with the nearest known one).
    """
    if not isinstance(config, Mapping):
        raise ConfigError(f"{where}: the DA-CLIP model_config must be an object (an open_clip model JSON), "
                          f"not {type(config).__name__}.")
    top, nested = _open_clip_keys()
    for key in config:
        if key not in top:
            raise ConfigError(f"{where}: unknown DA-CLIP model_config key {str(key)!r}.{suggest(str(key), top)} "
                              f"Known keys: {', '.join(sorted(top))}.")
    for section, fields in nested.items():
        value = config.get(section)
        if value is None:
            continue
        if not isinstance(value, Mapping):
            raise ConfigError(f"{where}: DA-CLIP model_config.{section} must be an object, not {type(value).__name__}.")
        for key in value:
            if key not in fields:
                raise ConfigError(f"{where}: unknown key {str(key)!r} in DA-CLIP model_config.{section}."
                                  f"{suggest(str(key), fields)}")
    return dict(config)


def _resolve_config(config: Mapping[str, Any] | str | None, state_dict: Mapping[str, Any]) -> dict[str, Any]:
    if config is None:
        name = _guess_config_name(state_dict)
        log.info("DA-CLIP checkpoint: using the bundled config %s", name)
        return model_config(name)
    if isinstance(config, str):
        return model_config(config)
    return check_model_config(config, "the given DA-CLIP config")


def _build_checked(config: dict[str, Any], state_dict: Mapping[str, Any], source: str) -> DaCLIP:
    """Build DA-CLIP for ``config`` after checking on the meta device that the checkpoint holds a
    network of that size (a hostile or mistyped config allocates nothing)."""
    build_on_meta(lambda: DaCLIP.from_config(config), state_dict, source=source, config=config)
    return DaCLIP.from_config(config)


def load_official_daclip(checkpoint: str | Path | Mapping[str, Any], *,
                         config: Mapping[str, Any] | str | None = None) -> DaCLIP:
    """Build DA-CLIP and load an official checkpoint strictly.

    Args:
        checkpoint: path of an official ``.pt`` file, an in-memory (possibly wrapped) state dict,
            or a native folder (:func:`load_daclip`).
        config: the open_clip model JSON dict, or a bundled config name (``"daclip_ViT-B-32"``,
            ``"daclip_ViT-L-14"``); ``None`` picks the bundled config matching the checkpoint's
            patch embedding (ViT-B-32 when unsure).

    Returns:
        :class:`DaCLIP` in eval mode on the CPU.

    Raises:
        CheckpointError: unreadable file, or keys that do not match (every missing, unexpected
            and mis-shaped key is named).
    """
    if isinstance(checkpoint, (str, Path)) and Path(checkpoint).is_dir():
        return load_daclip(checkpoint)
    source = str(checkpoint) if isinstance(checkpoint, (str, Path)) else "the given DA-CLIP state dict"
    sd = read_state_dict(checkpoint, wrappers=("state_dict",), strip=("module.",))
    model = _build_checked(_resolve_config(config, sd), sd, source)
    load_strict(model, sd, source=source)
    model.degradations = DEGRADATIONS  # the released models were trained on the ten words
    return model.eval()


def fill_visual_alias(state_dict: Mapping[str, Any]) -> dict[str, Any]:
    """Add ``visual.*`` entries from ``clip.visual.*`` where absent (the native format stores the
    shared tensors once)."""
    sd = dict(state_dict)
    for key, value in state_dict.items():
        if key.startswith(CLIP_VISUAL_PREFIX):
            sd.setdefault(key[len("clip."):], value)
    return sd


def save_daclip(model: DaCLIP, directory: str | Path, *, overwrite: bool = False, digest: str | None = None) -> Path:
    """Write ``model`` as ``config.json`` + ``model.safetensors`` (aliases stored once).

    Its calibration (``model.ood``) is written only where it may hold for these weights: one whose
    recorded digest (``state_dict_sha256``) is not that of the weights being saved was measured on
    other weights, so it is left out (with a warning) and the folder is uncalibrated
    (``unknown_degradation: null``); ``model`` itself is not changed. A calibration without a
    digest (read from an older folder) is written as it is, unverified.

    An embedding-space calibration (``knn``, ``mahalanobis``) is written with its reference state
    (``model.ood_state``) as ``ood.safetensors`` in the same folder, atomically with the weights; one
    whose state is missing or is not the one it records (``state_sha256``) is left out, with a warning.

    Args:
        model: the network.
        directory: the folder to create (written atomically).
        overwrite: replace an existing model folder.
        digest: ``state_dict_sha256(model)`` where the caller has just computed it (the weights are
            then not hashed again); it must be that of ``model``'s weights as they are now.
    """
    config = model.export_config()
    ood = config.get("ood")
    recorded = ood.get("state_dict_sha256") if isinstance(ood, dict) else None
    fix = f"calibrate it with `daclip-kit classify --calibrate DATA_ROOT --weights {directory}`"
    if recorded is not None and recorded != (digest or state_dict_sha256(model)):
        del config["ood"]
        log.warning("%s: the DA-CLIP's unknown-degradation calibration was measured on other weights (digest %s...), "
                    "so it is not saved and the folder is uncalibrated; %s.", directory, recorded[:12], fix)
    state = None
    if "ood" in config:
        try:
            calibration = OodCalibration.from_dict(config["ood"], "the DA-CLIP's calibration (model.ood)")
            if calibration.uses_embedding:
                if model.ood_state is None:
                    raise ConfigError(f"its {calibration.statistic} calibration has no reference state "
                                      "(model.ood_state)")
                state = check_state(calibration.statistic, model.ood_state, where="model.ood_state",
                                    dim=model.embed_dim, expected_sha256=calibration.state_sha256)
        except ConfigError as exc:
            del config["ood"]
            log.warning("%s: %s, so the unknown-degradation calibration is not saved and the folder is "
                        "uncalibrated; %s.", directory, str(exc).rstrip("."), fix)
    if state is None:
        return save_network(model, directory, name="daclip", component="embedders", config=config,
                            overwrite=overwrite)
    return _save_with_state(model, Path(directory), config, state, overwrite=overwrite)


def _save_with_state(model: DaCLIP, directory: Path, config: dict[str, Any], state: dict[str, Any], *,
                     overwrite: bool) -> Path:
    """:func:`save_network` plus :data:`~daclip_kit.core.ood.STATE_FILE`, the folder appearing complete
    or not at all."""
    import os

    from safetensors.torch import save_file

    from ...checkpoint import WEIGHTS_NAME
    from ...io import apply_default_mode, atomic_folder

    if directory.exists() and not overwrite:
        raise CheckpointError(f"{str(directory)!r} already exists; pass {option('overwrite')}.")
    if directory.exists() and not (directory / WEIGHTS_NAME).is_file():
        raise CheckpointError(f"{str(directory)!r} exists and is not a daclip-kit model folder (no {WEIGHTS_NAME}); "
                              "it is not replaced. Choose a new folder.")
    with atomic_folder(directory) as tmp:
        network = save_network(model, tmp / "network", name="daclip", component="embedders", config=config)
        for path in network.iterdir():
            os.replace(path, tmp / path.name)
        network.rmdir()
        save_file(state, str(tmp / STATE_FILE), metadata={"format": "pt", "statistic": config["ood"]["statistic"]})
        apply_default_mode(tmp / STATE_FILE)
    return directory


def folder_files(directory: str | Path) -> tuple[str, ...]:
    """The files that make up the native DA-CLIP folder ``directory``, for code that copies, links or
    uploads one: ``config.json``, ``model.safetensors`` and, where present, the calibration's
    reference state ``ood.safetensors`` (without it a calibrated folder loads uncalibrated)."""
    from ...checkpoint import CONFIG_NAME, WEIGHTS_NAME

    extra = (STATE_FILE,) if (Path(directory) / STATE_FILE).is_file() else ()
    return (CONFIG_NAME, WEIGHTS_NAME, *extra)


def read_ood_state(directory: str | Path, calibration: OodCalibration, dim: int) -> dict[str, Any]:
    """The reference state of ``calibration`` from ``directory``'s ``ood.safetensors`` (safetensors,
    never pickle), checked against the digest the calibration records.

    Raises:
        ConfigError: the file is missing, unreadable, or not the state of this calibration.
    """
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    path = Path(directory) / STATE_FILE
    if not path.is_file():
        raise ConfigError(f"its {calibration.statistic} calibration needs {STATE_FILE} (the reference embeddings), "
                          "which is missing (a copy of the folder without it?)")
    try:
        tensors = load_file(str(path))
    except (SafetensorError, OSError, ValueError) as exc:
        raise ConfigError(f"{path} cannot be read as safetensors ({exc})") from None
    return check_state(calibration.statistic, tensors, where=str(path), dim=dim,
                       expected_sha256=calibration.state_sha256)


def load_daclip(directory: str | Path) -> DaCLIP:
    """Load a native DA-CLIP folder written by :func:`save_daclip` or ``daclip-kit convert``.

    A calibration (``config.ood``) that records the digest of other weights than the folder's is
    not applied: ``model.ood`` is ``None`` and one warning names the folder. One without a digest
    (an older folder) is kept, unverified. An embedding-space calibration's reference state is read
    from ``ood.safetensors`` into ``model.ood_state``; where that file is missing or does not match
    the digest ``config.ood`` records, the model is likewise uncalibrated, with one warning.

    Raises:
        CheckpointError: not a DA-CLIP folder, or keys that do not match.
    """
    info = native_info(directory)
    if info.name != "daclip" or not isinstance(info.config.get("model_config"), dict):
        raise CheckpointError(
            f"{str(directory)!r} holds a {info.name or 'unnamed'!r} network, not DA-CLIP (its config.json "
            "must name 'daclip' and hold model_config). Convert an official file with "
            "`daclip-kit convert FILE OUT_DIR`."
        )
    where = str(Path(directory) / "config.json")
    extra = sorted(str(k) for k in info.config if k not in CONFIG_KEYS)
    if extra:
        raise CheckpointError(f"{where}: unknown key {extra[0]!r} in the DA-CLIP config (its keys are "
                              f"{', '.join(CONFIG_KEYS)}). Fix the file or convert the official checkpoint again.")
    calibration = None
    try:
        cfg = check_model_config(info.config["model_config"], where)
        words = read_degradations(info.config.get("degradations"), where)
        if info.config.get("ood") is not None:
            calibration = OodCalibration.from_dict(info.config["ood"], f"{where}: config.ood")
    except ConfigError as exc:
        raise CheckpointError(str(exc)) from None
    sd = fill_visual_alias(read_pretrained_weights(directory))
    model = _build_checked(cfg, sd, str(directory))
    load_strict(model, sd, source=str(directory))
    recorded = calibration.state_dict_sha256 if calibration is not None else None
    if recorded is not None and recorded != state_dict_sha256(model):
        log.warning("%s: its unknown-degradation calibration (config.ood) was measured on other weights (digest "
                    "%s...), so it is not applied and the model is uncalibrated; calibrate it again with "
                    "`daclip-kit classify --calibrate DATA_ROOT --weights %s`.", directory, recorded[:12], directory)
        calibration = None
    state = None
    if calibration is not None and calibration.uses_embedding:
        try:
            state = read_ood_state(directory, calibration, model.embed_dim)
        except ConfigError as exc:
            log.warning("%s: %s, so its unknown-degradation calibration is not applied and the model is "
                        "uncalibrated; calibrate it again with `daclip-kit classify --calibrate DATA_ROOT --weights "
                        "%s`.", directory, str(exc).rstrip("."), directory)
            calibration = None
    model.degradations = words
    model.ood, model.ood_state = (calibration.to_dict() if calibration is not None else None), state
    return model.eval()


#: The keys of a native DA-CLIP folder's ``config`` section: the open_clip model JSON, the
#: degradation words it was trained on (optional; the ten when absent) and its
#: out-of-distribution calibration (optional; :mod:`daclip_kit.core.ood`).
CONFIG_KEYS = ("model_config", "degradations", "ood")


def read_degradations(value: Any, where: str) -> tuple[str, ...] | None:
    """The ``degradations`` list of a DA-CLIP ``config.json`` (``None`` when absent).

    Raises:
        ConfigError: not a non-empty list of distinct, non-empty words.
    """
    if value is None:
        return None
    if (not isinstance(value, list) or not value or not all(isinstance(w, str) and w.strip() for w in value)
            or len(set(value)) != len(value)):
        raise ConfigError(f"{where}: 'degradations' must be a non-empty list of distinct words (the degradation "
                          f"names the model was trained on), got {value!r}.")
    return tuple(value)
