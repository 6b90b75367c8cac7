"""The official universal layout and its caption CSVs.

Layout (``datasets/universal`` in the official README)::

    ROOT/
      train/<degradation>/LQ/*.png      degraded images
      train/<degradation>/GT/*.png      clean images, paired with LQ by sorted file name
      val/<degradation>/{LQ,GT}/*.png
      daclip_train.csv                  tab-separated, header "filepath<TAB>title"
      daclip_val.csv

``<degradation>`` is one of the ten official words. daclip-kit also writes composed images
into folders named ``"hazy+noisy"`` (labels joined by ``+``, in physical order).

A CSV row is ``filepath`` = path of the LQ image and ``title`` = ``"<caption>: <degradation>"``,
where the caption describes the clean image. DA-CLIP's training splits the title at ``": "``, so
captions must not contain ``": "`` themselves; :func:`clean_caption` replaces it.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from ..errors import InputError
from ..io import atomic_write_text
from ..types import DEGRADATIONS
from .paired import Pair, PairDataset, pair_folders

SPLITS: tuple[str, ...] = ("train", "val")
CSV_HEADER: tuple[str, str] = ("filepath", "title")
TITLE_SEPARATOR = ": "


def csv_name(split: str) -> str:
    """``"daclip_train.csv"`` / ``"daclip_val.csv"``."""
    return f"daclip_{split}.csv"


def clean_caption(caption: str) -> str:
    """One-line caption safe for the title format: whitespace collapsed, ``": "`` replaced by ``" - "``."""
    text = re.sub(r"\s+", " ", caption).strip()
    return text.replace(TITLE_SEPARATOR, " - ").rstrip(":").strip()


def make_title(caption: str, degradation: str) -> str:
    """``"<caption>: <degradation>"`` as in ``daclip_*.csv``."""
    return f"{clean_caption(caption)}{TITLE_SEPARATOR}{degradation}"


def split_title(title: str) -> tuple[str, str]:
    """``(caption, degradation)`` of a title (split at the last ``": "``).

    Raises:
        InputError: the title has no ``": "``.
    """
    caption, sep, degradation = title.rpartition(TITLE_SEPARATOR)
    if not sep:
        raise InputError(f"Title {title!r} has no {TITLE_SEPARATOR!r}; expected '<caption>: <degradation>'.")
    return caption, degradation


@dataclass(frozen=True)
class CaptionRow:
    """One CSV row: the LQ ``filepath`` with the clean ``caption`` and its ``degradation`` text."""

    filepath: str
    caption: str
    degradation: str

    @property
    def title(self) -> str:
        return make_title(self.caption, self.degradation)


def format_captions_csv(rows: Iterable[CaptionRow]) -> str:
    """The CSV text (tab-separated, ``\\n`` line ends, minimal quoting, no index column), as
    pandas ``to_csv(sep="\\t", index=False)`` writes it."""
    buf = io.StringIO()
    writer = csv.writer(buf, delimiter="\t", lineterminator="\n", quoting=csv.QUOTE_MINIMAL)
    writer.writerow(CSV_HEADER)
    for row in rows:
        writer.writerow((row.filepath, row.title))
    return buf.getvalue()


def write_captions_csv(path: str | Path, rows: Iterable[CaptionRow]) -> Path:
    """Write ``rows`` to ``path`` atomically in the official format."""

    atomic_write_text(path, format_captions_csv(rows))
    return Path(path)


def read_captions_csv(path: str | Path) -> list[CaptionRow]:
    """Read a ``daclip_*.csv`` file.

    Raises:
        InputError: missing file, wrong header, or a title without ``": "``.
    """
    path = Path(path)
    if not path.is_file():
        raise InputError(f"Caption CSV {str(path)!r} does not exist; write it with `daclip-kit data caption`.")
    with path.open(newline="", encoding="utf-8") as fh:
        reader = csv.reader(fh, delimiter="\t")
        header = next(reader, None)
        if header is None or tuple(header) != CSV_HEADER:
            raise InputError(f"{str(path)!r} must start with the header 'filepath<TAB>title', got {header!r}.")
        rows = []
        for lineno, rec in enumerate(reader, start=2):
            if not rec:
                continue
            if len(rec) != 2:
                raise InputError(f"{path!s}:{lineno}: expected 2 tab-separated columns, got {len(rec)}.")
            caption, degradation = split_title(rec[1])
            rows.append(CaptionRow(rec[0], caption, degradation))
    return rows


def _folder_order(name: str) -> tuple[int, str]:
    return (DEGRADATIONS.index(name), name) if name in DEGRADATIONS else (len(DEGRADATIONS), name)


def degradation_folders(root: str | Path, split: str) -> list[str]:
    """Names of the degradation folders of ``root/split`` (official order first, then the rest)."""
    base = Path(root) / split
    if not base.is_dir():
        raise InputError(f"{str(base)!r} does not exist; expected the universal layout "
                         f"ROOT/{split}/<degradation>/{{LQ,GT}}/.")
    names = [p.name for p in base.iterdir() if p.is_dir() and (p / "LQ").is_dir() and (p / "GT").is_dir()]
    return sorted(names, key=_folder_order)


def scan_universal(root: str | Path, split: str, degradations: Sequence[str] | None = None):
    """The pairs of ``root/split``, grouped by degradation folder.

    Returns:
        ``{folder: [Pair, ...]}`` with the degradation text of each pair (``"hazy, noisy"`` for
        the folder ``hazy+noisy``) and empty captions.

    Raises:
        InputError: a folder is missing or its LQ and GT counts differ.
    """
    from ..degradations.composition import degradation_text, parse_labels

    names = list(degradations) if degradations is not None else degradation_folders(root, split)
    out = {}
    for name in names:
        folder = Path(root) / split / name
        if not folder.is_dir():
            raise InputError(f"{str(folder)!r} does not exist; available: {degradation_folders(root, split)}.")
        out[name] = pair_folders(folder / "LQ", folder / "GT", degradation=degradation_text(parse_labels(name)))
    return out


def _key(path: str | Path) -> str:
    """The last four path parts (``split/degradation/LQ/name``): matches CSV rows whatever root they used."""
    return "/".join(Path(str(path).replace("\\", "/")).parts[-4:])


class UniversalDataset(PairDataset):
    """Reader of the universal layout as a torch dataset of dicts (see :class:`PairDataset`).

    Args:
        root: the universal folder.
        split: ``"train"`` or ``"val"``.
        degradations: folders to use (default: every folder found).
        captions: attach the captions of ``daclip_<split>.csv`` when it exists.
        crop: as :class:`~daclip_kit.data.paired.PairDataset`.
        seed: as :class:`~daclip_kit.data.paired.PairDataset`.
        augment: as :class:`~daclip_kit.data.paired.PairDataset`.

    Attributes:
        groups: ``{folder: number of pairs}``.

    Example:
        >>> ds = UniversalDataset("datasets/universal", "val", crop=256)  # doctest: +SKIP
        >>> item = ds[0]; item["lq"].shape, item["degradation"], item["caption"]  # doctest: +SKIP
    """

    def __init__(self, root: str | Path, split: str = "train", *, degradations: Sequence[str] | None = None,
                 captions: bool = True, crop: int | None = None, seed: int = 0, augment: bool = False):
        groups = scan_universal(root, split, degradations)
        lookup = {}
        csv_path = Path(root) / csv_name(split)
        if captions and csv_path.is_file():
            lookup = {_key(r.filepath): r.caption for r in read_captions_csv(csv_path)}
        pairs = [Pair(p.lq, p.gt, p.degradation, lookup.get(_key(p.lq), ""))
                 for group in groups.values() for p in group]
        super().__init__(pairs, crop=crop, seed=seed, augment=augment)
        self.root = Path(root)
        self.split = split
        self.groups = {name: len(group) for name, group in groups.items()}
