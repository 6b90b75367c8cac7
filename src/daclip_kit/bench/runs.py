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

from ..errors import CheckpointError, ConfigError, DaclipKitError
from ..model import provide
from ..model import resolve_model as resolve
from ..model.runs import run_embedder
from ..plugins import get_registry
from ..pretrained import is_native_folder
from ..specs import load_target
from ..train.checkpoints import (
    CHECKPOINTS,
    CONFIG_TOML,
    find_checkpoint,
    list_checkpoints,
    run_dir_of,
)

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


def resolve_model(ref: str, *, search_dirs: Sequence[Path] = ()) -> ModelWeights:
    """The weights ``ref`` of a row, through the one model resolver
    (:func:`daclip_kit.model.resolve_model`): a run folder, a checkpoint folder, a native network folder
    (inside a run or not), a model folder, a weights file, a registered weights name or an ``hf://``
    reference. The DA-CLIP the network was trained with comes with it. Nothing is downloaded except
    what an ``hf://`` reference names.

    Raises:
        WeightsNotFoundError: nothing usable at ``ref``; a named file not on disk; the run's DA-CLIP is gone.
        UnknownComponentError: ``ref`` is neither a path nor a registered name.
        ConfigError, CheckpointError: an unreadable run config or ``config.json``; ``ref`` is a DA-CLIP.
    """
    unit = resolve(ref, search_dirs=search_dirs)
    if unit.is_daclip:
        raise ConfigError(f"{ref!r} is a DA-CLIP, not a restoration network; a row needs a restorer's weights.")
    daclip = None if unit.unconditioned else unit.daclip
    unit, daclip = provide(unit, daclip, download=False, search_dirs=search_dirs)
    assert unit.network is not None
    network = unit.network
    checkpoint = network.parent if network.parent.parent.name == CHECKPOINTS else None
    run_dir = run_dir_of(checkpoint) if checkpoint is not None else None
    origin = str(network)
    if unit.kind in ("run", "checkpoint") and run_dir is not None and checkpoint is not None:
        origin = f"{run_dir}, {checkpoint.name}, {network.name}"
    model = ModelWeights(network=network, origin=origin, network_name=unit.network_name,
                         network_config=dict(unit.network_config), run_dir=run_dir)
    if unit.unconditioned:
        return dataclasses.replace(model, embedder="")
    if daclip is None:
        return model
    options: dict[str, Any] = {}
    if run_dir is not None:  # the run's embedder settings (quantize_input, model), not its weights
        found = run_embedder(run_dir, checkpoint, search_dirs) if daclip.path is not None else None
        options = dict(found["embedder_options"]) if found else {}
    return dataclasses.replace(model, embedder="daclip", embedder_options=options, embedder_weights=daclip.path)


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
