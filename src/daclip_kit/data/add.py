"""Adding a user's own degradation to a universal folder (``daclip-kit data add``).

The user has two folders: degraded images (LQ) and their clean versions (GT). :func:`add_degradation`
pairs them by file stem (``0001.jpg`` in LQ with ``0001.png`` in GT: the extensions may differ, the
stems must match exactly, case included), checks every image (readable, LQ and GT the same size),
splits the pairs into train and val, and writes::

    ROOT/train/NAME/{LQ,GT}/<file>     copies (or links) of the user's files, names kept
    ROOT/val/NAME/{LQ,GT}/<file>
    ROOT/daclip_{train,val}.csv        NAME's rows added, every other row kept

Other degradation folders of ``ROOT`` are never touched. Nothing is written when a problem is
found (each reported on its own line), unless ``skip_bad`` leaves the bad pairs out. A pair that
training reads differently from how it is stored (an alpha channel, LQ and GT of other channels or
bit depths) is written with one warning line (:func:`pair_warning`). The two
folders are written into a hidden staging folder inside ``ROOT`` and moved into place when
complete; the CSVs are then replaced atomically (a failure moves the folders back out).

Captions (the DA-CLIP caption describes the clean image): ``"auto"`` uses BLIP when the
``[caption]`` extra and its weights are available, else :data:`FALLBACK_CAPTION` for every
image (with a warning); ``"blip"`` insists on BLIP; ``"none"`` always uses the fallback; any
other value is a captions file (see :func:`~daclip_kit.data.captions.read_captions_file`).
"""

from __future__ import annotations

import logging
import os
import random
import re
import shutil
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import ConfigError, DaclipKitError, InputError
from ..io import IMAGE_SUFFIXES, ImageKind, atomic_write_text, clean_stale_temporaries, image_kind, read_image
from ..types import DEGRADATIONS
from .universal import SPLITS, CaptionRow, _key, csv_name, format_captions_csv, read_captions_csv

log = logging.getLogger(__name__)

#: A degradation name: lowercase letters and digits, ``-`` or ``_`` inside; at most 40 characters.
NAME_PATTERN = re.compile(r"^[a-z0-9](?:[a-z0-9_-]{0,38}[a-z0-9])?$")
#: The caption of every image when no captioner is available (documented in docs/data.md).
FALLBACK_CAPTION = "a photo"
#: Suffix of the hidden staging folder inside ROOT.
STAGING = ".add-partial"
#: Default share of the pairs kept for val when neither ``val`` nor ``val_fraction`` is given.
DEFAULT_VAL_FRACTION = 0.1


def check_name(name: str) -> str:
    """``name`` if it is a valid new degradation word.

    Raises:
        ConfigError: not lowercase letters/digits with inner ``-``/``_`` (e.g. ``"banding"``,
            ``"old-scan"``, ``"moire_2"``).
    """
    if not isinstance(name, str) or not NAME_PATTERN.match(name):
        raise ConfigError(f"Degradation name {name!r} is not allowed: use 1-40 lowercase letters and digits, "
                          "with '-' or '_' inside (e.g. banding, old-scan, moire_2).")
    return name


@dataclass(frozen=True)
class UserPair:
    """One matched pair: the two source files and their common stem."""

    stem: str
    lq: Path
    gt: Path


@dataclass
class AddReport:
    """What :func:`add_degradation` did (or, with problems and no ``skip_bad``, refused to do).

    Attributes:
        root, name: the universal folder and the degradation.
        counts: ``{"train": n, "val": m}`` pairs written.
        skipped: one line per pair left out (``skip_bad``).
        caption_source: ``"blip"``, ``"file"`` or ``"fallback"``.
        csvs: the CSV files written.
        notes: things worth knowing (e.g. a CSV that did not exist before).
        warnings: one line per written pair whose files training reads differently from how they
            are stored (an alpha channel dropped, LQ and GT of other channels or bit depths;
            :func:`pair_warning`), also logged as warnings.
    """

    root: Path
    name: str
    counts: dict[str, int] = field(default_factory=dict)
    skipped: list[str] = field(default_factory=list)
    caption_source: str = ""
    csvs: list[Path] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    def to_dict(self) -> dict:
        return {"root": str(self.root), "name": self.name, "counts": self.counts, "skipped": self.skipped,
                "caption_source": self.caption_source, "csvs": [str(p) for p in self.csvs], "notes": self.notes,
                "warnings": self.warnings}


class PairProblems(InputError):
    """The user's folders have problems; ``problems`` holds one line each."""

    def __init__(self, problems: Sequence[str]):
        self.problems = list(problems)
        head = f"{len(self.problems)} problem(s) in the pairs; nothing was written (fix them, or pass --skip-bad " \
               "to leave those pairs out):"
        super().__init__("\n".join([head, *self.problems]))


def _images_by_stem(folder: Path, side: str, problems: list[tuple[str, str]]) -> dict[str, Path]:
    if not folder.is_dir():
        raise InputError(f"--{side.lower()} {str(folder)!r} is not a folder.")
    out: dict[str, Path] = {}
    for p in sorted(folder.iterdir()):
        if not p.is_file() or p.suffix.lower() not in IMAGE_SUFFIXES:
            continue
        if p.stem in out:
            problems.append((p.stem, f"{side} {p.name}: same stem as {out[p.stem].name}; pairs are matched by "
                                      "stem, keep one of them"))
            continue
        out[p.stem] = p
    if not out:
        raise InputError(f"--{side.lower()} {str(folder)!r} holds no images ({', '.join(IMAGE_SUFFIXES)}).")
    return out


def match_pairs(lq_dir: str | Path, gt_dir: str | Path) -> tuple[list[UserPair], list[tuple[str, str]]]:
    """Pairs of ``lq_dir`` and ``gt_dir`` matched by file stem, and ``(stem, line)`` for each
    unmatched file or duplicate stem. Nothing is read but the folder listings.

    Raises:
        InputError: a folder is missing or holds no images.
    """
    problems: list[tuple[str, str]] = []
    lq = _images_by_stem(Path(lq_dir), "LQ", problems)
    gt = _images_by_stem(Path(gt_dir), "GT", problems)
    problems += [(s, f"LQ {lq[s].name}: no GT image with stem {s!r}") for s in sorted(set(lq) - set(gt))]
    problems += [(s, f"GT {gt[s].name}: no LQ image with stem {s!r}") for s in sorted(set(gt) - set(lq))]
    pairs = [UserPair(s, lq[s], gt[s]) for s in sorted(set(lq) & set(gt))]
    return pairs, problems


def check_pair(pair: UserPair) -> str | None:
    """``None`` when both images decode and have the same size, else the problem in one line."""
    sizes = []
    for side, path in (("LQ", pair.lq), ("GT", pair.gt)):
        try:
            sizes.append(tuple(read_image(path).shape[-2:]))
        except DaclipKitError as exc:
            return f"{side} {path.name}: {exc}"
    if sizes[0] != sizes[1]:
        (h1, w1), (h2, w2) = sizes
        return (f"pair {pair.stem}: LQ {pair.lq.name} is {w1}x{h1} but GT {pair.gt.name} is {w2}x{h2}; "
                "paired images must have the same size")
    return None


def _depth_and_channels(kind: ImageKind) -> str:
    return f"{kind.bits}-bit {'grayscale' if kind.gray else 'colour'}"


def pair_warning(pair: UserPair) -> str | None:
    """One line on what training will not see as a readable pair's files hold it, else ``None``:
    an alpha channel (RGBA, LA, transparent palette: training reads the colours only) or an LQ and
    GT of different channels or bit depths (e.g. 16-bit grayscale GT, 8-bit colour LQ: both are
    read as RGB in [0, 1], so the network also learns that difference). These are warnings: the
    pair is written."""
    lq, gt = image_kind(pair.lq), image_kind(pair.gt)
    parts = [f"{side} {path.name} has an alpha channel ({kind.mode}), which training drops"
             for side, path, kind in (("LQ", pair.lq, lq), ("GT", pair.gt, gt)) if kind.alpha is not None]
    if (lq.gray, lq.bits) != (gt.gray, gt.bits):
        parts.append(f"LQ {pair.lq.name} is {_depth_and_channels(lq)} but GT {pair.gt.name} is "
                     f"{_depth_and_channels(gt)}; both are read as RGB in [0, 1], so the network also learns "
                     "that difference (convert one of them if it is not intended)")
    return f"pair {pair.stem}: " + "; ".join(parts) if parts else None


def split_pairs(pairs: Sequence[UserPair], *, val: int | None, val_fraction: float | None,
                seed: int) -> dict[str, list[UserPair]]:
    """``{"train": [...], "val": [...]}``: ``val`` pairs (or ``round(val_fraction * n)``, default
    :data:`DEFAULT_VAL_FRACTION`, at least one when there are two pairs or more) drawn with
    ``random.Random(seed)``; both lists sorted by stem.

    Raises:
        ConfigError: both ``val`` and ``val_fraction``, a value out of range, or no training pair left.
    """
    n = len(pairs)
    if val is not None and val_fraction is not None:
        raise ConfigError("Give either --val N or --val-fraction F, not both.")
    if val_fraction is not None:
        if not 0.0 <= val_fraction < 1.0:
            raise ConfigError(f"--val-fraction must be in [0, 1), got {val_fraction}.")
        count = round(val_fraction * n)
    elif val is not None:
        if val < 0:
            raise ConfigError(f"--val must be >= 0, got {val}.")
        count = val
    else:
        count = max(1, round(DEFAULT_VAL_FRACTION * n)) if n >= 2 else 0
    if count >= n:
        raise ConfigError(f"{count} val pair(s) of {n} would leave none for training; lower --val/--val-fraction.")
    chosen = set(random.Random(seed).sample(range(n), count))
    return {"train": [p for i, p in enumerate(pairs) if i not in chosen],
            "val": [p for i, p in enumerate(pairs) if i in chosen]}


def caption_function(captions: str, report: AddReport) -> Callable[[Sequence[Path]], list[str]]:
    """The captioner of the GT files for the ``captions`` choice (see the module doc); sets
    ``report.caption_source``.

    Raises:
        DaclipKitError: ``"blip"`` without BLIP, or a captions file that cannot be read.
    """
    from .captions import DEFAULT_BLIP, CaptionLookup, blip_captioner, read_captions_file

    if captions in ("auto", "blip"):
        try:
            caption = blip_captioner(DEFAULT_BLIP)
            report.caption_source = "blip"
            return caption
        except DaclipKitError as exc:
            if captions == "blip":
                raise
            log.warning("BLIP is not available (%s); every caption is %r. Pass --captions FILE for your own.",
                        str(exc).split(". ")[0], FALLBACK_CAPTION)
    if captions in ("auto", "blip", "none"):
        report.caption_source = "fallback"
        return lambda paths: [FALLBACK_CAPTION] * len(paths)
    lookup = CaptionLookup(read_captions_file(captions))
    report.caption_source = "file"

    def from_file(paths: Sequence[Path]) -> list[str]:
        found = [lookup.get(p) for p in paths]
        absent = [p.name for p, c in zip(paths, found, strict=True) if not c]
        if absent:
            raise InputError(f"{len(absent)} GT image(s) have no caption in {captions!r}, e.g. {absent[:5]}.")
        return [str(c) for c in found]

    return from_file


def _place(src: Path, dst: Path, link: bool) -> None:
    """Copy ``src`` to ``dst``, or with ``link`` a hard link (a symbolic link to the absolute
    source where hard links are impossible, e.g. across file systems)."""
    if not link:
        shutil.copy2(src, dst)
        return
    try:
        os.link(src, dst)
    except OSError:
        os.symlink(src.resolve(), dst)


def _check_sorted_pairing(folder: Path) -> None:
    """The layout pairs LQ and GT by sorted file name: refuse extensions that would sort them apart."""
    from .paired import pair_folders

    for pair in pair_folders(folder / "LQ", folder / "GT"):
        if pair.lq.stem != pair.gt.stem:
            raise InputError(f"With their extensions, LQ {pair.lq.name} and GT {pair.gt.name} sort to the same place, "
                             "so the layout (paired by sorted name) would mismatch pairs; give both folders one "
                             "extension (e.g. all .png). Nothing was written.")


def _rows_path_style(rows: Sequence[CaptionRow]) -> bool:
    """Whether an existing CSV names its images relative to its folder (else absolute paths)."""
    return bool(rows) and not any(Path(r.filepath).is_absolute() for r in rows)


def add_degradation(name: str, lq_dir: str | Path, gt_dir: str | Path, root: str | Path, *, val: int | None = None,
                    val_fraction: float | None = None, link: bool = False, overwrite: bool = False,
                    skip_bad: bool = False, captions: str = "auto", seed: int = 0) -> AddReport:
    """Add the pairs of ``lq_dir``/``gt_dir`` to the universal folder ``root`` as degradation ``name``.

    Args:
        name: the new degradation word (:func:`check_name`).
        lq_dir, gt_dir: the user's degraded and clean images, matched by stem.
        root: the universal folder (created when absent).
        val, val_fraction: how many pairs go to val (see :func:`split_pairs`).
        link: hard-link (else symlink) the files instead of copying them.
        overwrite: replace an existing ``name`` (its folders and CSV rows).
        skip_bad: leave out pairs with problems (listed in ``report.skipped``) instead of refusing.
        captions: ``"auto"``, ``"blip"``, ``"none"`` or a captions file (module doc).
        seed: seed of the val draw.

    Returns:
        an :class:`AddReport`.

    Raises:
        PairProblems: problems in the pairs (one line each) without ``skip_bad``; nothing written.
        InputError: ``name`` exists in ``root`` without ``overwrite``, or no usable pair.
        ConfigError: a bad name or val setting.
    """
    check_name(name)
    root = Path(root)
    if root.exists() and not root.is_dir():
        raise InputError(f"--out {str(root)!r} is a file; give the universal folder.")
    existing = [s for s in SPLITS if (root / s / name).exists()]
    if existing and not overwrite:
        raise InputError(f"{str(root)!r} already has the degradation {name!r} ({', '.join(existing)}); pass "
                         "--overwrite to replace it or choose another name.")
    if name in DEGRADATIONS:
        log.info("%r is a built-in degradation word: the pairs extend it", name)
    pairs, problems = match_pairs(lq_dir, gt_dir)
    problems += [(pair.stem, problem) for pair in pairs if (problem := check_pair(pair)) is not None]
    report = AddReport(root, name)
    if problems and not skip_bad:
        raise PairProblems([line for _, line in problems])
    report.skipped = [line for _, line in problems]
    bad_stems = {stem for stem, _ in problems}
    pairs = [p for p in pairs if p.stem not in bad_stems]
    if not pairs:
        raise InputError(f"No usable pair in {str(lq_dir)!r} and {str(gt_dir)!r}; nothing was written.")
    for pair in pairs:
        if (warning := pair_warning(pair)) is not None:
            log.warning("%s", warning)
            report.warnings.append(warning)
    splits = split_pairs(pairs, val=val, val_fraction=val_fraction, seed=seed)
    caption = caption_function(captions, report)
    texts = {s: caption([p.gt for p in group]) if group else [] for s, group in splits.items()}

    root.mkdir(parents=True, exist_ok=True)
    clean_stale_temporaries(root, suffix=STAGING, folders=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{name}.{os.getpid()}.", suffix=STAGING, dir=root))
    moved: list[tuple[Path, Path | None]] = []  # (placed folder, its previous version kept aside)
    try:
        for split, group in splits.items():
            for p in group:
                for side, src in (("LQ", p.lq), ("GT", p.gt)):
                    dst = staging / split / name / side / src.name
                    dst.parent.mkdir(parents=True, exist_ok=True)
                    _place(src, dst, link)
            report.counts[split] = len(group)
            if group:
                _check_sorted_pairing(staging / split / name)
        new_csv = _csv_texts(root, name, splits, texts, report)
        for split in SPLITS:
            target = root / split / name
            old = None
            if target.exists():
                old = staging / "old" / split
                old.parent.mkdir(parents=True, exist_ok=True)
                os.replace(target, old)
            if (staging / split / name).is_dir():
                target.parent.mkdir(parents=True, exist_ok=True)
                moved.append((target, old))
                os.replace(staging / split / name, target)
            elif old is not None:
                moved.append((target, old))
        for split, text in new_csv.items():
            atomic_write_text(root / csv_name(split), text)
            report.csvs.append(root / csv_name(split))
        moved.clear()
    finally:
        for target, old in reversed(moved):  # undo: the new folders out, the old ones back
            if target.exists():
                shutil.rmtree(target, ignore_errors=True)
            if old is not None:
                os.replace(old, target)
        shutil.rmtree(staging, ignore_errors=True)
    return report


def _csv_texts(root: Path, name: str, splits: dict[str, list[UserPair]], texts: dict[str, list[str]],
               report: AddReport) -> dict[str, str]:
    """The new text of ``daclip_<split>.csv`` for each split: the old rows minus any of ``name``,
    plus ``name``'s, named as the old rows are (relative to ROOT or absolute)."""
    out = {}
    for split in SPLITS:
        path = root / csv_name(split)
        old = read_captions_csv(path) if path.is_file() else []
        if not path.is_file() and any(p for p in (root / split).glob("*/LQ")):
            report.notes.append(f"{csv_name(split)} did not exist: it now lists only {name}'s images; caption the "
                                f"others with `daclip-kit data caption {root}`")
        prefix = f"{split}/{name}/"
        kept = [r for r in old if not _key(r.filepath).startswith(prefix)]
        if not splits[split] and len(kept) == len(old) and path.is_file():
            continue
        relative = _rows_path_style(old)
        rows = list(kept)
        for p, text in zip(splits[split], texts[split], strict=True):
            rel = Path(split) / name / "LQ" / p.lq.name
            filepath = rel.as_posix() if relative else str(root.resolve() / rel)
            rows.append(CaptionRow(filepath, text, name))
        if rows:
            out[split] = format_captions_csv(rows)
    return out
