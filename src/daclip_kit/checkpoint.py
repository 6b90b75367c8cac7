"""Reading and writing weights safely.

* Legacy ``.pt``/``.pth`` files are read with ``torch.load(weights_only=True)``: no code from a
  checkpoint is ever executed.
* The native format is a folder with ``model.safetensors`` and ``config.json``
  (:func:`save_pretrained` / :func:`load_pretrained_files`).
* :func:`load_strict` loads a state dict and, on mismatch, raises a
  :class:`~daclip_kit.errors.CheckpointError` that names every missing, unexpected and
  mis-shaped key.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .errors import CheckpointError
from .io import apply_default_mode

if TYPE_CHECKING:
    import torch
    from torch import nn

WEIGHTS_NAME = "model.safetensors"
CONFIG_NAME = "config.json"


def read_state_dict(source: str | Path | Mapping[str, Any], *,
                    wrappers: tuple[str, ...] = ("state_dict",),
                    strip: tuple[str, ...] = ("module.",)) -> dict[str, torch.Tensor]:
    """Return a flat ``{key: tensor}`` dict from a file or an in-memory checkpoint.

    Args:
        source: path to a ``.safetensors``/``.pt``/``.pth`` file, or a (possibly wrapped) state dict.
        wrappers: keys of a training-checkpoint dict under which the state dict may sit
            (the first present one is used), e.g. ``("state_dict",)`` or ``("params", "params_ema")``.
        strip: key prefixes removed when *every* key carries them (``module.`` from DDP).

    Raises:
        CheckpointError: unreadable file, a pickle that needs code execution, or no tensors.
    """
    obj = _read_obj(source) if isinstance(source, (str, Path)) else source
    name = str(source) if isinstance(source, (str, Path)) else "the given state dict"
    if not isinstance(obj, Mapping):
        raise CheckpointError(f"{name} holds a {type(obj).__name__}, not a state dict.")
    for key in wrappers:
        if key in obj and isinstance(obj[key], Mapping):
            obj = obj[key]
            break
    sd = {k: v for k, v in obj.items() if _is_tensor(v)}
    if not sd:
        raise CheckpointError(
            f"{name} contains no tensors (top-level keys: {sorted(map(str, obj))[:10]}). "
            f"Expected a state dict, optionally wrapped under {list(wrappers)}."
        )
    for prefix in strip:
        if all(k.startswith(prefix) for k in sd):
            sd = {k[len(prefix):]: v for k, v in sd.items()}
    return sd


def read_checkpoint(source: str | Path) -> Any:
    """The object stored in a checkpoint file (``weights_only``; safetensors as a dict).

    Raises:
        CheckpointError: missing or unreadable file, or a pickle that needs code execution.
    """
    return _read_obj(source)


def state_dict_keys(obj: Mapping[str, Any]) -> set[str]:
    """Tensor keys of a checkpoint dict, looking one level into wrappers of any name
    (``state_dict``, ``params``, ``generator``, ...), with ``module.``/``net.`` prefixes removed."""
    keys = {k for k, v in obj.items() if _is_tensor(v)}
    for value in obj.values():
        if isinstance(value, Mapping):
            keys |= {k for k, v in value.items() if _is_tensor(v)}
    for prefix in ("module.", "net."):
        if keys and all(k.startswith(prefix) for k in keys):
            keys = {k[len(prefix):] for k in keys}
    return keys


def _is_tensor(v: Any) -> bool:
    import torch

    return isinstance(v, torch.Tensor)


def _read_obj(path: str | Path) -> Any:
    import pickle

    import torch

    path = Path(path)
    if path.is_dir():
        path = path / WEIGHTS_NAME
    if not path.is_file():
        raise CheckpointError(f"Checkpoint {str(path)!r} does not exist.")
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        try:
            return load_file(str(path), device="cpu")
        except Exception as exc:  # noqa: BLE001 - report any safetensors failure uniformly
            raise CheckpointError(f"Cannot read {str(path)!r} as safetensors: {exc}") from exc
    try:
        with torch.serialization.safe_globals(_numpy_data_globals()):
            try:
                return torch.load(path, map_location="cpu", weights_only=True, mmap=True)
            except RuntimeError as exc:
                if "mmap" not in str(exc):
                    raise
                return torch.load(path, map_location="cpu", weights_only=True)  # legacy non-zip file
    except pickle.UnpicklingError as exc:
        raise CheckpointError(
            f"{str(path)!r} cannot be loaded safely (weights_only=True refused it: {exc}). "
            "daclip-kit never executes code from a checkpoint; re-save the file as a plain "
            "state dict or safetensors with the tool that made it."
        ) from exc
    except (RuntimeError, EOFError, OSError) as exc:
        raise CheckpointError(f"Cannot read checkpoint {str(path)!r}: {exc}") from exc


def _numpy_data_globals() -> list:
    """numpy objects that open_clip training checkpoints pickle (scalars in the optimizer and
    scaler state). They only rebuild data, so allowing them keeps ``weights_only`` safe."""
    import numpy as np

    core = getattr(np, "_core", None) or np.core
    scalar = core.multiarray.scalar
    dtype_classes = [type(np.dtype(code)) for code in "?bBhHiIlLqQefdFD"]
    return [np.dtype, scalar, (scalar, "numpy.core.multiarray.scalar"), *dtype_classes]


def load_strict(module: nn.Module, state_dict: Mapping[str, torch.Tensor], *, source: str = "checkpoint") -> None:
    """``module.load_state_dict(state_dict, strict=True)`` with a complete error message.

    Raises:
        CheckpointError: listing every missing key, unexpected key and shape mismatch.
    """
    own = module.state_dict()
    missing = sorted(k for k in own if k not in state_dict)
    unexpected = sorted(k for k in state_dict if k not in own)
    shapes = sorted(
        f"{k}: checkpoint {tuple(state_dict[k].shape)} vs model {tuple(own[k].shape)}"
        for k in own if k in state_dict and tuple(state_dict[k].shape) != tuple(own[k].shape)
    )
    if missing or unexpected or shapes:
        parts = [f"{source} does not match {type(module).__name__}."]
        if missing:
            parts.append(f"Missing keys ({len(missing)}): {', '.join(missing)}.")
        if unexpected:
            parts.append(f"Unexpected keys ({len(unexpected)}): {', '.join(unexpected)}.")
        if shapes:
            parts.append(f"Shape mismatches ({len(shapes)}): {'; '.join(shapes)}.")
        parts.append("Check that the config matches the checkpoint (model size, context_dim, ...).")
        raise CheckpointError(" ".join(parts))
    module.load_state_dict(state_dict, strict=True)


def save_pretrained(module: nn.Module, directory: str | Path, config: Mapping[str, Any], *,
                    overwrite: bool = False) -> Path:
    """Write ``config.json`` + ``model.safetensors`` into ``directory`` atomically.

    Tensors that share storage (aliases) are saved once. The folder appears complete or not at all.

    Raises:
        CheckpointError: ``directory`` exists and ``overwrite`` is false.
    """
    from safetensors.torch import save_file

    directory = Path(directory)
    if directory.exists() and not overwrite:
        raise CheckpointError(f"{str(directory)!r} already exists; pass overwrite=True (CLI: --overwrite).")
    state = {}
    seen: dict[tuple, str] = {}
    for key, tensor in module.state_dict().items():
        ident = (tensor.untyped_storage().data_ptr(), tensor.storage_offset(), tuple(tensor.shape),
                 tuple(tensor.stride()))
        if ident in seen and tensor.numel() > 0:
            continue
        seen[ident] = key
        state[key] = tensor.detach().cpu().contiguous()
    if directory.exists() and not (directory / WEIGHTS_NAME).is_file():
        raise CheckpointError(
            f"{str(directory)!r} exists and is not a daclip-kit model folder (no {WEIGHTS_NAME}); "
            "it is not replaced. Choose a new folder."
        )
    directory.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{directory.name}.", dir=directory.parent))
    try:
        save_file(state, str(tmp / WEIGHTS_NAME), metadata={"format": "pt"})
        (tmp / CONFIG_NAME).write_text(json.dumps(dict(config), indent=2, sort_keys=True, default=list) + "\n")

        for path in (tmp, tmp / WEIGHTS_NAME, tmp / CONFIG_NAME):
            apply_default_mode(path)
        if directory.exists():
            backup = Path(tempfile.mkdtemp(prefix=f".{directory.name}.old.", dir=directory.parent))
            os.replace(directory, backup / directory.name)
            os.replace(tmp, directory)
            shutil.rmtree(backup, ignore_errors=True)
        else:
            os.replace(tmp, directory)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return directory


#: ``config.json`` files larger than this are refused (they describe a network, not data).
MAX_CONFIG_BYTES = 1 << 20


def read_json_config(directory: str | Path) -> dict[str, Any]:
    """The ``config.json`` object of a model folder written by :func:`save_pretrained`.

    Raises:
        CheckpointError: the folder lacks ``config.json`` or ``model.safetensors``, or the file
            is too large, not JSON or not a JSON object.
    """
    directory = Path(directory)
    cfg_path = directory / CONFIG_NAME
    if not cfg_path.is_file() or not (directory / WEIGHTS_NAME).is_file():
        raise CheckpointError(
            f"{str(directory)!r} is not a daclip-kit model folder: expected {CONFIG_NAME} and "
            f"{WEIGHTS_NAME}. Create one with save_pretrained() or `daclip-kit convert`."
        )
    if cfg_path.stat().st_size > MAX_CONFIG_BYTES:
        raise CheckpointError(f"{str(cfg_path)!r} is larger than {MAX_CONFIG_BYTES} bytes; not a model config.")
    try:
        config = json.loads(cfg_path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise CheckpointError(f"{str(cfg_path)!r} is not valid JSON: {exc}") from exc
    if not isinstance(config, dict):
        raise CheckpointError(f"{str(cfg_path)!r} holds a JSON {type(config).__name__}, expected an object "
                              "of config keys.")
    return config


def load_pretrained_files(directory: str | Path) -> tuple[dict[str, Any], dict[str, torch.Tensor]]:
    """Read ``(config, state_dict)`` from a folder written by :func:`save_pretrained`."""
    config = read_json_config(directory)
    return config, read_state_dict(Path(directory) / WEIGHTS_NAME, wrappers=(), strip=())


def describe_source(checkpoint: Any) -> str:
    """How error messages name a checkpoint: its path, or "the given state dict"."""
    return str(checkpoint) if isinstance(checkpoint, (str, Path)) else "the given state dict"


def build_and_load(build: Callable[[], nn.Module], state_dict: Mapping[str, torch.Tensor], *,
                   source: str = "checkpoint", hint: Callable[[], str] | None = None) -> nn.Module:
    """Build a network without random initialisation and load ``state_dict`` strictly.

    The module is built on the meta device and allocated on the CPU, so a full-size network costs
    no initialisation time; every parameter and persistent buffer then comes from the checkpoint.

    Args:
        build: returns the (empty) network.
        state_dict: the weights; see :func:`read_state_dict`.
        source: name of the checkpoint in messages (:func:`describe_source`).
        hint: called on a mismatch; its sentence is appended to the error (e.g. the config the
            checkpoint appears to have).

    Returns:
        The network in eval mode, on the CPU.

    Raises:
        CheckpointError: naming every missing, unexpected and mis-shaped key.
    """
    import torch

    with torch.device("meta"):
        net = build()
    net = net.to_empty(device="cpu")
    try:
        load_strict(net, state_dict, source=source)
    except CheckpointError as exc:
        extra = f" {hint()}" if hint is not None else ""
        raise CheckpointError(f"{exc}{extra}") from None
    return net.eval()
