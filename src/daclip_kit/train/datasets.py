"""The two training sets and the batch sampler both trainers use.

* :class:`CaptionImageDataset`: rows of ``daclip_<split>.csv`` -> train-transformed LQ pixels with
  the caption and degradation texts (DA-CLIP, FACTS §1.7); with ``synthesize`` the LQ is made
  anew from the row's clean GT with a randomly drawn degradation every time the row is read.
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

import logging
import math
import random
import signal
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import torch
from torch.utils.data import Dataset, Sampler

from ..data.paired import Pair, flip_transpose, item_generator
from ..data.universal import read_captions_csv, scan_universal
from ..embedders.preprocess import OPENAI_MEAN, OPENAI_STD
from ..errors import ConfigError, DaclipKitError, InputError
from ..io import read_image
from ..types import DEGRADATIONS
from .transforms import crop_patch, random_resized_crop, random_square_crop

log = logging.getLogger(__name__)


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


def clean_image_path(lq: str | Path) -> Path | None:
    """The clean GT of an LQ image of the universal layout (``.../GT/<name>`` for
    ``.../LQ/<name>``), or ``None`` when the LQ is not in an ``LQ`` folder or the GT does not exist."""
    lq = Path(lq)
    if lq.parent.name != "LQ":
        return None
    gt = lq.parent.parent / "GT" / lq.name
    return gt if gt.is_file() else None


def clip_normalize(image: torch.Tensor) -> torch.Tensor:
    """``(3, H, W)`` RGB in [0, 1] with the OpenAI CLIP mean subtracted and divided by its std."""
    mean = torch.tensor(OPENAI_MEAN, dtype=image.dtype).view(3, 1, 1)
    std = torch.tensor(OPENAI_STD, dtype=image.dtype).view(3, 1, 1)
    return (image - mean) / std


#: Luma weights (ITU-R BT.601) of :func:`jitter_colours`' grey.
_LUMA = (0.299, 0.587, 0.114)
#: The range of the saturation factor of :func:`jitter_colours`.
SATURATION = (0.3, 1.7)
#: :func:`jitter_colours` raises the pixels to a power between ``1 / GAMMA`` and ``GAMMA``.
GAMMA = 1.6


def jitter_colours(image: torch.Tensor, g: torch.Generator) -> torch.Tensor:
    """``(3, H, W)`` RGB in [0, 1] with its channels in a random order (each of the six equally
    likely) and its saturation scaled by a factor drawn uniformly from :data:`SATURATION` (a blend
    with its grey; brightness kept), clamped to [0, 1]. Colour is no cue to a degradation, so a
    model trained on a few photos should not learn their colours."""
    image = image[torch.randperm(3, generator=g)]
    factor = SATURATION[0] + (SATURATION[1] - SATURATION[0]) * float(torch.rand((), generator=g))
    grey = (torch.tensor(_LUMA, dtype=image.dtype).view(3, 1, 1) * image).sum(0, keepdim=True)
    image = (grey + factor * (image - grey)).clamp(0, 1)
    gamma = math.exp(math.log(GAMMA) * (2 * float(torch.rand((), generator=g)) - 1))
    return image.pow(gamma)


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
        synthesize: online degradations. Item ``i`` reads the clean GT of row ``i``
            (``.../<degradation>/GT/<name>`` beside its ``.../LQ/<name>``), takes the random
            resized crop, flips it left-right with probability 0.5, and degrades it at the tower's
            image size with a degradation drawn anew every time (each of the CSV's degradation
            texts equally likely, or as ``new_share`` weighs them; a composed text such as
            ``"hazy, noisy"`` applies its labels in physical order), built with
            :func:`daclip_kit.factory.create_degradation` and its default settings. The caption is
            the row's, the degradation text the drawn one; the stored LQ files are not read, except
            for a degradation without a registered generator (e.g. one added with ``daclip-kit data
            add``): when it is drawn, a random stored row of it is used as without ``synthesize``.

    Items:
        ``{"pixels": (3, S, S)`` CLIP-normalised float, ``"caption": str, "degradation": str}``.

    Raises:
        InputError: missing CSV or image files (the first few are named); with ``synthesize``, rows
            without their clean GT image.
        ConfigError: with ``synthesize``, no degradation of the CSV has a registered generator.
    """

    def __init__(self, csv_path: str | Path, image_size: int, *, seed: int = 0, crop: bool = False,
                 new_share: float | None = None, synthesize: bool = False):
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
        self.group_names = names
        self.group_rows = [[i for i, d in enumerate(self.degradations) if d == name] for name in names]
        self.weights = group_weights(names, new_share)
        self.synthesize = bool(synthesize)
        #: With ``synthesize``: the clean GT image of each row and the labels of each degradation text.
        self.clean_paths: list[Path] = []
        self.group_labels: list[list[str] | None] = []
        self._generators: dict[str, Callable] = {}
        if self.synthesize:
            self.clean_paths = self._clean_images()
            self.group_labels = self._registered_labels(names)

    def _clean_images(self) -> list[Path]:
        """The clean GT of every row (``synthesize``), or an error naming the rows without one."""
        clean = [clean_image_path(p) for p in self.paths]
        missing = [str(p) for p, c in zip(self.paths, clean, strict=True) if c is None]
        if missing:
            raise InputError(
                f"data.synthesize makes each training image anew from the clean GT beside its LQ "
                f"(ROOT/<split>/<degradation>/GT/<name> for ROOT/<split>/<degradation>/LQ/<name>), but "
                f"{len(missing)} row(s) of {str(self.csv_path)!r} have none, e.g. {missing[:3]}. Add the GT "
                "images (the universal layout of `daclip-kit data mini` / `data prepare`) or set "
                "data.synthesize = false."
            )
        return [c for c in clean if c is not None]

    def _registered_labels(self, names: Sequence[str]) -> list[list[str] | None]:
        """The labels of each degradation text, or ``None`` for a text with a label that has no
        registered generator (its rows are read as stored; a warning names it)."""
        from ..degradations.composition import parse_labels
        from ..factory import list_components

        known = set(list_components("degradations"))
        labels = [parse_labels(name) for name in names]
        stored = [name for name, group in zip(names, labels, strict=True) if not set(group) <= known]
        if len(stored) == len(names):
            raise ConfigError(
                f"data.synthesize degrades the clean images with the registered degradation generators, but no "
                f"degradation of {str(self.csv_path)!r} has one ({', '.join(map(repr, stored[:5]))}; registered: "
                f"{', '.join(sorted(known))}). Register a generator (a plugin, see docs/plugins.md) or set "
                "data.synthesize = false to train on the stored LQ images."
            )
        if stored:
            log.warning("data.synthesize: %s ha%s no registered degradation generator; %s rows are read as stored "
                        "(their LQ files), the other degradations are synthesized", ", ".join(map(repr, stored)),
                        "s" if len(stored) == 1 else "ve", "its" if len(stored) == 1 else "their")
        return [None if name in stored else group for name, group in zip(names, labels, strict=True)]

    def _generator(self, label: str) -> Callable:
        """The degradation generator of ``label`` (built once per process)."""
        if label not in self._generators:
            from ..factory import create_degradation

            self._generators[label] = create_degradation(label)
        return self._generators[label]

    def _synthesized(self, index: int, g: torch.Generator) -> dict:
        """Item ``index`` with ``synthesize``: row ``index``'s clean image, degraded anew."""
        from ..degradations.composition import compose

        n = len(self.group_names)
        which = draw_group(self.weights if self.weights is not None else [1.0 / n] * n, g)
        labels = self.group_labels[which]
        if labels is None:  # no generator: a stored row of it, as without synthesize
            rows = self.group_rows[which]
            return self._stored(rows[int(torch.randint(0, len(rows), (), generator=g))], g)
        clean = read_image(self.clean_paths[index])[0]
        if self.crop:
            clean = random_square_crop(clean, g)
        x = random_resized_crop(clean, self.image_size, g, normalize=False)
        if float(torch.rand((), generator=g)) < 0.5:
            x = x.flip(-1)
        x = jitter_colours(x, g)
        lq, _ = compose(x[None], labels, g, degradations={label: self._generator(label) for label in labels})
        return {"pixels": clip_normalize(lq[0].clamp(0, 1)), "caption": self.captions[index],
                "degradation": self.group_names[which]}

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, index: int) -> dict:
        g = item_generator(self.seed, self.epoch, index)
        if self.synthesize:
            return self._synthesized(index, g)
        if self.weights is not None:
            rows = self.group_rows[draw_group(self.weights, g)]
            index = rows[int(torch.randint(0, len(rows), (), generator=g))]
        return self._stored(index, g)

    def _stored(self, index: int, g: torch.Generator) -> dict:
        """Row ``index`` as stored: its LQ image, train-transformed."""
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
