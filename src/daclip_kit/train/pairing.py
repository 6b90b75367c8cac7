"""What a trained restorer takes with it: the DA-CLIP it was conditioned on, and the model index.

Every checkpoint of ``train restoration`` and ``train distill`` is a model folder
(:mod:`daclip_kit.model.unit`)::

    checkpoints/step-N/daclip/            the DA-CLIP the network was trained with (when it is not a
                                          registered or Hub one): hard links to its files when it
                                          was a native folder, else written from the loaded model
    checkpoints/step-N/network[-ema]/     config.json records {"daclip": {"weights": "../daclip",
                                          "sha256": ..., "embed_dim": ..., "degradations": [...]}}
    checkpoints/step-N/model_index.json   {"restorer": "network-ema", "daclip": "daclip", ...}

so copying the checkpoint or the run folder, or pushing it, keeps the pair. A DA-CLIP given by a
registered name (``daclip-vit-b-32``) or an ``hf://`` reference is recorded by that reference and its
hash instead of copied.
"""

from __future__ import annotations

import logging
import os
import shutil
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from ..checkpoint import WEIGHTS_NAME
from ..model.resolve import DACLIP_FOLDER, daclip_of
from ..model.unit import MODEL_INDEX, PairedDaclip, daclip_facts, weights_sha256, write_index
from ..weights.fetch import is_path_like
from ..weights.hub import is_hub_ref

log = logging.getLogger(__name__)

#: How a restorer's folder refers to the DA-CLIP stored beside it in the same checkpoint.
SIBLING = f"../{DACLIP_FOLDER}"


def link_or_copy(source: Path, target: Path) -> None:
    """``target`` becomes a hard link to ``source``, or a copy where links cannot be made."""
    try:
        os.link(source, target)
    except OSError:  # another file system, or links not allowed
        shutil.copy2(source, target)


class DaclipPairing:
    """The DA-CLIP of a restoration run, as its checkpoints record it.

    Args:
        embedder_name: the run's ``[embedder] name`` (only ``daclip`` is recorded).
        options: the run's ``[embedder]`` options (``weights``: a name, ``hf://`` or a path).
        model: the loaded embedding provider (``None``: the network takes no conditioning).
    """

    def __init__(self, embedder_name: str, options: Mapping[str, Any], model: Any | None):
        self.model = model
        self.reference: str | None = None  # a registered name or hf://: recorded, not copied
        self.folder: Path | None = None    # a native folder: linked into each checkpoint
        self._named: PairedDaclip | None = None  # the DA-CLIP `reference` resolves to
        self._sha: dict[tuple[int, int, int], str] = {}
        self.tracked = model is not None and embedder_name == "daclip"
        if not self.tracked:
            return
        weights = options.get("weights")
        if weights is not None and (is_hub_ref(weights) or not is_path_like(weights)):
            self.reference = str(weights)
            paired = daclip_of(self.reference)
            self._named = paired
        elif weights is not None:
            paired = daclip_of(str(weights))
            if paired.path is not None and paired.path.is_dir():
                self.folder = paired.path

    @property
    def words(self) -> tuple[str, ...] | None:
        found = getattr(getattr(self.model, "model", None), "degradations", None)
        return tuple(found) if found else None

    @property
    def embed_dim(self) -> int | None:
        dim = getattr(self.model, "embed_dim", None)
        return int(dim) if dim else None

    def _hash(self, path: Path) -> str:
        target = path / WEIGHTS_NAME if path.is_dir() else path
        st = target.stat()
        key = (st.st_ino, st.st_size, st.st_mtime_ns)
        if key not in self._sha:
            self._sha[key] = weights_sha256(path)
        return self._sha[key]

    def writers(self) -> dict[str, Callable[[Path], Any]]:
        """``{"daclip": writer}`` of the DA-CLIP a checkpoint stores (empty when it is recorded by reference
        or there is none); placed before the network writers, which record its hash."""
        if not self.tracked or self.reference is not None:
            return {}
        return {DACLIP_FOLDER: self._write}

    def _write(self, path: Path) -> None:
        if self.folder is not None:
            path.mkdir()
            from ..embedders.daclip.convert import folder_files

            for name in folder_files(self.folder):  # the calibration's ood.safetensors too
                link_or_copy(self.folder / name, path / name)
            return
        from ..embedders.daclip.convert import save_daclip

        assert self.model is not None  # tracked
        save_daclip(self.model.model, path)

    def record(self, network_folder: Path) -> Mapping[str, Any] | bool | None:
        """What the restorer saved at ``network_folder`` records under ``"daclip"``: ``None`` for a
        network trained without conditioning, ``False`` (nothing) for an embedder other than DA-CLIP."""
        if self.model is None:
            return None
        if not self.tracked:
            return False
        if self.reference is not None:
            assert self._named is not None
            path = self._named.path
            sha = self._hash(path) if path is not None else ""
            return {"weights": self.reference, "sha256": sha, "embed_dim": self.embed_dim,
                    "degradations": list(self.words) if self.words else None}
        sibling = network_folder.parent / DACLIP_FOLDER
        dim, words = daclip_facts(sibling)
        return {"weights": SIBLING, "sha256": self._hash(sibling), "embed_dim": dim or self.embed_dim,
                "degradations": list(words) if words else None}

    def index_writer(self, restorer: str, provenance: Mapping[str, Any]) -> dict[str, Callable[[Path], Any]]:
        """``{"model_index.json": writer}`` naming the checkpoint's restorer and stored DA-CLIP."""
        daclip = DACLIP_FOLDER if self.tracked and self.reference is None else None
        return {MODEL_INDEX: lambda path: write_index(path, restorer, daclip, provenance)}
