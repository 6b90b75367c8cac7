"""Training runs as benchmark weights: rows of models the authors never released (Tables 6, 7).

``daclip-kit train restoration --config RUN`` writes a run folder::

    OUT/config.toml                                   [network] name, [embedder] name/weights, [data]
    OUT/checkpoints/step-NNNNNNNN/{network,network-ema}/

Wherever the bench takes weights, a run folder or one of its checkpoint folders is accepted too:
:func:`resolve_model` picks the newest checkpoint's ``network-ema`` (else ``network``) and the
embedder the run was trained with (its ``config.toml``), so a DA-CLIP the user trained is used,
not the official one, and ``embedder.name = "none"`` means no embedder.

Torch-free: nothing is loaded here, only folders and config files are read.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..config import tomllib
from ..errors import CheckpointError, ConfigError, DaclipKitError, WeightsNotFoundError
from ..io import read_utf8
from ..plugins import get_registry
from ..pretrained import is_native_folder, native_info
from ..specs import load_target
from ..train.checkpoints import (
    CHECKPOINTS,
    CONFIG_TOML,
    STATE_NAME,
    find_checkpoint,
    list_checkpoints,
    run_dir_of,
    stored_config_text,
)
from ..weights import is_hub_ref, is_path_like, resolve_weights

#: Network folders of a checkpoint, in order of preference (the EMA weights are the ones to test).
NETWORK_FOLDERS = ("network-ema", "network")


def run_folder_name(run: str) -> str:
    """The folder a bundled run file writes under ``runs/``: its name with ``-`` for ``_``
    (``table6_nafnet_daclip`` -> ``table6-nafnet-daclip``)."""
    return run.replace("_", "-")


def train_command(run: str) -> str:
    """The command that makes the run folder of the bundled run file ``run``."""
    return f"daclip-kit train restoration --config {run}"


@dataclass(frozen=True)
class ModelWeights:
    """The weights one restorer of a row is built from.

    Attributes:
        network: a weights file or native network folder.
        origin: where it came from, for notes (``"runs/table6-nafnet, step 2, network-ema"``).
        network_name: the backbone recorded in a native folder (``""``: a file, unknown).
        network_config: its recorded settings.
        embedder: ``None``: the recipe's embedder; ``""``: none (the run trained without one);
            else the registry name the run was trained with.
        embedder_options: the run's embedder settings (without ``weights``).
        embedder_weights: file or folder of the embedder (``None``: the recipe's, or none).
        run_dir: the run folder the network belongs to (``None``: not from a run).
    """

    network: Path
    origin: str
    network_name: str = ""
    network_config: Mapping[str, Any] = field(default_factory=dict)
    embedder: str | None = None
    embedder_options: Mapping[str, Any] = field(default_factory=dict)
    embedder_weights: Path | None = None
    run_dir: Path | None = None

    def describe(self) -> str:
        """One line: the network and the embedder it is measured with."""
        if self.embedder == "":
            emb = "no embedder (the run trained without one)"
        elif self.embedder is None:
            emb = f"embedder weights {self.embedder_weights}" if self.embedder_weights else ""
        else:
            where = f" {self.embedder_weights}" if self.embedder_weights else ""
            emb = f"embedder {self.embedder}{where} (from the run's {CONFIG_TOML})"
        return self.origin + (f"; {emb}" if emb else "")


def _network_folder(checkpoint: Path) -> Path | None:
    return next((checkpoint / n for n in NETWORK_FOLDERS if is_native_folder(checkpoint / n)), None)


def latest_checkpoint(path: str | Path) -> Path | None:
    """The checkpoint folder of ``path`` (a run folder: its newest checkpoint; a checkpoint folder:
    itself), or ``None``. Checkpoints holding only the network folders (copied without
    ``trainer_state.pt``) count too."""
    path = Path(path)
    if _network_folder(path) is not None:
        return path
    try:
        found = find_checkpoint(path)
    except CheckpointError:
        found = None
    if found is not None and _network_folder(found) is not None:
        return found
    with_networks = list_checkpoints(path, complete=lambda p: _network_folder(p) is not None)
    return with_networks[-1] if with_networks else None


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


def resolve_model(ref: str, *, search_dirs: Sequence[Path] = ()) -> ModelWeights:
    """The weights ``ref`` of a row: a run folder, a checkpoint folder, a native network folder
    (inside a run or not), a weights file, a registered weights name or an ``hf://`` reference (its cached copy,
    downloaded on first use). Nothing else is downloaded.

    Raises:
        WeightsNotFoundError: nothing usable at ``ref``, or the run's embedder weights are gone.
        UnknownComponentError: ``ref`` is neither a path nor a registered name.
        ConfigError, CheckpointError: an unreadable run config or ``config.json``.
    """
    if is_hub_ref(ref):  # a folder or file on the Hub: its cached copy
        ref = str(resolve_weights(ref, search_dirs=search_dirs))
    path = Path(ref).expanduser()
    run_dir: Path | None = None
    checkpoint: Path | None = None
    if is_path_like(ref) and not path.exists():
        raise WeightsNotFoundError(
            f"{ref!r} does not exist; give a `daclip-kit train restoration` run folder (its out_dir, e.g. "
            "runs/table6-nafnet), one of its checkpoint or network folders, or a weights file.")
    if path.is_dir() and not is_native_folder(path):
        checkpoint = latest_checkpoint(path)
        network = _network_folder(checkpoint) if checkpoint is not None else None
        if network is None:
            raise WeightsNotFoundError(
                f"{ref!r} is a folder but neither a training run (with {CHECKPOINTS}/step-N/"
                f"{'|'.join(NETWORK_FOLDERS)}), a checkpoint folder nor a network folder; give the out_dir of a "
                "`daclip-kit train restoration` run.")
        run_dir = run_dir_of(checkpoint)
        origin = f"{run_dir}, {checkpoint.name}, {network.name}" if run_dir != checkpoint else str(network)
    elif is_native_folder(path):
        network = path
        if path.parent.parent.name == CHECKPOINTS:
            checkpoint, run_dir = path.parent, path.parent.parent.parent
        origin = str(path)
    else:
        network = resolve_weights(ref, search_dirs=search_dirs)
        origin = str(network)
    name, config = "", {}
    if is_native_folder(network):
        info = native_info(network)
        name, config = info.name, dict(info.config)
    model = ModelWeights(network=network, origin=origin, network_name=name, network_config=config,
                         run_dir=run_dir)
    if run_dir is not None:
        embedder = run_embedder(run_dir, checkpoint, search_dirs)
        if embedder is not None:
            model = dataclasses.replace(model, **embedder)
    return model


def network_mismatch(model: ModelWeights, backbone: str, expected: Mapping[str, Any]) -> str:
    """Why ``model`` is not the network a row measures (``""``: it is): another backbone, or
    settings other than ``expected`` (unset settings count with the backbone's defaults)."""
    if not model.network_name:
        return ""
    if model.network_name != backbone:
        return (f"{model.origin} holds a {model.network_name!r} network, but this row measures {backbone!r}; "
                "give the run trained for this row")
    wrong = []
    for key, want in expected.items():
        have = model.network_config.get(key, _default_setting(backbone, key))
        if have != want:
            wrong.append(f"{key}={have!r} (the row needs {want!r})")
    if wrong:
        return f"{model.origin} holds a {backbone} network with {', '.join(wrong)}; give the run trained for this row"
    return ""


def _default_setting(backbone: str, key: str) -> Any:

    spec = get_registry("backbones").get(backbone)
    if key in spec.defaults:
        return spec.defaults[key]
    if spec.config:
        for f in dataclasses.fields(load_target(spec.config)):
            if f.name == key and f.default is not dataclasses.MISSING:
                return f.default
    return None


def describe_error(exc: DaclipKitError) -> str:
    """The first line of an error message (notes are one line)."""
    return str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
