"""The two training sets and the batch sampler both trainers use.

* :class:`CaptionImageDataset`: rows of ``daclip_<split>.csv`` -> train-transformed LQ pixels with
  the caption and degradation texts (DA-CLIP, FACTS §1.7).
* :class:`BalancedPatchDataset`: LQ/GT patches, item ``i`` of degradation ``i % n`` (the official
  ``MD`` dataset, FACTS §2.7), each with its own ``seed`` for the training noise.
* :class:`ShardedBatchSampler`: the micro-batches of one process: global batch ``s`` of an epoch is
  ``order[s*G:(s+1)*G]`` of the epoch's seeded permutation, split into equal consecutive parts
  per process (rank ``r`` takes the ``r``-th) and then per accumulation step.

Randomness of item ``i`` in epoch ``e`` depends only on ``(seed, e, i)``, and the global batches
only on ``(seed, e)``, so runs, resumed runs and runs with another number of processes see the
same data.
"""

from __future__ import annotations

import random
import signal
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import torch
from torch.utils.data import Dataset, Sampler

from ..data.paired import Pair, flip_transpose, item_generator
from ..data.universal import read_captions_csv, scan_universal
from ..errors import DaclipKitError, InputError
from ..io import read_image
from ..types import DEGRADATIONS
from .transforms import crop_patch, random_resized_crop, random_square_crop


class EpochData(Protocol):
    """A training set as the loop reads it: ``len``, items by index and ``set_epoch(epoch)``."""

    def __len__(self) -> int: ...

    def __getitem__(self, index: int) -> Any: ...

    def set_epoch(self, epoch: int) -> None: ...


class _EpochDataset(Dataset):
    seed: int = 0
    epoch: int = 0

    def set_epoch(self, epoch: int) -> None:
        """Draw new crops for ``epoch`` (the loop calls it before every epoch)."""
        self.epoch = int(epoch)


def is_builtin(degradation: str) -> bool:
    """Whether a degradation folder or text (``"hazy+noisy"``, ``"hazy, noisy"``) is made only of
    the ten built-in words."""
    from ..degradations.composition import parse_labels

    return all(label in DEGRADATIONS for label in parse_labels(degradation))


def group_weights(names: Sequence[str], new_share: float | None) -> list[float] | None:
    """The probability of drawing each degradation group when ``new_share`` of the items should come
    from the groups that are not built-in (split equally among them) and the rest from the built-in
    ones (equally too); ``None`` when ``new_share`` is ``None`` or one of the two kinds is absent."""
    if new_share is None:
        return None
    new = [not is_builtin(n) for n in names]
    n_new = sum(new)
    if n_new in (0, len(names)):
        return None
    n_old = len(names) - n_new
    return [new_share / n_new if is_new else (1 - new_share) / n_old for is_new in new]


def draw_group(weights: Sequence[float], g: torch.Generator) -> int:
    """A group index drawn with probabilities ``weights``."""
    return int(torch.multinomial(torch.tensor(weights, dtype=torch.float64), 1, generator=g))


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
        new_share: ``None``: item ``i`` is row ``i``. Else each item draws a degradation (a share
            ``new_share`` for those outside the ten built-in words, see :func:`group_weights`) and
            a random row of it; the epoch keeps its length.

    Items:
        ``{"pixels": (3, S, S)`` CLIP-normalised float, ``"caption": str, "degradation": str}``.

    Raises:
        InputError: missing CSV or image files (the first few are named).
    """

    def __init__(self, csv_path: str | Path, image_size: int, *, seed: int = 0, crop: bool = False,
                 new_share: float | None = None):
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
        names = list(dict.fromkeys(self.degradations))
        self.group_rows = [[i for i, d in enumerate(self.degradations) if d == name] for name in names]
        self.weights = group_weights(names, new_share)

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, index: int) -> dict:
        g = item_generator(self.seed, self.epoch, index)
        if self.weights is not None:
            rows = self.group_rows[draw_group(self.weights, g)]
            index = rows[int(torch.randint(0, len(rows), (), generator=g))]
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
        new_share: ``None``: balanced folders. Else the folders outside the ten built-in words
            get this share of the items and the built-in ones the rest (:func:`group_weights`).

    Items:
        ``{"lq": (3, P, P), "gt": (3, P, P)`` float in [0, 1], ``"degradation": str, "path": str,
        "seed": int}``. Item ``i`` takes folder ``i % n`` (with ``new_share``: a folder drawn with
        those weights) and a random pair of it; ``len`` is the
        number of pairs. ``seed`` (in ``[0, 2**62)``) seeds the item's training noise and time
        step, so they do not depend on how items are batched or split over processes.

    Raises:
        InputError: missing folders, or an image smaller than ``patch_size`` (it could not be batched).
    """

    def __init__(self, root: str | Path, split: str = "train", *, degradations: Sequence[str] | None = None,
                 patch_size: int = 256, augment: bool = True, seed: int = 0, new_share: float | None = None):
        groups = scan_universal(root, split, degradations)
        self.groups: list[list[Pair]] = [g for g in groups.values() if g]
        self.names = [name for name, g in groups.items() if g]
        self.weights = group_weights(self.names, new_share)
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
        which = index % len(self.groups) if self.weights is None else draw_group(self.weights, g)
        group = self.groups[which]
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
        seed = int(torch.randint(0, 2**62, (), generator=g))
        return {"lq": lq, "gt": gt, "degradation": pair.degradation, "path": str(pair.lq), "seed": seed}


def round_robin(root: str | Path, split: str, degradations: Sequence[str] | None, count: int) -> list[Pair]:
    """Up to ``count`` pairs, one folder after another (``a0, b0, c0, a1, ...``), for validation."""
    groups = [g for g in scan_universal(root, split, degradations).values() if g]
    out: list[Pair] = []
    depth = 0
    while len(out) < count and any(depth < len(g) for g in groups):
        out.extend(g[depth] for g in groups if depth < len(g))
        depth += 1
    return out[:count]


def epoch_order(n: int, seed: int, epoch: int) -> list[int]:
    """The seeded permutation of ``range(n)`` that epoch ``epoch`` visits."""
    order = list(range(int(n)))
    random.Random(int(seed) * 7_919 + int(epoch)).shuffle(order)
    return order


class ShardedBatchSampler(Sampler[list[int]]):
    """The micro-batches (lists of item indices) one process trains on.

    Step ``s`` of an epoch uses the global batch ``order[s*G:(s+1)*G]``; process ``rank`` of
    ``world`` takes its ``G / world`` consecutive items, cut into ``accumulate`` micro-batches of
    ``G / (world * accumulate)``. A trailing part of the permutation shorter than ``G`` is dropped.

    Args:
        n: items in the data set.
        seed: data seed.
        global_batch: ``G``, items per optimizer step over all processes.
        world, rank: processes and this one's index.
        accumulate: micro-batches per optimizer step and process.
    """

    def __init__(self, n: int, seed: int, global_batch: int, *, world: int = 1, rank: int = 0,
                 accumulate: int = 1):
        if global_batch % (world * accumulate):
            raise ValueError(f"global batch {global_batch} is not divisible by {world} x {accumulate}")
        self.n, self.seed, self.global_batch = int(n), int(seed), int(global_batch)
        self.world, self.rank, self.accumulate = int(world), int(rank), int(accumulate)
        self.micro = self.global_batch // (self.world * self.accumulate)
        self.epoch = 0
        self.start_step = 0

    @property
    def steps_per_epoch(self) -> int:
        return self.n // self.global_batch

    def set_epoch(self, epoch: int, start_step: int = 0) -> None:
        """Visit ``epoch`` from its step ``start_step`` on (for resuming)."""
        self.epoch, self.start_step = int(epoch), int(start_step)

    def __iter__(self) -> Iterator[list[int]]:
        order = epoch_order(self.n, self.seed, self.epoch)
        share = self.global_batch // self.world
        for step in range(self.start_step, self.steps_per_epoch):
            mine = order[step * self.global_batch + self.rank * share:][:share]
            for j in range(self.accumulate):
                yield mine[j * self.micro:(j + 1) * self.micro]

    def __len__(self) -> int:
        return (self.steps_per_epoch - self.start_step) * self.accumulate


@dataclass(frozen=True)
class ItemFailure:
    """An item that could not be read (returned by :class:`SafeItems` instead of raising, so the
    error reaches the training process as one line rather than a data-loader worker traceback)."""

    index: int
    message: str


class SafeItems(Dataset):
    """``dataset`` whose unreadable items (any :class:`~daclip_kit.errors.DaclipKitError` or
    ``OSError``) come back as :class:`ItemFailure`."""

    def __init__(self, dataset: EpochData):
        self.dataset = dataset

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, index: int) -> Any:
        try:
            return self.dataset[index]
        except (DaclipKitError, OSError) as exc:
            return ItemFailure(int(index), str(exc))


def collate_items(items: list[Any]) -> Any:
    """``default_collate``, or the first :class:`ItemFailure` of the batch."""
    from torch.utils.data import default_collate

    for item in items:
        if isinstance(item, ItemFailure):
            return item
    return default_collate(items)


def ignore_interrupts(_worker_id: int) -> None:
    """Data-loader worker start: leave Ctrl-C to the training process, which saves a checkpoint
    and stops its workers itself."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
