"""Readers of the public data sets behind the DA-CLIP mixed-degradation data, each in its own
published layout.

A reader is built on the folder the user downloaded and extracted (``GoPro(root)``) and lists
:class:`SourceTask` objects: which universal folder (degradation and split) receives which pairs.
Data sets with clean images only (DIV2K, Flickr2K, LIVE1, CBSD68, CelebA-HQ) give pairs without
an LQ file; ``daclip-kit data prepare`` synthesises the LQ as the paper did (JPEG quality 10,
Gaussian noise σ=50, masked faces). Readers never write into ``root``.

Readers may list files reached through symbolic links; :func:`links_out_of` finds those that lead
out of the source folder, which ``data prepare`` refuses.

Table 1 of the paper gives the image counts that :data:`TABLE1` records. Two notes:

* JPEG / noisy training: Table 1 says 3,550 and Appendix A says 3,440. DIV2K train (800) +
  DIV2K valid (100) + Flickr2K (2,650) = 3,550, so the DIV2K reader uses both DIV2K splits.
* Snow100K-L: the paper used a subset (1,872 train / 601 test) whose file list is not published;
  daclip-kit takes the first images in sorted order (:attr:`SourceReader.paper_subset`).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar, Literal, overload

from ..errors import InputError
from ..io import IMAGE_SUFFIXES

#: Paper Table 1: ``{degradation: (train, test)}`` image counts. The test images go to ``val``.
TABLE1: dict[str, tuple[int, int]] = {
    "motion-blurry": (2103, 1111),
    "hazy": (6000, 1000),
    "jpeg-compressed": (3550, 29),
    "low-light": (485, 15),
    "noisy": (3550, 68),
    "raindrop": (861, 58),
    "rainy": (1800, 100),
    "shadowed": (2680, 408),
    "snowy": (1872, 601),
    "uncompleted": (29900, 100),
}


def expected_count(degradation: str, split: str) -> int | None:
    """Table 1 count of ``degradation`` in the universal ``split`` (``"train"``/``"val"``)."""
    counts = TABLE1.get(degradation)
    if counts is None:
        return None
    return counts[0] if split == "train" else counts[1]


@dataclass(frozen=True)
class SourcePair:
    """A clean image and its degraded version (``lq=None``: to be synthesised).

    ``name`` is the output file stem, shared by LQ and GT so that sorted-name pairing holds.
    """

    gt: Path
    lq: Path | None
    name: str


@dataclass
class SourceTask:
    """Pairs of one source for one universal folder.

    Attributes:
        degradation: universal folder (official word).
        split: ``"train"`` or ``"val"``.
        pairs: complete pairs (``lq=None``: the LQ image is synthesised from GT).
        missing: human-readable descriptions of files without their partner.
    """

    degradation: str
    split: str
    pairs: list[SourcePair] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)


def images_in(folder: Path, recursive: bool = False) -> list[Path]:
    """Sorted image files of ``folder`` (natural order of numbers: ``2.png`` before ``10.png``)."""
    pattern = "**/*" if recursive else "*"
    files = [p for p in folder.glob(pattern) if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES]
    return sorted(files, key=natural_key)


def links_out_of(root: Path, paths: Iterable[Path]) -> list[tuple[Path, Path]]:
    """``(path, where it really is)`` for each of ``paths`` that resolves outside ``root``: a
    symbolic link (to the file, or to a folder on its way) pointing out of the source tree."""
    base = Path(root).resolve()
    found = []
    for path in paths:
        real = Path(path).resolve()
        if not real.is_relative_to(base):
            found.append((Path(path), real))
    return found


def natural_key(path: Path) -> list:
    parts = re.split(r"(\d+)", str(path))
    return [int(p) if p.isdigit() else p.lower() for p in parts]


def _prefixed_stem(prefix: str) -> Callable[[Path], str]:
    """``path -> "<prefix>_<stem>"``."""
    return lambda p: f"{prefix}_{p.stem}"


def match_by_key(lq_files: Iterable[Path], gt_files: Iterable[Path], key_lq: Callable[[Path], str],
                 key_gt: Callable[[Path], str], name: Callable[[Path], str], where: str,
                 task: SourceTask) -> None:
    """Fill ``task.pairs`` with LQ/GT files whose keys agree; record unmatched files as missing."""
    gt_by_key = {key_gt(p): p for p in gt_files}
    used = set()
    for lq in lq_files:
        k = key_lq(lq)
        gt = gt_by_key.get(k)
        if gt is None:
            task.missing.append(f"{where}: no clean image for {lq.name}")
            continue
        used.add(k)
        task.pairs.append(SourcePair(gt=gt, lq=lq, name=name(gt)))
    for k, gt in gt_by_key.items():
        if k not in used:
            task.missing.append(f"{where}: no degraded image for {gt.name}")


def _number(path: Path) -> str:
    digits = re.findall(r"\d+", path.stem)
    return str(int(digits[0])) if digits else path.stem


class SourceReader:
    """Base of the source readers.

    Attributes:
        name: registry name (``--source NAME=DIR``).
        title: data set name as published.
        feeds: the ``(degradation, split)`` folders it fills.
        layout: the expected folder structure (shown in errors).
        paper_subset: per split, the number of images the paper used when it used a subset.
    """

    name: ClassVar[str] = ""
    title: ClassVar[str] = ""
    feeds: ClassVar[tuple[tuple[str, str], ...]] = ()
    layout: ClassVar[str] = ""
    paper_subset: ClassVar[dict[str, int]] = {}
    gt_size: ClassVar[int | None] = None

    def __init__(self, root: str | Path):
        self.root = Path(root)
        if not self.root.is_dir():
            raise InputError(f"{self.title} folder {str(self.root)!r} does not exist. Expected:\n{self.layout}")

    @overload
    def find(self, *candidates: str, required: Literal[True] = True) -> Path: ...
    @overload
    def find(self, *candidates: str, required: bool) -> Path | None: ...

    def find(self, *candidates: str, required: bool = True) -> Path | None:
        """The first existing sub-folder among ``candidates`` (``"a/b"`` paths), or an error."""
        for cand in candidates:
            p = self.root / cand
            if p.is_dir():
                return p
        if not required:
            return None
        raise InputError(
            f"{self.title}: none of {', '.join(repr(c) for c in candidates)} found in {str(self.root)!r}. "
            f"Expected layout:\n{self.layout}\nPoint --source {self.name}=DIR at the extracted folder."
        )

    def tasks(self) -> list[SourceTask]:  # pragma: no cover - abstract
        raise NotImplementedError

    def gt_only(self, degradation: str, split: str, files: list[Path]) -> SourceTask:
        task = SourceTask(degradation, split)
        task.pairs = [SourcePair(gt=p, lq=None, name=p.stem) for p in files]
        return task


def _nonempty(reader: SourceReader, folder: Path, what: str) -> list[Path]:
    files = images_in(folder)
    if not files:
        raise InputError(f"{reader.title}: {str(folder)!r} holds no images ({what}). Expected layout:\n{reader.layout}")
    return files


class GoPro(SourceReader):
    """GoPro (GOPRO_Large, Nah et al. 2017), motion blur; 2,103 train / 1,111 test pairs::

        ROOT/train/<sequence>/blur/*.png   ROOT/train/<sequence>/sharp/*.png
        ROOT/test/<sequence>/blur/*.png    ROOT/test/<sequence>/sharp/*.png

    ``blur_gamma`` folders are ignored. Output names are ``<sequence>_<frame>``.
    """

    name = "gopro"
    title = "GoPro"
    feeds = (("motion-blurry", "train"), ("motion-blurry", "val"))
    layout = "  train/<sequence>/{blur,sharp}/*.png\n  test/<sequence>/{blur,sharp}/*.png"

    def tasks(self) -> list[SourceTask]:
        out = []
        for split, folder in (("train", "train"), ("val", "test")):
            base = self.find(folder)
            task = SourceTask("motion-blurry", split)
            sequences = sorted(p for p in base.iterdir() if p.is_dir())
            if not sequences:
                raise InputError(f"GoPro: {str(base)!r} holds no sequence folders. Expected layout:\n{self.layout}")
            for seq in sequences:
                if not (seq / "blur").is_dir() or not (seq / "sharp").is_dir():
                    task.missing.append(f"{seq}: needs both blur/ and sharp/")
                    continue
                match_by_key(images_in(seq / "blur"), images_in(seq / "sharp"), lambda p: p.name,
                             lambda p: p.name, _prefixed_stem(seq.name), str(seq), task)
            out.append(task)
        return out


class Reside6k(SourceReader):
    """RESIDE-6k (as released with DehazeFormer), haze; 6,000 train / 1,000 test pairs::

        ROOT/train/hazy/*   ROOT/train/GT/*
        ROOT/test/hazy/*    ROOT/test/GT/*

    Pairs share the file name; RESIDE-style hazy names ``<id>_<A>_<beta>.png`` are also
    matched to ``<id>.png``.
    """

    name = "reside-6k"
    title = "RESIDE-6k"
    feeds = (("hazy", "train"), ("hazy", "val"))
    layout = "  train/{hazy,GT}/*\n  test/{hazy,GT}/*"

    def tasks(self) -> list[SourceTask]:
        out = []
        for split, folder in (("train", "train"), ("val", "test")):
            hazy = self.find(f"{folder}/hazy")
            gt = self.find(f"{folder}/GT", f"{folder}/gt", f"{folder}/clear")
            task = SourceTask("hazy", split)
            gt_files = _nonempty(self, gt, "clean images")
            stems = {p.stem for p in gt_files}

            def key(p: Path, stems: set[str] = stems) -> str:
                return p.stem if p.stem in stems else p.stem.split("_")[0]

            match_by_key(_nonempty(self, hazy, "hazy images"), gt_files, key, lambda p: p.stem,
                         lambda p: p.stem, str(hazy.parent), task)
            out.append(task)
        return out


class DIV2K(SourceReader):
    """DIV2K high-resolution images (clean only) for JPEG and noise training (900 images)::

        ROOT/DIV2K_train_HR/0001.png ... 0800.png
        ROOT/DIV2K_valid_HR/0801.png ... 0900.png
    """

    name = "div2k"
    title = "DIV2K"
    feeds = (("jpeg-compressed", "train"), ("noisy", "train"))
    layout = "  DIV2K_train_HR/*.png\n  DIV2K_valid_HR/*.png"

    def tasks(self) -> list[SourceTask]:
        files = _nonempty(self, self.find("DIV2K_train_HR"), "HR images")
        valid = self.find("DIV2K_valid_HR", required=False)
        if valid is not None:
            files += images_in(valid)
        return [self.gt_only(deg, "train", files) for deg, _ in self.feeds]


class Flickr2K(SourceReader):
    """Flickr2K high-resolution images (clean only) for JPEG and noise training (2,650 images)::

        ROOT/Flickr2K_HR/000001.png ... 002650.png     (or the images directly in ROOT)
    """

    name = "flickr2k"
    title = "Flickr2K"
    feeds = (("jpeg-compressed", "train"), ("noisy", "train"))
    layout = "  Flickr2K_HR/*.png"

    def tasks(self) -> list[SourceTask]:
        folder = self.find("Flickr2K_HR", "Flickr2K/Flickr2K_HR", required=False) or self.root
        files = _nonempty(self, folder, "HR images")
        return [self.gt_only(deg, "train", files) for deg, _ in self.feeds]


class LIVE1(SourceReader):
    """LIVE1 reference images (clean only), JPEG test set, 29 images::

        ROOT/refimgs/*.bmp    (or the images directly in ROOT)
    """

    name = "live1"
    title = "LIVE1"
    feeds = (("jpeg-compressed", "val"),)
    layout = "  refimgs/*.bmp  (or *.bmp / *.png directly in the folder)"

    def tasks(self) -> list[SourceTask]:
        folder = self.find("refimgs", required=False) or self.root
        return [self.gt_only("jpeg-compressed", "val", _nonempty(self, folder, "reference images"))]


class CBSD68(SourceReader):
    """CBSD68 (colour BSD68, clean only), noise test set, 68 images::

        ROOT/original_png/*.png    (or CBSD68/*.png, or the images directly in ROOT)
    """

    name = "cbsd68"
    title = "CBSD68"
    feeds = (("noisy", "val"),)
    layout = "  original_png/*.png  (or CBSD68/*.png, or the images directly in the folder)"

    def tasks(self) -> list[SourceTask]:
        folder = self.find("original_png", "CBSD68", required=False) or self.root
        return [self.gt_only("noisy", "val", _nonempty(self, folder, "clean images"))]


class LOL(SourceReader):
    """LOL (LOw-Light, Wei et al. 2018); 485 train / 15 test pairs::

        ROOT/our485/low/*.png   ROOT/our485/high/*.png
        ROOT/eval15/low/*.png   ROOT/eval15/high/*.png
    """

    name = "lol"
    title = "LOL"
    feeds = (("low-light", "train"), ("low-light", "val"))
    layout = "  our485/{low,high}/*.png\n  eval15/{low,high}/*.png"

    def tasks(self) -> list[SourceTask]:
        out = []
        for split, folder in (("train", "our485"), ("val", "eval15")):
            task = SourceTask("low-light", split)
            low, high = self.find(f"{folder}/low"), self.find(f"{folder}/high")
            match_by_key(_nonempty(self, low, "low-light images"), _nonempty(self, high, "normal-light images"),
                         lambda p: p.stem, lambda p: p.stem, lambda p: p.stem, str(low.parent), task)
            out.append(task)
        return out


class RainDrop(SourceReader):
    """RainDrop (Qian et al. 2018); 861 train / 58 test (test_a) pairs::

        ROOT/train/data/<n>_rain.png    ROOT/train/gt/<n>_clean.png
        ROOT/test_a/data/<n>_rain.png   ROOT/test_a/gt/<n>_clean.png
    """

    name = "raindrop"
    title = "RainDrop"
    feeds = (("raindrop", "train"), ("raindrop", "val"))
    layout = "  train/{data,gt}/<n>_{rain,clean}.png\n  test_a/{data,gt}/<n>_{rain,clean}.png"

    def tasks(self) -> list[SourceTask]:
        out = []
        for split, folder in (("train", "train"), ("val", "test_a")):
            task = SourceTask("raindrop", split)
            data, gt = self.find(f"{folder}/data"), self.find(f"{folder}/gt")
            match_by_key(_nonempty(self, data, "rainy images"), _nonempty(self, gt, "clean images"), _number,
                         _number, lambda p: _number(p), str(data.parent), task)
            out.append(task)
        return out


class _RainStreakSet(SourceReader):
    """Shared reader of the Rain100H / Rain100L releases.

    :attr:`target` is the universal folder the pairs go to; :attr:`feeds` says which splits are read
    (``train`` from ``RainTrain<level>``, ``val`` from ``Rain100<level>``).
    """

    level: ClassVar[str] = "H"
    target: ClassVar[str] = "rainy"

    def _pairs(self, folder: Path, split: str) -> SourceTask:
        task = SourceTask(self.target, split)
        for lq_name, gt_name in (("input", "target"), ("rain", "norain"), ("rainy", "norain")):
            if (folder / lq_name).is_dir() and (folder / gt_name).is_dir():
                # the original JORDER release keeps the rainy test images in rain/X2/
                lq_dir = folder / lq_name / "X2" if (folder / lq_name / "X2").is_dir() else folder / lq_name
                lq, gt = images_in(lq_dir), images_in(folder / gt_name)
                same = {p.name for p in lq} & {p.name for p in gt}
                key = (lambda p: p.name) if same else _number
                name_of = (lambda p: p.stem) if same else (lambda p: f"norain-{_number(p)}")
                match_by_key(lq, gt, key, key, name_of, str(folder), task)
                return task
        files = images_in(folder)
        lq = [p for p in files if p.name.startswith("rain-")]
        gt = [p for p in files if p.name.startswith("norain-")]
        if not lq and not gt:
            raise InputError(f"{self.title}: {str(folder)!r} holds neither input/target, rain/norain nor "
                             f"rain-*/norain-* files. Expected layout:\n{self.layout}")
        match_by_key(lq, gt, _number, _number, lambda p: f"norain-{_number(p)}", str(folder), task)
        return task

    def tasks(self) -> list[SourceTask]:
        L = self.level
        splits = {split for _, split in self.feeds}
        out = []
        if "train" in splits:
            out.append(self._pairs(self.find(f"RainTrain{L}", "train"), "train"))
        if "val" in splits:
            out.append(self._pairs(self.find(f"Rain100{L}", "test"), "val"))
        return out


class Rain100H(_RainStreakSet):
    """Rain100H (Yang et al. 2017), heavy rain; 1,800 train (RainTrainH) / 100 test pairs::

        ROOT/RainTrainH/rain-<n>.png, norain-<n>.png
        ROOT/Rain100H/rain/*.png (or rain/X2/), Rain100H/norain/*.png   (or input/ + target/, or flat)
    """

    name = "rain100h"
    title = "Rain100H"
    feeds = (("rainy", "train"), ("rainy", "val"))
    level = "H"
    target = "rainy"
    layout = ("  RainTrainH/rain-<n>.png + norain-<n>.png   (training; 'train/' also accepted)\n"
              "  Rain100H/rain/*.png + Rain100H/norain/*.png   (test; or input/ + target/, or flat)")


class Rain100L(_RainStreakSet):
    """Rain100L (light rain; not in Table 1), the out-of-distribution test of the paper's Table 5;
    100 test pairs::

        ROOT/Rain100L/rain/*.png, Rain100L/norain/*.png   (or input/ + target/, or flat)

    Only the test split is read, into ``val/rain100l`` (the folder ``bench --table 5`` reads), so
    light-rain pairs never mix with Rain100H's ``rainy`` folders. The training split (RainTrainL) is
    not part of the paper's universal training set and is not used.
    """

    name = "rain100l"
    title = "Rain100L"
    feeds = (("rain100l", "val"),)
    level = "L"
    target = "rain100l"
    layout = ("  Rain100L/rain/*.png + Rain100L/norain/*.png   (test; 'test/' also accepted; or input/ + target/,\n"
              "  or flat)")


class SRD(SourceReader):
    """SRD shadow removal (Qu et al. 2017); 2,680 train / 408 test pairs::

        ROOT/train/shadow/*.jpg   ROOT/train/shadow_free/*_no_shadow.jpg
        ROOT/test/shadow/*.jpg    ROOT/test/shadow_free/*_no_shadow.jpg

    ``train_A``/``train_C`` (``test_A``/``test_C``) folder names are accepted too; shadow-free
    names may carry a ``_no_shadow`` or ``_free`` suffix.
    """

    name = "srd"
    title = "SRD"
    feeds = (("shadowed", "train"), ("shadowed", "val"))
    layout = "  train/{shadow,shadow_free}/*.jpg\n  test/{shadow,shadow_free}/*.jpg"

    @staticmethod
    def _key(p: Path) -> str:
        return re.sub(r"_(no_shadow|free)$", "", p.stem)

    def tasks(self) -> list[SourceTask]:
        out = []
        for split, folder in (("train", "train"), ("val", "test")):
            task = SourceTask("shadowed", split)
            shadow = self.find(f"{folder}/shadow", f"{folder}_A", f"{folder}/{folder}_A")
            free = self.find(f"{folder}/shadow_free", f"{folder}_C", f"{folder}/{folder}_C")
            match_by_key(_nonempty(self, shadow, "shadow images"), _nonempty(self, free, "shadow-free images"),
                         self._key, self._key, self._key, str(shadow.parent), task)
            out.append(task)
        return out


class Snow100K(SourceReader):
    """Snow100K (Liu et al. 2018); the paper used Snow100K-L subsets, 1,872 train / 601 test::

        ROOT/train/synthetic/*.jpg   ROOT/train/gt/*.jpg        ('all/' also accepted)
        ROOT/test/Snow100K-L/synthetic/*.jpg   ROOT/test/Snow100K-L/gt/*.jpg

    The first images in sorted order form the subset (:attr:`paper_subset`).
    """

    name = "snow100k"
    title = "Snow100K"
    feeds = (("snowy", "train"), ("snowy", "val"))
    layout = "  train/{synthetic,gt}/*.jpg\n  test/Snow100K-L/{synthetic,gt}/*.jpg"
    paper_subset: ClassVar[dict[str, int]] = {"train": 1872, "val": 601}

    def tasks(self) -> list[SourceTask]:
        out = []
        for split, candidates in (("train", ("train", "all")), ("val", ("test/Snow100K-L", "Snow100K-L"))):
            syn = self.find(*(f"{c}/synthetic" for c in candidates))
            base = syn.parent
            gt = self.find(str((base / "gt").relative_to(self.root)))
            task = SourceTask("snowy", split)
            match_by_key(_nonempty(self, syn, "snowy images"), _nonempty(self, gt, "clean images"),
                         lambda p: p.stem, lambda p: p.stem, lambda p: p.stem, str(base), task)
            out.append(task)
        return out


class CelebAHQ(SourceReader):
    """CelebA-HQ faces (clean only) for inpainting; 29,900 train / 100 test::

        ROOT/CelebA-HQ-img/<n>.jpg   (or celeba_hq_256/, or the images directly in ROOT)

    The last 100 images in natural order are the test split. Images are resized to 256×256 (the
    official set is CelebA-HQ 256) and the LQ is made with thin masks, or with the official
    RePaint-style masks passed as ``--masks DIR``.
    """

    name = "celeba-hq"
    title = "CelebA-HQ"
    feeds = (("uncompleted", "train"), ("uncompleted", "val"))
    layout = "  CelebA-HQ-img/*.jpg  (or celeba_hq_256/*, or images directly in the folder)"
    test_count = 100
    gt_size = 256

    def tasks(self) -> list[SourceTask]:
        folder = self.find("CelebA-HQ-img", "celeba_hq_256", "CelebA-HQ", required=False) or self.root
        files = _nonempty(self, folder, "face images")
        # a folder with fewer than 200 faces (a sample) keeps half of them for testing
        n_test = self.test_count if len(files) >= 2 * self.test_count else len(files) // 2
        return [self.gt_only("uncompleted", "train", files[:len(files) - n_test]),
                self.gt_only("uncompleted", "val", files[len(files) - n_test:])]


#: Built-in readers by registry name (the plugin registers the same names).
READERS: dict[str, type[SourceReader]] = {
    cls.name: cls
    for cls in (GoPro, Reside6k, DIV2K, Flickr2K, LIVE1, CBSD68, LOL, RainDrop, Rain100H, Rain100L, SRD,
                Snow100K, CelebAHQ)
}
