"""Reading and writing weights safely.

* Legacy ``.pt``/``.pth`` files are read with ``torch.load(weights_only=True)``: no code from a
  checkpoint is ever executed.
* The native format is a folder with ``model.safetensors`` and ``config.json``
  (:func:`save_pretrained` / :func:`load_pretrained_files`).
* :func:`load_strict` loads a state dict and, on mismatch, raises a
  :class:`~daclip_kit.errors.CheckpointError` with the counts of missing, unexpected and
  mis-shaped keys and the first few of each. It also refuses tensors holding NaN or Inf unless
  the caller allows them (``allow_nonfinite=True``, or inside :func:`nonfinite_weights_allowed`).
* :func:`build_and_load` builds on the meta device first and refuses, before allocating, a config
  that describes a network far larger than the checkpoint holds (a ``config.json`` with
  ``nf: 100000`` would otherwise ask for hundreds of gigabytes); building stops early when a
  config's depth would create far more tensors than the checkpoint holds.
"""

from __future__ import annotations

import contextlib
import contextvars
import json
import re
import warnings
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from .config import to_dict
from .errors import CheckpointError
from .io import apply_default_mode, atomic_folder
from .options import option

if TYPE_CHECKING:
    import torch
    from torch import nn

#: A network type (what a builder returns, and so what loading it returns).
M = TypeVar("M", bound="nn.Module")

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
        except Exception as exc:
            raise CheckpointError(f"Cannot read {str(path)!r} as safetensors: {exc}") from exc
    try:
        with torch.serialization.safe_globals(_numpy_data_globals()), warnings.catch_warnings():
            # torch warns about the pickle protocol of files it then refuses; the refusal says it all
            warnings.filterwarnings("ignore", message="Detected pickle protocol", category=UserWarning)
            try:
                return torch.load(path, map_location="cpu", weights_only=True, mmap=True)
            except RuntimeError as exc:
                if "mmap" not in str(exc):
                    raise
                return torch.load(path, map_location="cpu", weights_only=True)  # legacy non-zip file
    except pickle.UnpicklingError as exc:
        raise CheckpointError(
            f"{str(path)!r} needs code execution to load ({_refusal_reason(exc)}), and daclip-kit never "
            "executes code from a checkpoint (it reads with torch.load(weights_only=True)). Re-save it as a "
            "plain state dict (torch.save(model.state_dict(), ...)) or as safetensors with the tool that made it."
        ) from exc
    except (RuntimeError, EOFError, OSError) as exc:
        raise CheckpointError(f"Cannot read checkpoint {str(path)!r}: {exc}") from exc


def _refusal_reason(exc: BaseException) -> str:
    """The short reason inside torch's multi-paragraph ``weights_only`` refusal."""
    text = str(exc)
    found = re.search(r"(Unsupported global: GLOBAL \S+|Unsupported operand \d+|Unsupported class \S+)", text)
    if found:
        return found.group(1).rstrip(".")
    detail = text.split("WeightsUnpickler error:", 1)[-1].split("Check the documentation", 1)[0]
    detail = " ".join(detail.split())
    return (detail[:150] + "...") if len(detail) > 150 else (detail or "refused by the safe unpickler")


def _numpy_data_globals() -> list:
    """numpy objects that open_clip training checkpoints pickle (scalars in the optimizer and
    scaler state). They only rebuild data, so allowing them keeps ``weights_only`` safe."""
    import numpy as np

    core = getattr(np, "_core", None) or np.core
    scalar = core.multiarray.scalar
    dtype_classes = [type(np.dtype(code)) for code in "?bBhHiIlLqQefdFD"]
    return [np.dtype, scalar, (scalar, "numpy.core.multiarray.scalar"), *dtype_classes]


#: How many keys of each kind a mismatch message shows (the counts are always given).
SHOWN_KEYS = 5

_ALLOW_NONFINITE: contextvars.ContextVar[bool] = contextvars.ContextVar("daclip_kit_allow_nonfinite",
                                                                       default=False)


@contextlib.contextmanager
def nonfinite_weights_allowed(allowed: bool = True) -> Iterator[None]:
    """Within the block, :func:`load_strict` accepts (``True``) or refuses (``False``) tensors
    holding NaN or Inf when its caller does not say. :func:`daclip_kit.load_network` uses it so
    that every converter (plugins' included) follows the caller's ``allow_nonfinite``."""
    token = _ALLOW_NONFINITE.set(bool(allowed))
    try:
        yield
    finally:
        _ALLOW_NONFINITE.reset(token)


_CHECKED: contextvars.ContextVar[list | None] = contextvars.ContextVar("daclip_kit_nonfinite_checked", default=None)


@contextlib.contextmanager
def recording_nonfinite_checks() -> Iterator[list[str]]:
    """Collect the sources :func:`load_strict` checked for non-finite values within the block (an
    empty list afterwards: nothing was checked, e.g. a converter that loads by itself)."""
    checked: list[str] = []
    token = _CHECKED.set(checked)
    try:
        yield checked
    finally:
        _CHECKED.reset(token)


def nonfinite_allowed() -> bool:
    """Whether non-finite weights are allowed here (see :func:`nonfinite_weights_allowed`)."""
    return _ALLOW_NONFINITE.get()


def _key_text(key: Any, limit: int = 120) -> str:
    text = str(key)
    if not text.isprintable():
        text = repr(text)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _first(items: list[str], sep: str = ", ") -> str:
    shown = sep.join(items[:SHOWN_KEYS])
    return shown + (f"{sep}... ({len(items) - SHOWN_KEYS} more)" if len(items) > SHOWN_KEYS else "")


def mismatch_message(module: nn.Module, state_dict: Mapping[str, Any], *, source: str = "checkpoint") -> str:
    """``""`` when ``state_dict`` fits ``module`` key for key and shape for shape; otherwise one
    line with the counts of missing, unexpected and mis-shaped keys and the first few of each.

    Only shapes are compared, so ``module`` may live on the meta device."""
    own = module.state_dict()
    missing = sorted(k for k in own if k not in state_dict)
    unexpected = sorted(str(k) for k in state_dict if k not in own)
    shapes = sorted(
        f"{_key_text(k)}: checkpoint {tuple(state_dict[k].shape)} vs model {tuple(own[k].shape)}"
        for k in own if k in state_dict and tuple(state_dict[k].shape) != tuple(own[k].shape)
    )
    if not (missing or unexpected or shapes):
        return ""
    parts = [f"{source} does not match {type(module).__name__}."]
    if missing:
        parts.append(f"Missing keys ({len(missing)}): {_first([_key_text(k) for k in missing])}.")
    if unexpected:
        parts.append(f"Unexpected keys ({len(unexpected)}): {_first([_key_text(k) for k in unexpected])}.")
    if shapes:
        parts.append(f"Shape mismatches ({len(shapes)}): {_first(shapes, '; ')}.")
    parts.append("Check that the config matches the checkpoint (model size, context_dim, ...).")
    return " ".join(parts)


def nonfinite_message(state_dict: Mapping[str, Any], *, source: str = "checkpoint") -> str:
    """``""`` when every floating-point tensor of ``state_dict`` is finite; otherwise one line
    naming the first tensor with NaN or Inf and how many tensors have them."""
    import torch

    bad: list[str] = []
    for key, value in state_dict.items():
        if (isinstance(value, torch.Tensor) and value.device.type != "meta"
                and (value.is_floating_point() or value.is_complex()) and not bool(torch.isfinite(value).all())):
            bad.append(key)
    if not bad:
        return ""
    first = state_dict[bad[0]]
    n_nan = int(torch.isnan(first).sum())
    n_inf = int(torch.isinf(first).sum())
    return (f"{source} holds non-finite weights: {len(bad)} tensor(s) contain NaN or Inf, the first is "
            f"{_key_text(bad[0])!r} ({n_nan} NaN and {n_inf} Inf of {first.numel():,} values). The file is "
            "damaged or its training diverged; use another checkpoint, or, to inspect it, load it anyway "
            "with allow_nonfinite=True (CLI: `daclip-kit convert --allow-nonfinite`).")


def load_strict(module: nn.Module, state_dict: Mapping[str, torch.Tensor], *, source: str = "checkpoint",
                allow_nonfinite: bool | None = None) -> None:
    """``module.load_state_dict(state_dict, strict=True)`` with a concise, complete error.

    Args:
        module: the network (already allocated).
        state_dict: the weights.
        source: name of the checkpoint in messages.
        allow_nonfinite: accept tensors holding NaN or Inf; ``None``: as the surrounding
            :func:`nonfinite_weights_allowed` block says (default: refuse).

    Raises:
        CheckpointError: keys or shapes that do not match (the counts of missing, unexpected and
            mis-shaped keys, with the first few of each), or non-finite values (the first tensor
            holding them and how many tensors do).
    """
    problem = mismatch_message(module, state_dict, source=source)
    if problem:
        raise CheckpointError(problem)
    if not (nonfinite_allowed() if allow_nonfinite is None else allow_nonfinite):
        problem = nonfinite_message(state_dict, source=source)
        if problem:
            raise CheckpointError(problem)
        checked = _CHECKED.get()
        if checked is not None:
            checked.append(source)
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
        raise CheckpointError(f"{str(directory)!r} already exists; pass {option('overwrite')}.")
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
    with atomic_folder(directory) as tmp:
        save_file(state, str(tmp / WEIGHTS_NAME), metadata={"format": "pt"})
        (tmp / CONFIG_NAME).write_text(json.dumps(dict(config), indent=2, sort_keys=True, default=list) + "\n")
        for path in (tmp / WEIGHTS_NAME, tmp / CONFIG_NAME):
            apply_default_mode(path)
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
    return config, read_pretrained_weights(directory)


def read_pretrained_weights(directory: str | Path) -> dict[str, torch.Tensor]:
    """The state dict of a folder written by :func:`save_pretrained` (its ``config.json`` unread)."""
    return read_state_dict(Path(directory) / WEIGHTS_NAME, wrappers=(), strip=())


def state_dict_sha256(weights: nn.Module | Mapping[str, torch.Tensor]) -> str:
    """The SHA-256 (hex) of a network's weights: what a calibration records as "measured on these".

    Every entry of the state dict, in sorted key order, contributes its key, dtype, shape and the
    SHA-256 of its values' bytes (C order, on the CPU); the digest hashes those lines. It depends
    on nothing else (not the device, the storage layout, nor tensors shared under two keys, whose
    bytes are read once), so a network and the same network loaded back from its safetensors
    folder have the same digest, and changing any one value, dtype or shape changes it.

    Args:
        weights: the network (its ``state_dict()``) or a state dict.
    """
    import hashlib

    import torch

    state = weights.state_dict() if isinstance(weights, torch.nn.Module) else weights
    total = hashlib.sha256()
    seen: dict[tuple[Any, ...], str] = {}
    for key in sorted(state):
        tensor = state[key].detach()
        ident = (tensor.device, tensor.untyped_storage().data_ptr(), tensor.storage_offset(), tuple(tensor.shape),
                 tuple(tensor.stride()), tensor.dtype)
        if ident not in seen or tensor.numel() == 0:
            values = tensor.cpu().contiguous().reshape(-1).view(torch.uint8).numpy()
            seen[ident] = hashlib.sha256(values.tobytes()).hexdigest()
        line = f"{key}\t{str(tensor.dtype).removeprefix('torch.')}\t{list(tensor.shape)}\t{seen[ident]}\n"
        total.update(line.encode())
    return total.hexdigest()


def describe_source(checkpoint: Any) -> str:
    """How error messages name a checkpoint: its path, or "the given state dict"."""
    return str(checkpoint) if isinstance(checkpoint, (str, Path)) else "the given state dict"


#: :func:`check_allocation` refuses a network with more values than this many times the
#: checkpoint's, plus :data:`ALLOCATION_SLACK` (buffers that are not saved, such as attention masks).
ALLOCATION_FACTOR = 4
ALLOCATION_SLACK = 1 << 22


def network_config(module: nn.Module) -> dict[str, Any]:
    """The keyword config of ``module``: its ``export_config()``, else its ``config`` dataclass.

    Raises:
        CheckpointError: the module has neither, so a native folder could not rebuild it.
    """
    import dataclasses

    export_config = getattr(module, "export_config", None)
    if export_config is not None:
        return dict(export_config())
    config = getattr(module, "config", None)
    if dataclasses.is_dataclass(config) and not isinstance(config, type):
        return to_dict(config)
    raise CheckpointError(f"{type(module).__name__} has neither export_config() nor a dataclass 'config'; "
                          "add one so a native folder can rebuild it.")


def _config_of(module: Any) -> dict[str, Any]:
    try:
        return network_config(module)
    except Exception:
        return {}


def _largest_sizes(config: Mapping[str, Any], prefix: str = "") -> list[tuple[float, str]]:
    """``(value, "key=value")`` for the numeric settings of ``config`` (nested dicts and lists of
    numbers included)."""
    found: list[tuple[float, str]] = []
    for key, value in config.items():
        name = f"{prefix}{key}"
        if isinstance(value, bool):
            continue
        if isinstance(value, (int, float)):
            found.append((float(value), f"{name}={value}"))
        elif isinstance(value, (list, tuple)) and value and all(
                isinstance(v, (int, float)) and not isinstance(v, bool) for v in value):
            found.append((float(max(value)), f"{name}={list(value)}"))
        elif isinstance(value, Mapping):
            found += _largest_sizes(value, prefix=f"{name}.")
    return found


def _value_limit(state_dict: Mapping[str, Any]) -> tuple[int, int]:
    """``(values the checkpoint holds, most values a network built for it may have)``."""
    held = sum(int(v.numel()) for v in state_dict.values() if hasattr(v, "numel"))
    return held, ALLOCATION_FACTOR * held + ALLOCATION_SLACK


def check_allocation(module: nn.Module, state_dict: Mapping[str, Any], *, source: str = "checkpoint",
                     config: Any = None) -> None:
    """Refuse to allocate ``module`` (built on the meta device) when it holds far more values than
    ``state_dict``: its config then describes a far larger network than the file holds.

    Raises:
        CheckpointError: naming both sizes and the config's largest settings.
    """
    params = sum(p.numel() for p in module.parameters())
    buffers = sum(b.numel() for b in module.buffers())
    wanted = params + buffers
    held, limit = _value_limit(state_dict)
    if wanted <= limit:
        return
    raise CheckpointError(
        f"The config for {source} describes a {type(module).__name__} of {wanted:,} values "
        f"(about {wanted * 4 / 2**30:,.1f} GiB as float32), but the checkpoint holds only {held:,}; it is not "
        f"allocated.{_blame(config if config is not None else _config_of(module))} Use the config the "
        f"checkpoint was saved with."
    )


def _blame(config: Any) -> str:
    """The sentence naming the three largest settings of ``config`` (a mapping or a config
    dataclass; ``""`` without one)."""
    import dataclasses

    if dataclasses.is_dataclass(config) and not isinstance(config, type):
        config = dataclasses.asdict(config)
    sizes = sorted(_largest_sizes(config), reverse=True) if isinstance(config, Mapping) else []
    return f" Check the sizes in its config (largest: {', '.join(t for _, t in sizes[:3])})." if sizes else ""


@contextlib.contextmanager
def _bounded_build(state_dict: Mapping[str, Any], source: str, config: Any = None) -> Iterator[None]:
    """Stop building a network (on the meta device) as soon as it holds far more tensors or values
    than ``state_dict``: a config with a huge depth would otherwise create millions of modules
    before :func:`check_allocation` could look at them. Only this thread's registrations count."""
    import threading

    from torch.nn.modules import module as torch_module

    held_values, max_values = _value_limit(state_dict)
    max_tensors = ALLOCATION_FACTOR * len(state_dict) + 1024
    thread = threading.get_ident()
    seen = {"tensors": 0, "values": 0}

    def count(_module, _name, tensor):
        if tensor is None or threading.get_ident() != thread:
            return None
        seen["tensors"] += 1
        seen["values"] += int(tensor.numel())
        if seen["tensors"] > max_tensors or seen["values"] > max_values:
            raise CheckpointError(
                f"The config for {source} describes a network of more than {seen['values']:,} values in "
                f"{seen['tensors']:,} tensors (building was stopped there), but the checkpoint holds only "
                f"{held_values:,} in {len(state_dict):,}; it is not allocated.{_blame(config)} Use the config "
                f"the checkpoint was saved with.")
        return None

    handles = [torch_module.register_module_parameter_registration_hook(count),
               torch_module.register_module_buffer_registration_hook(count)]
    try:
        yield
    finally:
        for handle in handles:
            handle.remove()


def build_on_meta(build: Callable[[], M], state_dict: Mapping[str, Any], *, source: str = "checkpoint",
                  config: Any = None) -> M:
    """``build()`` on the meta device (no memory), refused as soon as it grows far larger than
    ``state_dict`` (huge widths or depths in ``config``), named by its largest settings.

    Raises:
        CheckpointError: the network described is far larger than the checkpoint.
    """
    import torch

    with torch.device("meta"), _bounded_build(state_dict, source, config):
        net = build()
    check_allocation(net, state_dict, source=source, config=config)
    return net


def build_and_load(build: Callable[[], M], state_dict: Mapping[str, torch.Tensor], *,
                   source: str = "checkpoint", hint: Callable[[], str] | None = None,
                   config: Any = None, allow_nonfinite: bool | None = None) -> M:
    """Build a network without random initialisation and load ``state_dict`` strictly.

    The module is built on the meta device and checked against the checkpoint there (sizes,
    keys and shapes), so a wrong or hostile config costs no memory; only then is it allocated on
    the CPU, and every parameter and persistent buffer comes from the checkpoint.

    Args:
        build: returns the (empty) network.
        state_dict: the weights; see :func:`read_state_dict`.
        source: name of the checkpoint in messages (:func:`describe_source`).
        hint: called on a mismatch; its sentence is appended to the error (e.g. the config the
            checkpoint appears to have).
        config: the settings ``build`` uses (a mapping or a config dataclass), named when they
            describe a far larger network than the checkpoint holds (default: the module's
            ``export_config()`` or ``config``).
        allow_nonfinite: see :func:`load_strict`.

    Returns:
        The network in eval mode, on the CPU.

    Raises:
        CheckpointError: a config far larger than the checkpoint, keys that do not match (with
            counts and the first few), or non-finite weights.
    """

    def with_hint(message: str) -> str:
        extra = hint() if hint is not None else ""
        return f"{message} {extra}" if extra else message

    try:
        net = build_on_meta(build, state_dict, source=source, config=config)
    except CheckpointError as exc:
        raise CheckpointError(with_hint(str(exc))) from None
    mismatch = mismatch_message(net, state_dict, source=source)
    if mismatch:
        raise CheckpointError(with_hint(mismatch))
    net = net.to_empty(device="cpu")
    load_strict(net, state_dict, source=source, allow_nonfinite=allow_nonfinite)
    return net.eval()
