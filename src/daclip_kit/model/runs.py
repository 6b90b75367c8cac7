"""What a training run says about its models: its run config and the embedder it trained with
(torch-free). Used by :mod:`daclip_kit.model.resolve` for restorers saved before they recorded their
DA-CLIP, and by the benchmark's notes.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from ..config import tomllib
from ..errors import ConfigError, WeightsNotFoundError
from ..io import read_utf8
from ..train.checkpoints import CONFIG_TOML, STATE_NAME, stored_config_text
from ..weights import is_hub_ref, is_path_like, resolve_weights


def read_run_config(run_dir: Path, checkpoint: Path | None = None) -> tuple[dict[str, Any], str] | None:
    """``(run config as a dict, where it came from)``: ``run_dir/config.toml``, else the copy in the
    checkpoint's ``trainer_state.pt``; ``None`` if neither exists.

    Raises:
        ConfigError: the file is not valid TOML.
    """
    path = run_dir / CONFIG_TOML
    if path.is_file():
        text = read_utf8(path, "Run config", ConfigError, f"restore the run's {CONFIG_TOML}")
        where = str(path)
    elif checkpoint is not None and (checkpoint / STATE_NAME).is_file():
        stored = stored_config_text(checkpoint)
        if stored is None:
            return None
        text, where = stored
    else:
        return None
    try:
        return tomllib.loads(text), where
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{where} is not valid TOML ({exc}); restore the run's {CONFIG_TOML}.") from None


def _training_dir(run_dir: Path, config: Mapping[str, Any]) -> Path | None:
    """The folder the run was started from: ``run_dir`` minus the run's relative ``out_dir``."""
    out = config.get("out_dir")
    if not isinstance(out, str) or not out or Path(out).is_absolute():
        return None
    parts = Path(out).parts
    here = run_dir.resolve().parts
    if len(here) > len(parts) and here[-len(parts):] == parts:
        return Path(*here[:-len(parts)])
    return None


def _embedder_weights(ref: str, run_dir: Path, config: Mapping[str, Any], where: str,
                      search_dirs: Sequence[Path]) -> Path:
    """The embedder weights ``ref`` of a run: a path as the run saw it (relative paths are
    relative to where the run was started, else to the current folder), or a weights name."""
    if not is_path_like(ref) or is_hub_ref(ref):
        return resolve_weights(ref, search_dirs=search_dirs)
    path = Path(ref).expanduser()
    candidates = [path]
    if not path.is_absolute():
        base = _training_dir(run_dir, config)
        candidates = ([base / path] if base is not None else []) + [path, run_dir.parent / path]
    for c in candidates:
        if c.exists():
            return c
    raise WeightsNotFoundError(
        f"the embedder weights {ref!r} the run was trained with ({where} [embedder] weights) do not exist "
        f"(looked for {', '.join(str(c) for c in dict.fromkeys(candidates))}); put them back there.")


def _is_null(value: Any) -> bool:
    return value is None or (isinstance(value, str) and value.strip().lower() in ("none", "null"))


def run_embedder(run_dir: Path, checkpoint: Path | None, search_dirs: Sequence[Path]) -> dict[str, Any] | None:
    """``{"embedder": name or "", "embedder_options": {...}, "embedder_weights": path or None}`` of
    the run, or ``None`` when the run config cannot be found."""
    found = read_run_config(run_dir, checkpoint)
    if found is None:
        return None
    config, where = found
    section = config.get("embedder", {"name": "daclip", "weights": "daclip-vit-b-32"})  # the trainer's default
    if not isinstance(section, Mapping):
        raise ConfigError(f"{where}: [embedder] must be a table; restore the run's {CONFIG_TOML}.")
    name = str(section.get("name", "daclip"))
    if name == "none":
        return {"embedder": "", "embedder_options": {}, "embedder_weights": None}
    # TOML has no null: the run wrote None as "none" (unset: the embedder's default); the device is the bench's
    options = {k: v for k, v in section.items()
               if k not in ("name", "weights", "device") and not _is_null(v)}
    ref = None if _is_null(section.get("weights")) else section.get("weights")
    weights = _embedder_weights(str(ref), run_dir, config, where, search_dirs) if ref else None
    return {"embedder": name, "embedder_options": options, "embedder_weights": weights}
