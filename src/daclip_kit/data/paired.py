"""Paired LQ/GT images as a torch ``Dataset`` with deterministic random crops.

Pairs are matched by sorted file name, like the official ``LQGT``/``MD`` datasets: the ``i``-th
LQ file belongs to the ``i``-th GT file, so both folders must hold the same number of images.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import torch
from torch.utils.data import Dataset

from ..errors import InputError
from ..io import IMAGE_SUFFIXES, read_image


@dataclass(frozen=True)
class Pair:
    """One training pair.

    Attributes:
        lq: path of the degraded image.
        gt: path of the clean image.
        degradation: degradation text (``"hazy"``, or ``"hazy, noisy"`` for a composed image).
        caption: caption of the clean image (``""`` when unknown).
    """

    lq: Path
    gt: Path
    degradation: str = ""
    caption: str = ""


def item_generator(seed: int, epoch: int, index: int) -> torch.Generator:
    """The generator of item ``index`` in ``epoch``: its randomness depends only on ``(seed, epoch, index)``."""
    return torch.Generator().manual_seed((int(seed) * 1_000_003 + int(epoch)) * 1_000_033 + int(index))


def flip_transpose(lq: torch.Tensor, gt: torch.Tensor, g: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """Horizontal flip, vertical flip and transposition of ``(3, H, W)`` ``lq`` and ``gt`` together,
    each with probability 0.5 (the eight rotations/reflections of the square)."""
    hflip, vflip, transpose = (torch.rand(3, generator=g) < 0.5).tolist()
    if hflip:
        lq, gt = lq.flip(-1), gt.flip(-1)
    if vflip:
        lq, gt = lq.flip(-2), gt.flip(-2)
    if transpose:
        lq, gt = lq.transpose(-1, -2), gt.transpose(-1, -2)
    return lq.contiguous(), gt.contiguous()


def image_files(folder: str | Path) -> list[Path]:
    """Sorted image files directly inside ``folder`` (``[]`` when it holds none).

    Raises:
        InputError: ``folder`` does not exist.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise InputError(f"Folder {str(folder)!r} does not exist.")
    return sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)


def pair_folders(lq_dir: str | Path, gt_dir: str | Path, *, degradation: str = "",
                 caption: str = "") -> list[Pair]:
    """Pair the images of ``lq_dir`` and ``gt_dir`` by sorted file name.

    Raises:
        InputError: a folder is missing or empty, or the counts differ (the message lists the
            names present on one side only).
    """
    lq, gt = image_files(lq_dir), image_files(gt_dir)
    if not lq or not gt:
        empty = lq_dir if not lq else gt_dir
        raise InputError(f"Folder {str(empty)!r} holds no images ({', '.join(IMAGE_SUFFIXES)}).")
    if len(lq) != len(gt):
        only_lq = sorted({p.name for p in lq} - {p.name for p in gt})[:5]
        only_gt = sorted({p.name for p in gt} - {p.name for p in lq})[:5]
        raise InputError(
            f"{len(lq)} LQ images in {str(lq_dir)!r} but {len(gt)} GT images in {str(gt_dir)!r}; pairs are "
            f"matched by sorted name, so the counts must be equal. Only in LQ: {only_lq or '-'}; "
            f"only in GT: {only_gt or '-'}. Add or remove the unmatched files."
        )
    return [Pair(a, b, degradation, caption) for a, b in zip(lq, gt, strict=True)]


class PairDataset(Dataset):
    """A list of :class:`Pair` served as dicts of tensors.

    Args:
        pairs: the pairs.
        crop: side of the random square crop taken at the same place in LQ and GT; ``None`` keeps
            the full image. Images smaller than ``crop`` give a smaller crop (as the official code).
        seed: crops and flips of item ``i`` in epoch ``e`` depend only on ``(seed, e, i)``.
        augment: random horizontal flip, vertical flip and transpose, each with probability 0.5.

    Items:
        ``{"lq": (3,h,w), "gt": (3,h,w)`` float in [0, 1], ``"degradation": str, "caption": str,
        "path": str}`` (``path`` is the LQ file).
    """

    def __init__(self, pairs: Sequence[Pair], *, crop: int | None = None, seed: int = 0, augment: bool = False):
        self.pairs = list(pairs)
        self.crop = crop
        self.seed = int(seed)
        self.augment = augment
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        """Draw new crops for ``epoch`` (call it at the start of every epoch)."""
        self.epoch = int(epoch)

    def __len__(self) -> int:
        return len(self.pairs)

    def __getitem__(self, index: int) -> dict:

        pair = self.pairs[index]
        lq, gt = read_image(pair.lq)[0], read_image(pair.gt)[0]
        if lq.shape != gt.shape:
            raise InputError(
                f"LQ {str(pair.lq)!r} is {tuple(lq.shape[1:])} but GT {str(pair.gt)!r} is "
                f"{tuple(gt.shape[1:])}; paired images must have the same size."
            )
        g = item_generator(self.seed, self.epoch, index)
        if self.crop is not None:
            h, w = lq.shape[1:]
            ch, cw = min(self.crop, h), min(self.crop, w)
            top = int(torch.randint(0, h - ch + 1, (1,), generator=g))
            left = int(torch.randint(0, w - cw + 1, (1,), generator=g))
            lq = lq[:, top:top + ch, left:left + cw]
            gt = gt[:, top:top + ch, left:left + cw]
        if self.augment:
            lq, gt = flip_transpose(lq, gt, g)
        return {"lq": lq.contiguous(), "gt": gt.contiguous(), "degradation": pair.degradation,
                "caption": pair.caption, "path": str(pair.lq)}


class PairedFolderDataset(PairDataset):
    """Generic paired folders: ``lq_dir/*`` and ``gt_dir/*`` matched by sorted name.

    Example:
        >>> ds = PairedFolderDataset("data/LQ", "data/GT", degradation="noisy", crop=128)  # doctest: +SKIP
        >>> ds[0]["lq"].shape  # doctest: +SKIP
        torch.Size([3, 128, 128])
    """

    def __init__(self, lq_dir: str | Path, gt_dir: str | Path, *, degradation: str = "", caption: str = "",
                 crop: int | None = None, seed: int = 0, augment: bool = False):
        super().__init__(pair_folders(lq_dir, gt_dir, degradation=degradation, caption=caption),
                         crop=crop, seed=seed, augment=augment)
