"""A model is one unit: one resolver for every reference, one description of the whole model.

:func:`resolve_model` takes any reference (registry weights name, released file, native folder,
model folder, training run or checkpoint folder, ``hf://OWNER/NAME[@REV][/SUB]``, a distilled
student) and returns a :class:`ModelUnit`: the network and its weights, its sampler, the DA-CLIP it
was conditioned on, that DA-CLIP's words and calibration, and provenance. ``restore``, ``classify``,
``bench``, ``score``, ``export``, ``push``, the demo, ``train --init-from`` and
:func:`daclip_kit.load` all take models through it.

Example:
    >>> from daclip_kit.model import REFERENCE_KINDS
    >>> sorted(REFERENCE_KINDS)
    ['checkpoint', 'file', 'hub', 'model', 'name', 'native', 'run']
"""

from __future__ import annotations

from .resolve import daclip_of, pair, provide, resolve_model
from .unit import MODEL_INDEX, REFERENCE_KINDS, ModelIndex, ModelUnit, PairedDaclip, daclip_record, read_index

__all__ = [
    "MODEL_INDEX",
    "REFERENCE_KINDS",
    "ModelIndex",
    "ModelUnit",
    "PairedDaclip",
    "daclip_of",
    "daclip_record",
    "pair",
    "provide",
    "read_index",
    "resolve_model",
]
