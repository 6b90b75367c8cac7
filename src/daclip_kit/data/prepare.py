"""Build the universal layout from downloaded source data sets (``daclip-kit data prepare``).

Sources are read in their published layouts (:mod:`daclip_kit.data.sources`), missing partners
are reported before anything is written, LQ images of the clean-only sets are synthesised
(JPEG quality 10, Gaussian noise σ=50, masked faces), and the counts are compared with the
paper's Table 1. Source folders are only read: outputs go to ``out`` and are written atomically.

Before anything is written:

* **Links**: a file reached through a symbolic link that leads *out of* its source folder (to the
  file itself or to a folder on its way) is refused with an error naming the link and its target;
  ``prepare`` never copies files from outside a source tree into the data set. Links that stay
  inside the source folder are followed as usual.
* **Images**: every file to be copied is opened as an image (headers only); a file that is not
  one is an error naming it. At copy time both images of a pair are decoded (PNG: verified)
  before either is written, so a pair is written whole or not at all.
"""

from __future__ import annotations

import logging
import shutil
import zlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import InputError
from ..factory import create_degradation
from ..io import atomic_path, read_image, write_image
from ..plugins import get_registry
from ..specs import load_target
from ..types import DEGRADATIONS
from .sources import (
    READERS,
    TABLE1,
    SourcePair,
    SourceReader,
    SourceTask,
    expected_count,
    links_out_of,
)

log = logging.getLogger(__name__)


@dataclass
class CountRow:
    """Images of one universal folder: found in the sources vs the paper's Table 1."""

    degradation: str
    split: str
    found: int
    expected: int | None
    sources: list[str] = field(default_factory=list)

    @property
    def status(self) -> str:
        if self.found == 0:
            return "missing"
        if self.expected is None or self.found == self.expected:
            return "ok"
        return "fewer" if self.found < self.expected else "more"


@dataclass
class PrepareReport:
    """What :func:`prepare` found and wrote.

    Attributes:
        out: the universal folder.
        rows: one :class:`CountRow` per degradation and split (all ten, found or not).
        missing: files without their partner (skipped when ``skip_missing``).
        written: number of pairs written (0 for a dry run).
    """

    out: Path
    rows: list[CountRow]
    missing: list[str]
    written: int = 0

    def absent(self) -> list[str]:
        """Degradations with no image at all, with the sources that would provide them."""

        gaps = []
        for row in self.rows:
            if row.found == 0:
                provider = [n for n, cls in READERS.items() if (row.degradation, row.split) in cls.feeds]
                gaps.append(f"{row.split}/{row.degradation}: give --source {' or '.join(provider) or '?'}=DIR")
        return gaps

    def to_dict(self) -> dict:
        return {
            "out": str(self.out),
            "written": self.written,
            "rows": [{"degradation": r.degradation, "split": r.split, "found": r.found,
                      "expected": r.expected, "status": r.status, "sources": r.sources} for r in self.rows],
            "missing": self.missing,
            "absent": self.absent(),
        }


def load_reader(name: str, root: str | Path) -> SourceReader:
    """The registered reader ``name`` built on ``root``."""

    spec = get_registry("datasets").get(name)
    return load_target(spec.target)(Path(root))


def _check_out(out: Path, roots: Mapping[str, Path], overwrite: bool) -> None:
    out_r = out.resolve()
    for name, root in roots.items():
        r = root.resolve()
        if out_r == r or r in out_r.parents or out_r in r.parents:
            raise InputError(f"--out {str(out)!r} overlaps the {name} source {str(root)!r}; "
                             "choose an output folder outside every source folder.")
    if out.exists() and not out.is_dir():
        raise InputError(f"--out {str(out)!r} exists and is not a folder.")
    if out.is_dir() and any(out.iterdir()) and not overwrite:
        raise InputError(f"--out {str(out)!r} is not empty; choose an empty folder or pass --overwrite "
                         "(existing files with the same names are replaced, others are kept).")


def _seed_for(seed: int, *parts: str) -> int:
    return (seed * 2_654_435_761 + zlib.crc32("/".join(parts).encode())) % (2**63)


def _decoded(src: Path, size: int | None = None) -> Callable[[Path], None]:
    """Check that ``src`` is a whole image and return ``write(dst)``, which writes it to ``dst`` (a
    ``.png``) atomically: a byte copy for PNG (verified first), decoded and re-encoded otherwise.

    Raises:
        InputError: ``src`` cannot be decoded (truncated or not an image), naming it.
    """
    from PIL import Image

    try:
        if src.suffix.lower() == ".png" and size is None:
            with Image.open(src) as im:
                im.verify()

            def copy(dst: Path) -> None:
                with atomic_path(dst) as tmp:
                    shutil.copyfile(src, tmp)

            return copy
        with Image.open(src) as im:
            rgb = im.convert("RGB")
        if size is not None and rgb.size != (size, size):
            rgb = rgb.resize((size, size), Image.Resampling.BICUBIC)
    except Exception as exc:
        raise InputError(_unreadable(src, exc)) from exc

    def save(dst: Path) -> None:
        with atomic_path(dst) as tmp:
            rgb.save(tmp, format="PNG")

    return save


def _unreadable(path: Path, exc: BaseException) -> str:
    reason = " ".join(f"{type(exc).__name__}: {exc}".split())
    return (f"{str(path)!r} is not a readable image ({reason[:200]}); remove it from the source folder or "
            "replace it with the real file.")


def _probe(path: Path) -> tuple[int, int] | BaseException:
    """The pixel size of ``path`` read from its header, or the exception that reading raised."""
    from PIL import Image

    try:
        with Image.open(path) as im:
            return im.size
    except Exception as exc:
        return exc


def _check_links(name: str, root: Path, tasks: list[SourceTask]) -> None:
    files = [p for task in tasks for pair in task.pairs for p in (pair.gt, pair.lq) if p is not None]
    outside = links_out_of(root, files)
    if outside:
        link, real = outside[0]
        more = f" ({len(outside) - 1} more such files)" if len(outside) > 1 else ""
        raise InputError(
            f"{str(link)!r} is a symbolic link to {str(real)!r}, outside the {name} source folder {str(root)!r}{more}; "
            "data prepare never follows links out of a source tree. Replace the link with the file itself, or "
            "point --source at the folder that really holds it. Nothing was written."
        )


def _check_images(jobs: list[tuple[str, SourceTask, SourcePair]]) -> dict[Path, tuple[int, int]]:
    """Pixel sizes of every file of ``jobs`` (headers only).

    Raises:
        InputError: a file is not a readable image, naming the first one and the count.
    """
    sizes: dict[Path, tuple[int, int]] = {}
    bad: dict[Path, BaseException] = {}
    for _, _, pair in jobs:
        for path in (pair.gt, pair.lq):
            if path is None or path in sizes or path in bad:
                continue
            got = _probe(path)
            if isinstance(got, BaseException):
                bad[path] = got
            else:
                sizes[path] = got
    if bad:
        path, exc = next(iter(bad.items()))
        more = f" ({len(bad) - 1} more unreadable files)" if len(bad) > 1 else ""
        raise InputError(_unreadable(path, exc).rstrip(".") + f"{more}. Nothing was written.")
    return sizes


def plan(sources: Mapping[str, str | Path], *,
         paper_subsets: bool = True) -> tuple[list[tuple[str, SourceTask]], list[str]]:
    """Read every source; return ``[(source name, task)]`` and the list of missing partners."""
    tasks: list[tuple[str, SourceTask]] = []
    missing: list[str] = []
    for name, root in sources.items():
        reader = load_reader(name, root)
        found = reader.tasks()
        for task in found:
            limit = reader.paper_subset.get(task.split) if paper_subsets else None
            if limit is not None and len(task.pairs) > limit:
                task.pairs = task.pairs[:limit]
            missing.extend(task.missing)
            tasks.append((name, task))
        _check_links(name, Path(root), found)
    return tasks, missing


def prepare(sources: Mapping[str, str | Path], out: str | Path, *, seed: int = 0, masks: str | Path | None = None,
            overwrite: bool = False, dry_run: bool = False, skip_missing: bool = False,
            paper_subsets: bool = True, check_sizes: bool = True,
            progress: Callable[[int, int], None] | None = None) -> PrepareReport:
    """Build ``out/{train,val}/<degradation>/{LQ,GT}/*.png`` from downloaded data sets.

    Args:
        sources: ``{reader name: folder}``, e.g. ``{"gopro": "GOPRO_Large", "lol": "LOLdataset"}``.
        out: the universal folder to create.
        seed: seed of the synthetic LQ images (each file gets its own stream).
        masks: folder of official inpainting masks for CelebA-HQ (default: random thin strokes).
        overwrite: allow a non-empty ``out``.
        dry_run: read and count only; write nothing.
        skip_missing: leave out incomplete pairs instead of failing.
        paper_subsets: keep only the paper's subset size where it used one (Snow100K-L).
        check_sizes: check that LQ and GT of every pair have the same size (reads headers).
        progress: called as ``progress(done, total)`` after each pair.

    Raises:
        InputError: a source is missing or not in its published layout, a file is reached through
            a link out of its source folder, a file is not a readable image, files lack their
            partner (unless ``skip_missing``), LQ/GT sizes differ, or ``out`` is unsuitable.
    """
    import torch

    out = Path(out)
    roots = {name: Path(root) for name, root in sources.items()}
    if not roots:
        raise InputError("No --source given; pass one or more NAME=DIR (see `daclip-kit ls datasets`).")
    if not dry_run:
        _check_out(out, roots, overwrite)
    tasks, missing = plan(roots, paper_subsets=paper_subsets)

    pixel_sizes = _check_images([(name, task, pair) for name, task in tasks for pair in task.pairs])
    taken: dict[tuple[str, str], set[str]] = {}
    jobs: list[tuple[str, SourceTask, SourcePair, str]] = []
    problems = list(missing)
    for name, task in tasks:
        used = taken.setdefault((task.split, task.degradation), set())
        for pair in task.pairs:
            stem, k = pair.name, 1
            while stem in used:  # same name from another source, or several LQ for one GT
                k += 1
                stem = f"{name}_{pair.name}" if k == 2 else f"{name}_{pair.name}_{k}"
            used.add(stem)
            if check_sizes and pair.lq is not None and pixel_sizes[pair.lq] != pixel_sizes[pair.gt]:
                problems.append(f"{pair.lq} is {pixel_sizes[pair.lq]} but {pair.gt} is {pixel_sizes[pair.gt]}")
                continue
            jobs.append((name, task, pair, stem))
    if problems and not skip_missing:
        shown = "\n  ".join(problems[:20])
        more = f"\n  ... and {len(problems) - 20} more" if len(problems) > 20 else ""
        raise InputError(f"{len(problems)} file(s) cannot be paired:\n  {shown}{more}\n"
                         "Restore the missing files, or pass --skip-missing to leave these pairs out.")

    counts: dict[tuple[str, str], int] = {}
    by_source: dict[tuple[str, str], list[str]] = {}
    for name, task, _, _ in jobs:
        key = (task.degradation, task.split)
        counts[key] = counts.get(key, 0) + 1
        if name not in by_source.setdefault(key, []):
            by_source[key].append(name)
    # the ten official folders always get a row; other folders (val/rain100l) only where filled
    rows = [CountRow(d, s, counts.get((d, s), 0), expected_count(d, s), by_source.get((d, s), []))
            for s in ("train", "val")
            for d in list(DEGRADATIONS) + sorted(d for d, s2 in counts if s2 == s and d not in DEGRADATIONS)]
    report = PrepareReport(out=out, rows=rows, missing=problems)
    if dry_run:
        return report


    synth = {}
    for deg in dict.fromkeys(task.degradation for _, task, pair, _ in jobs if pair.lq is None):
        # clean-only sources: the LQ is the folder's own degradation applied to the GT
        cfg = {"mask_dir": str(masks)} if deg == "uncompleted" and masks is not None else {}
        synth[deg] = create_degradation(deg, **cfg)
    sizes = {name: load_reader_size(name) for name in roots}
    for i, (name, task, pair, stem) in enumerate(jobs):
        folder = out / task.split / task.degradation
        gt_path, lq_path = folder / "GT" / f"{stem}.png", folder / "LQ" / f"{stem}.png"
        size = sizes[name]
        write_gt = _decoded(pair.gt, size)  # both decode before either is written: pairs stay whole
        write_lq = _decoded(pair.lq, size) if pair.lq is not None else None
        write_gt(gt_path)
        if write_lq is not None:
            write_lq(lq_path)
        else:
            gen = torch.Generator().manual_seed(_seed_for(seed, task.split, task.degradation, stem))
            write_image(lq_path, synth[task.degradation](read_image(gt_path), generator=gen))
        report.written += 1
        if progress is not None:
            progress(i + 1, len(jobs))
    log.info("wrote %d pairs to %s", report.written, out)
    return report


def load_reader_size(name: str) -> int | None:
    """The GT side length a source is resized to (CelebA-HQ: 256), or ``None``."""

    return getattr(load_target(get_registry("datasets").get(name).target), "gt_size", None)


__all__ = ["TABLE1", "CountRow", "PrepareReport", "prepare", "plan", "load_reader"]
