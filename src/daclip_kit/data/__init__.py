"""Data: the official universal layout, paired folders, source-data-set readers, preparation,
captions and the offline mini data set.

Submodules import torch; this package itself does not (its ``plugin`` module is loaded at start-up).

* :mod:`.universal`: :class:`UniversalDataset`, caption CSV read/write in the official format.
* :mod:`.paired`: :class:`PairedFolderDataset`, :class:`PairDataset`, deterministic crops.
* :mod:`.sources`: one reader per published layout, Table 1 counts.
* :mod:`.prepare`: ``prepare()`` (``daclip-kit data prepare``).
* :mod:`.captions`: BLIP or user captions, :func:`write_dataset_csvs`.
* :mod:`.mini`: :func:`build_mini` (``daclip-kit data mini``).
"""

from __future__ import annotations

from .._lazy import lazy_exports

_LAZY = {
    "UniversalDataset": "universal",
    "read_captions_csv": "universal",
    "write_captions_csv": "universal",
    "make_title": "universal",
    "split_title": "universal",
    "PairDataset": "paired",
    "PairedFolderDataset": "paired",
    "Pair": "paired",
    "TABLE1": "sources",
    "write_dataset_csvs": "captions",
    "read_captions_file": "captions",
    "blip_captioner": "captions",
    "build_mini": "mini",
}

__all__ = list(_LAZY)

__getattr__ = lazy_exports(__name__, _LAZY, globals())
