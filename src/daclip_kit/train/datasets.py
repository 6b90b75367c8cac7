"""The two training sets and the epoch-ordered sampler both trainers use.

* :class:`CaptionImageDataset`: rows of ``daclip_<split>.csv`` -> train-transformed LQ pixels with
  the caption and degradation texts (DA-CLIP, FACTS §1.7).
* :class:`BalancedPatchDataset`: LQ/GT patches, item ``i`` of degradation ``i % n`` (the official
  ``MD`` dataset, FACTS §2.7).

Randomness of item ``i`` in epoch ``e`` depends only on ``(seed, e, i)``, so runs and resumed runs
see the same data.
"""

from __future__ import annotations

import random
from collections.abc import Iterator, Sequence
from pathlib import Path

import torch
from torch.utils.data import Dataset, Sampler

from ..data.paired import Pair, flip_transpose, item_generator
from ..data.universal import read_captions_csv, scan_universal
from ..errors import InputError
from ..io import read_image
from .transforms import crop_patch, random_resized_crop, random_square_crop


class _EpochDataset(Dataset):
    seed: int = 0
    epoch: int = 0

    def set_epoch(self, epoch: int) -> None:
        """Draw new crops for ``epoch`` (the loop calls it before every epoch)."""
        self.epoch = int(epoch)


def resolve_csv_path(filepath: str, csv_path: Path) -> Path:
    """A CSV ``filepath``: absolute as it is, relative beside the CSV, else in the working folder."""
    p = Path(filepath)
    if p.is_absolute():
        return p
    beside = csv_path.parent / p
    return beside if beside.exists() else p


class CaptionImageDataset(_EpochDataset):
    """DA-CLIP training rows.

    Args:
        csv_path: ``daclip_<split>.csv`` (``filepath<TAB>title``).
        image_size: side of the transformed pixels (the tower's image size).
        seed: data seed.
        crop: apply the official ``--crop`` before the transform.

    Items:
        ``{"pixels": (3, S, S)`` CLIP-normalised float, ``"caption": str, "degradation": str}``.

    Raises:
        InputError: missing CSV or image files (the first few are named).
    """

    def __init__(self, csv_path: str | Path, image_size: int, *, seed: int = 0, crop: bool = False):
        self.csv_path = Path(csv_path)
        rows = read_captions_csv(self.csv_path)
        if not rows:
            raise InputError(f"{str(self.csv_path)!r} has no rows.")
        self.paths = [resolve_csv_path(r.filepath, self.csv_path) for r in rows]
        missing = [str(p) for p in self.paths if not p.is_file()]
        if missing:
            raise InputError(
                f"{len(missing)} image(s) listed in {str(self.csv_path)!r} do not exist, e.g. {missing[:3]}. "
                "Relative paths are looked up beside the CSV and in the working folder; rewrite the CSV "
                "with `daclip-kit data caption`."
            )
        self.captions = [r.caption for r in rows]
        self.degradations = [r.degradation for r in rows]
        self.image_size = int(image_size)
        self.seed = int(seed)
        self.crop = crop

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, index: int) -> dict:
        g = item_generator(self.seed, self.epoch, index)
        image = read_image(self.paths[index])[0]
        if self.crop:
            image = random_square_crop(image, g)
        return {"pixels": random_resized_crop(image, self.image_size, g),
                "caption": self.captions[index], "degradation": self.degradations[index]}


class BalancedPatchDataset(_EpochDataset):
    """IR-SDE training patches, balanced over degradation folders.

    Args:
        root: the universal folder.
        split: split folder (``"train"``).
        degradations: folders to use (``None``: all found).
        patch_size: side of the crop taken at the same place in LQ and GT.
        augment: random flips and transposition.
        seed: data seed.

    Items:
        ``{"lq": (3, P, P), "gt": (3, P, P)`` float in [0, 1], ``"degradation": str, "path": str}``.
        Item ``i`` takes folder ``i % n`` and a random pair of it; ``len`` is the number of pairs.

    Raises:
        InputError: missing folders, or an image smaller than ``patch_size`` (it could not be batched).
    """

    def __init__(self, root: str | Path, split: str = "train", *, degradations: Sequence[str] | None = None,
                 patch_size: int = 256, augment: bool = True, seed: int = 0):
        groups = scan_universal(root, split, degradations)
        self.groups: list[list[Pair]] = [g for g in groups.values() if g]
        self.names = [name for name, g in groups.items() if g]
        if not self.groups:
            raise InputError(f"No LQ/GT pairs under {str(Path(root) / split)!r}.")
        self.patch_size = int(patch_size)
        self.augment = augment
        self.seed = int(seed)
        self._length = sum(len(g) for g in self.groups)

    def __len__(self) -> int:
        return self._length

    def __getitem__(self, index: int) -> dict:
        g = item_generator(self.seed, self.epoch, index)
        group = self.groups[index % len(self.groups)]
        pair = group[int(torch.randint(0, len(group), (), generator=g))]
        lq, gt = read_image(pair.lq)[0], read_image(pair.gt)[0]
        if lq.shape != gt.shape:
            raise InputError(f"LQ {str(pair.lq)!r} is {tuple(lq.shape[1:])} but GT {str(pair.gt)!r} is "
                             f"{tuple(gt.shape[1:])}; paired images must have the same size.")
        if min(lq.shape[-2:]) < self.patch_size:
            raise InputError(
                f"{str(pair.lq)!r} is {lq.shape[-1]}x{lq.shape[-2]}, smaller than data.patch_size="
                f"{self.patch_size}; patches could not be batched. Lower data.patch_size or remove the image."
            )
        lq, gt = crop_patch(lq, gt, self.patch_size, g)
        if self.augment:
            lq, gt = flip_transpose(lq, gt, g)
        return {"lq": lq, "gt": gt, "degradation": pair.degradation, "path": str(pair.lq)}


def round_robin(root: str | Path, split: str, degradations: Sequence[str] | None, count: int) -> list[Pair]:
    """Up to ``count`` pairs, one folder after another (``a0, b0, c0, a1, ...``), for validation."""
    groups = [g for g in scan_universal(root, split, degradations).values() if g]
    out: list[Pair] = []
    depth = 0
    while len(out) < count and any(depth < len(g) for g in groups):
        out.extend(g[depth] for g in groups if depth < len(g))
        depth += 1
    return out[:count]


class EpochSampler(Sampler[int]):
    """A seeded permutation of ``range(n)`` per epoch, started at ``offset`` (for resuming)."""

    def __init__(self, n: int, seed: int):
        self.n = int(n)
        self.seed = int(seed)
        self.epoch = 0
        self.offset = 0

    def set_epoch(self, epoch: int, offset: int = 0) -> None:
        self.epoch, self.offset = int(epoch), int(offset)

    def __iter__(self) -> Iterator[int]:
        order = list(range(self.n))
        random.Random(self.seed * 7_919 + self.epoch).shuffle(order)
        return iter(order[self.offset:])

    def __len__(self) -> int:
        return self.n - self.offset
