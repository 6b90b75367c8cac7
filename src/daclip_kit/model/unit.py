"""What one model is, whatever reference named it (torch-free).

A :class:`ModelUnit` is the answer of :func:`daclip_kit.model.resolve_model`: the restoration network
and its weights, the sampler it restores with, the DA-CLIP it was conditioned on
(:class:`PairedDaclip`), that DA-CLIP's degradation words and calibration, and where it all came
from. Every verb (``restore``, ``classify``, ``bench``, ``score``, ``export``, ``push``, the demo,
``train --init-from``) receives this one description.

On disk a model travels as native folders (``config.json`` + ``model.safetensors``) tied together
in two ways, both written by the trainers:

* a restorer's ``config.json`` records its DA-CLIP under ``"daclip"``
  (:func:`daclip_record`): where it is (a weights name, an ``hf://`` reference, or a folder
  relative to the restorer's own folder, ``../daclip``), the SHA-256 of its weights, its embedding
  width and its degradation words;
* a folder holding several components has a ``model_index.json`` (diffusers' ``model_index.json``
  in spirit) naming them: ``{"format": "daclip-kit-model/1", "restorer": "network-ema",
  "daclip": "daclip", "provenance": {...}}``. Each training checkpoint is such a folder, and so is a
  pushed repository.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..checkpoint import CONFIG_NAME, WEIGHTS_NAME, read_json_config
from ..errors import CheckpointError
from ..io import atomic_write_text, read_utf8
from ..specs import WeightSpec

MODEL_INDEX = "model_index.json"
INDEX_FORMAT = "daclip-kit-model/1"
#: The keys of a ``model_index.json``; any other is an error.
INDEX_KEYS = ("format", "restorer", "daclip", "provenance")
#: The keys of a restorer's ``"daclip"`` record.
RECORD_KEYS = ("weights", "sha256", "embed_dim", "degradations")

#: How a reference was given, in the words docs and errors use.
REFERENCE_KINDS = {
    "name": "registered weights name (daclip-kit weights list)",
    "file": "weights file (.pth/.pt/.safetensors)",
    "native": "native folder (config.json + model.safetensors)",
    "model": "model folder (model_index.json + component folders)",
    "checkpoint": "training checkpoint folder (checkpoints/step-N)",
    "run": "training run folder (its newest checkpoint)",
    "hub": "Hugging Face Hub reference (hf://OWNER/NAME[@REV][/SUB])",
}


@dataclass(frozen=True)
class PairedDaclip:
    """The DA-CLIP a restorer goes with.

    Attributes:
        source: the reference as recorded or given (``"../daclip"``, ``"daclip-vit-b-32"``, ``"hf://..."``).
        path: its local file or native folder; ``None`` while named weights are still to be downloaded
            (then :attr:`spec` says which) or when it was not found (:attr:`missing` says why).
        spec: the registered weights still to download, else ``None``.
        sha256: SHA-256 of its weights file (``model.safetensors`` of a folder) as recorded, or ``""``.
        embed_dim: width of its embeddings, when known.
        words: its degradation words, in label order, when known.
        missing: why it could not be found (``""``: found, or to be downloaded).
    """

    source: str
    path: Path | None = None
    spec: WeightSpec | None = None
    sha256: str = ""
    embed_dim: int | None = None
    words: tuple[str, ...] | None = None
    missing: str = ""

    def describe(self) -> str:
        """``"<source> (32-d, 11 words, sha256 1a2b3c4d5e6f)"``: how errors name it."""
        facts = [f"{self.embed_dim}-d" if self.embed_dim else "", f"{len(self.words)} words" if self.words else "",
                 f"sha256 {self.sha256[:12]}" if self.sha256 else ""]
        where = f" at {self.path}" if self.path is not None and str(self.path) != self.source else ""
        inner = ", ".join(f for f in facts if f)
        return f"{self.source}{where}" + (f" ({inner})" if inner else "")


@dataclass(frozen=True)
class ModelUnit:
    """One model, as every verb receives it from :func:`~daclip_kit.model.resolve_model`.

    Attributes:
        ref: the reference as given.
        kind: what it was (a key of :data:`REFERENCE_KINDS`).
        network: the restoration network's weights (file or native folder); ``None`` for a model that
            is a DA-CLIP alone, or while :attr:`network_spec` is still to be downloaded.
        network_spec: registered network weights still to download, else ``None``.
        network_name: the registry name recorded with the network (``""``: a released file, which
            does not say; the recipe names it).
        network_config: the network's recorded settings.
        sampler: ``{"name", "config"}`` the network restores with (recorded at training or
            distillation), else ``None`` (the recipe's).
        daclip: the paired DA-CLIP, else ``None`` (no record: the recipe's DA-CLIP applies).
        unconditioned: the network was trained without an embedder (no DA-CLIP at all).
        provenance: run, step, base model, data summary, daclip-kit version, as recorded.
    """

    ref: str
    kind: str
    network: Path | None = None
    network_spec: WeightSpec | None = None
    network_name: str = ""
    network_config: Mapping[str, Any] = field(default_factory=dict)
    sampler: Mapping[str, Any] | None = None
    daclip: PairedDaclip | None = None
    unconditioned: bool = False
    provenance: Mapping[str, Any] = field(default_factory=dict)

    @property
    def is_daclip(self) -> bool:
        """Whether the model is a DA-CLIP alone (no restoration network)."""
        return self.network is None and self.network_spec is None and self.daclip is not None

    @property
    def words(self) -> tuple[str, ...] | None:
        """The degradation words of its DA-CLIP, when known."""
        return self.daclip.words if self.daclip is not None else None

    @property
    def calibration(self) -> dict[str, Any] | None:
        """The unknown-degradation calibration recorded in its DA-CLIP's folder, else ``None``: as
        recorded, with the digest of the weights it was measured on (``state_dict_sha256``); loading
        the DA-CLIP applies it only when that digest matches
        (:func:`~daclip_kit.embedders.daclip.convert.load_daclip`)."""
        if self.daclip is None or self.daclip.path is None or not is_native_dir(self.daclip.path):
            return None
        ood = read_json_config(self.daclip.path).get("config", {}).get("ood")
        return dict(ood) if isinstance(ood, Mapping) else None


def is_native_dir(path: Path) -> bool:
    """Whether ``path`` is a native model folder (``config.json`` + ``model.safetensors``)."""
    return path.is_dir() and (path / CONFIG_NAME).is_file() and (path / WEIGHTS_NAME).is_file()


def weights_sha256(path: Path) -> str:
    """SHA-256 of a weights file, or of a native folder's ``model.safetensors``."""
    from ..weights.hub import file_sha256

    return file_sha256(path / WEIGHTS_NAME if path.is_dir() else path)


def daclip_facts(path: Path) -> tuple[int | None, tuple[str, ...] | None]:
    """``(embedding width, degradation words)`` a native DA-CLIP folder records (``None`` where it does
    not say; a released file says neither)."""
    if not is_native_dir(path):
        return None, None
    config = read_json_config(path).get("config", {})
    model = config.get("model_config") if isinstance(config, Mapping) else None
    dim = model.get("embed_dim") if isinstance(model, Mapping) else None
    words = config.get("degradations") if isinstance(config, Mapping) else None
    return (int(dim) if isinstance(dim, int) else None,
            tuple(words) if isinstance(words, list) and words else None)


def daclip_record(source: str, path: Path | None, *, embed_dim: int | None = None,
                  words: tuple[str, ...] | None = None) -> dict[str, Any]:
    """The ``"daclip"`` entry a restorer's ``config.json`` records for the DA-CLIP at ``path``, named
    ``source`` (a weights name, an ``hf://`` reference or a folder relative to the restorer's
    folder)."""
    found_dim, found_words = daclip_facts(path) if path is not None else (None, None)
    dim = embed_dim if embed_dim is not None else found_dim
    said = words if words is not None else found_words
    return {"weights": source, "sha256": weights_sha256(path) if path is not None else "",
            "embed_dim": dim, "degradations": list(said) if said else None}


def read_record(record: Any, where: str) -> dict[str, Any]:
    """A ``"daclip"`` record, checked.

    Raises:
        CheckpointError: not an object with a ``weights`` reference, or an unknown key.
    """
    if not isinstance(record, Mapping) or not isinstance(record.get("weights"), str) or not record["weights"]:
        raise CheckpointError(f"{where}: 'daclip' must be an object with a 'weights' reference (a weights name, "
                              "hf://... or a folder relative to this one); write the folder again.")
    unknown = sorted(str(k) for k in record if k not in RECORD_KEYS)
    if unknown:
        raise CheckpointError(f"{where}: unknown key {unknown[0]!r} in 'daclip'; its keys are "
                              f"{', '.join(RECORD_KEYS)}.")
    return dict(record)


@dataclass(frozen=True)
class ModelIndex:
    """A ``model_index.json``: the component folders (or references) of a model folder."""

    restorer: str | None
    daclip: str | None
    provenance: Mapping[str, Any] = field(default_factory=dict)


def read_index(folder: Path) -> ModelIndex | None:
    """The ``model_index.json`` of ``folder``, or ``None`` when it has none.

    Raises:
        CheckpointError: not valid JSON, another format, an unknown key or a component that is not text.
    """
    path = folder / MODEL_INDEX
    if not path.is_file():
        return None
    try:
        data = json.loads(read_utf8(path, "Model index", CheckpointError, "write the folder again"))
    except json.JSONDecodeError as exc:
        raise CheckpointError(f"{path} is not valid JSON ({exc}); write the folder again.") from None
    if not isinstance(data, dict) or data.get("format") != INDEX_FORMAT:
        raise CheckpointError(f"{path} is not a daclip-kit model index (format {INDEX_FORMAT!r}); write the "
                              "folder again with this daclip-kit.")
    unknown = sorted(str(k) for k in data if k not in INDEX_KEYS)
    if unknown:
        raise CheckpointError(f"{path}: unknown key {unknown[0]!r}; the keys are {', '.join(INDEX_KEYS)}.")
    for key in ("restorer", "daclip"):
        if data.get(key) is not None and not (isinstance(data[key], str) and data[key]):
            raise CheckpointError(f"{path}: {key!r} must name a component folder (text) or be null.")
    provenance = data.get("provenance") or {}
    return ModelIndex(data.get("restorer"), data.get("daclip"), dict(provenance) if isinstance(provenance, Mapping)
                      else {})


def index_text(restorer: str | None, daclip: str | None, provenance: Mapping[str, Any] | None = None) -> str:
    """The text of a ``model_index.json``."""
    data = {"format": INDEX_FORMAT, "restorer": restorer, "daclip": daclip, "provenance": dict(provenance or {})}
    return json.dumps(data, indent=2, sort_keys=False, default=str) + "\n"


def write_index(path: Path, restorer: str | None, daclip: str | None,
                provenance: Mapping[str, Any] | None = None) -> Path:
    """Write ``path`` (a ``model_index.json``) atomically."""
    atomic_write_text(path, index_text(restorer, daclip, provenance))
    return path
