"""Locating benchmark data in the official universal layout ``<root>/val/<data set>/{LQ,GT}``."""

from __future__ import annotations

from pathlib import Path

from ..data.paired import image_files
from ..errors import InputError

HOW_TO_GET_DATA = (
    "download the official validation sets (daclip-uir README, 'Dataset Construction') and extract "
    "them as <data-root>/val/<degradation>/{LQ,GT}, or build the small synthetic set with "
    "`daclip-kit data mini`"
)


def dataset_dir(data_root: str | Path, dataset: str) -> Path:
    return Path(data_root).expanduser() / "val" / dataset


def missing_data_note(data_root: str | Path | None, dataset: str, need_gt: bool = True) -> str | None:
    """``None`` when ``dataset`` is present, otherwise a sentence saying what is missing and how to get it."""
    sub = "{LQ,GT}" if need_gt else "LQ"
    if data_root is None:
        return (f"no --data-root given (data set {dataset!r} expected at <data-root>/val/{dataset}/{sub}); "
                + HOW_TO_GET_DATA)
    root = dataset_dir(data_root, dataset)
    folders = [root / "LQ"] + ([root / "GT"] if need_gt else [])
    absent = [str(f) for f in folders if not f.is_dir() or not image_files(f)]
    if absent:
        return f"data set {dataset!r} missing: no images in {', '.join(absent)}; " + HOW_TO_GET_DATA
    return None


def paired_images(data_root: str | Path | None, dataset: str, limit: int | None = None) -> list[tuple[Path, Path]]:
    """``(LQ, GT)`` file pairs of ``dataset``, matched by sorted order as the official loaders do.

    Raises:
        InputError: the folders are missing or hold different numbers of images.
    """
    note = missing_data_note(data_root, dataset)
    if note or data_root is None:
        raise InputError(note)
    root = dataset_dir(data_root, dataset)
    lq, gt = image_files(root / "LQ"), image_files(root / "GT")
    if len(lq) != len(gt):
        raise InputError(
            f"{root}: LQ has {len(lq)} images but GT has {len(gt)}; pairs are matched by sorted "
            f"file name, so both folders must hold the same number of images."
        )
    pairs = list(zip(lq, gt, strict=True))
    return pairs[:limit] if limit else pairs


def lq_images(data_root: str | Path | None, dataset: str, limit: int | None = None) -> list[Path]:
    """Sorted LQ images of ``dataset`` (classification needs no GT)."""
    note = missing_data_note(data_root, dataset, need_gt=False)
    if note or data_root is None:
        raise InputError(note)
    files = image_files(dataset_dir(data_root, dataset) / "LQ")
    return files[:limit] if limit else files


def missing_data_summary(data_root: str | Path | None, datasets: list[str],
                         need_gt: bool = True) -> tuple[list[str], str | None]:
    """``(missing data sets, one sentence about them or None)``."""
    missing = [d for d in datasets if missing_data_note(data_root, d, need_gt) is not None]
    if not missing:
        return [], None
    sub = "{LQ,GT}" if need_gt else "LQ"
    where = "no --data-root given" if data_root is None else f"not found under {Path(data_root) / 'val'}"
    return missing, (f"data {where} for {', '.join(missing)} (expected <data-root>/val/<name>/{sub} "
                     f"with images); " + HOW_TO_GET_DATA)
