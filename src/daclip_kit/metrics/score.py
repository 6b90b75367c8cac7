"""Scoring a folder of images against its ground truth, or alone with no-reference metrics (NIQE, CLIP-IQA):
restored outputs, or a network run on LQ inputs.

:func:`score_folders` is what ``daclip-kit score`` runs; :func:`score_pairs` is the per-image loop
it shares with the benchmark harness. Metrics are the registered ones (``daclip-kit ls metrics``),
accumulated by :func:`~daclip_kit.metrics.meters.make_meter` under a
:class:`~daclip_kit.bench.spec.MetricProtocol` (the official ``test.py`` settings by default).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import torch

from ..bench.spec import MetricProtocol
from ..data.paired import image_files
from ..errors import ConfigError, InputError, UnknownComponentError
from ..io import IMAGE_SUFFIXES, read_image
from ..options import option
from .meters import MeterContext, meter_factories, needs_reference

#: ``image (1, 3, H, W) in [0, 1] -> restored (1, 3, H, W) in [0, 1]``.
Restorer = Callable[[torch.Tensor], torch.Tensor]
#: ``on_image(index, count, file name, {metric: value}, seconds)`` after every image.
ImageCallback = Callable[[int, int, str, dict[str, float], float], None]

DEFAULT_METRICS = ("psnr", "ssim", "lpips")


@dataclass(frozen=True)
class ImageScore:
    """One image: its file name, per-image metric values and the seconds its restoration took (0 without a network)."""

    name: str
    values: dict[str, float]
    seconds: float


@dataclass
class ScoreReport:
    """Scores of one folder.

    Attributes:
        metrics: data-set value per metric (``None`` where it could not be computed).
        images: per-image values, in pairing order.
        notes: metrics that were skipped and why (a missing LPIPS network, too few images for FID).
    """

    metrics: dict[str, float | None]
    images: list[ImageScore] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {"metrics": dict(self.metrics), "notes": list(self.notes),
                "images": [{"image": s.name, **s.values, "seconds": round(s.seconds, 4)} for s in self.images]}


def _images(folder: Path) -> list[Path]:
    if folder.exists() and not folder.is_dir():
        raise InputError(f"{str(folder)!r} is a file, but scoring expects a folder of images (paired with the "
                         "ground truth's by name or order). Give the folder that holds it "
                         f"({str(folder.parent)!r}), or put the file alone into a folder and its ground truth "
                         "into another.")
    if not folder.is_dir():
        raise InputError(f"Folder {str(folder)!r} does not exist; give a folder of images.")
    files = image_files(folder)
    if not files:
        raise InputError(f"Folder {str(folder)!r} holds no images ({', '.join(IMAGE_SUFFIXES)}).")
    return files


NO_REFERENCE_KEYWORD = "metrics=['niqe', 'clipiqa']"


def match_pairs(inputs: str | Path, gt: str | Path, *, by: Literal["name", "order"] = "name",
                limit: int | None = None) -> list[tuple[Path, Path]]:
    """``(input, ground truth)`` file pairs of two folders.

    Args:
        inputs: restored images, or the LQ images a network will restore.
        gt: the ground-truth images.
        by: ``"name"`` pairs files with the same stem (``a.png`` with ``a.jpg``); ``"order"`` pairs
            the i-th file of each sorted folder, as the official test loaders do.
        limit: keep the first ``limit`` pairs.

    Raises:
        InputError: a folder is missing or empty; with ``by="name"``, a file has no partner (the
            message names the first ones); with ``by="order"``, the counts differ.
    """
    a, b = _images(Path(inputs)), _images(Path(gt))
    if by == "order":
        if len(a) != len(b):
            raise InputError(f"{len(a)} images in {str(inputs)!r} but {len(b)} in {str(gt)!r}; pairing by order "
                             "needs equal counts. Remove the extra files or pair by name.")
        pairs = list(zip(a, b, strict=True))
    elif by == "name":
        by_stem = {p.stem: p for p in b}
        unmatched = [p.name for p in a if p.stem not in by_stem]
        if unmatched:
            raise InputError(
                f"{len(unmatched)} of {len(a)} images in {str(inputs)!r} have no ground truth of the same name in "
                f"{str(gt)!r} (first: {', '.join(unmatched[:3])}). Rename them, or pair the sorted folders "
                f"by position ({option('pair_by', 'order', python='by=order')}).")
        pairs = [(p, by_stem[p.stem]) for p in a]
    else:
        raise InputError(f"by={by!r}: pair by 'name' or 'order'.")
    return pairs[:limit] if limit else pairs


def score_pairs(pairs: Sequence[tuple[Path, Path | None]], meters: Mapping[str, Callable[[], Any]], *,
                restore: Restorer | None = None, device: str | torch.device = "cpu",
                on_image: ImageCallback | None = None) -> tuple[dict[str, float | None], list[ImageScore]]:
    """Accumulate ``meters`` over ``pairs``, restoring each input first when ``restore`` is given.

    Args:
        pairs: ``(input, ground truth)`` files of equal size; the ground truth ``None`` where every
            metric is a no-reference one.
        meters: a factory per metric name (each builds a fresh meter; see
            :func:`~daclip_kit.metrics.meters.make_meter`).
        restore: the network run on every input (on ``device``); ``None`` scores the inputs as they are.
        device: where inputs go before ``restore``.
        on_image: called after every image.

    Returns:
        ``(value per metric, per-image scores)``; a meter that cannot give a value gives ``None``.

    Raises:
        InputError: an input and its ground truth differ in size.
    """
    running = {name: make() for name, make in meters.items()}
    images: list[ImageScore] = []
    for i, (src, gt_path) in enumerate(pairs):
        image, gt = read_image(src), (read_image(gt_path) if gt_path is not None else None)
        if gt is not None and image.shape != gt.shape:
            raise InputError(f"{src} is {tuple(image.shape[-2:])} but its ground truth {gt_path} is "
                             f"{tuple(gt.shape[-2:])}; an image and its ground truth must have the same size.")
        seconds = 0.0
        if restore is not None:
            t0 = time.perf_counter()
            image = restore(image.to(device)).detach().float().cpu().clamp(0, 1)  # the copy waits for the device
            seconds = time.perf_counter() - t0
        values: dict[str, float] = {}
        for name, meter in running.items():
            per_image = meter.update(image, gt)
            if per_image:
                values[name] = per_image[0]
        images.append(ImageScore(Path(src).name, values, seconds))
        if on_image is not None:
            on_image(i + 1, len(pairs), Path(src).name, values, seconds)
    return {name: meter.compute() for name, meter in running.items()}, images


def score_folders(gt: str | Path | None = None, *, pred: str | Path | None = None, lq: str | Path | None = None,
                  restore: Restorer | None = None, metrics: Sequence[str] = DEFAULT_METRICS,
                  protocol: Any = None, device: str | torch.device = "cpu",
                  search_dirs: Sequence[str | Path] = (), by: Literal["name", "order"] = "name",
                  limit: int | None = None, on_image: ImageCallback | None = None,
                  networks: Mapping[str, Any] | None = None) -> ScoreReport:
    """Score restored images (``pred``), or ``restore`` run on ``lq``, against the ground truth ``gt``
    (or without it, with no-reference metrics only).

    Args:
        gt: folder of ground-truth images; ``None`` when every metric is a no-reference one
            (``niqe``, ``clipiqa``).
        pred: folder of restored images (give this or ``lq`` with ``restore``).
        lq: folder of degraded images that ``restore`` restores.
        restore: ``(1, 3, H, W) -> (1, 3, H, W)`` in [0, 1], e.g. a pipeline (see ``daclip-kit score``).
        metrics: registered metric names (default PSNR, SSIM and LPIPS).
        protocol: a :class:`~daclip_kit.bench.spec.MetricProtocol` (default: the official test settings,
            4-pixel border crop, RGB, uint8 rounding).
        device: where ``restore`` and the feature networks (LPIPS, FID) run.
        search_dirs: folders searched first for metric weights (LPIPS's AlexNet, FID's Inception).
        by: pair files by ``"name"`` (stem) or sorted ``"order"``.
        limit: score the first ``limit`` pairs.
        on_image: progress callback, see :func:`score_pairs`.
        networks: feature networks by metric name, used instead of loading them (e.g. ``{"clipiqa":
            a DA-CLIP embedder}``, see :class:`~daclip_kit.metrics.meters.MeterContext`).

    Raises:
        InputError: missing folders, unpaired files, sizes that differ.
        ConfigError: neither or both of ``pred`` and ``lq``, ``lq`` without ``restore``, or no ``gt``
            for a metric that compares against it (PSNR, SSIM, LPIPS, FID).
        UnknownComponentError: a metric name that is not registered.
    """
    if (pred is None) == (lq is None):
        raise ConfigError(f"Give either restored images ({option('pred', 'DIR')}) or degraded ones with a network "
                          f"({option('lq', 'DIR')} {option('model', 'NAME', python='restore=NETWORK')}).")
    if lq is not None and restore is None:
        raise ConfigError("lq= needs restore= (the network to run on the degraded images).")
    if pred is not None and restore is not None:
        raise ConfigError("restore= is only used with lq=; restored images (pred=) are scored as they are.")
    source = pred if pred is not None else lq
    assert source is not None  # exactly one of the two (checked above)
    pairs: list[tuple[Path, Path | None]]
    if gt is None:
        referenced = [name for name in dict.fromkeys(metrics) if needs_reference(name)]
        if referenced:
            raise ConfigError(
                f"{', '.join(referenced)} compare{'s' if len(referenced) == 1 else ''} against ground truth: give "
                f"the folder of ground-truth images ({option('gt', 'DIR')}), or score without it with no-reference "
                f"metrics only ({option('metrics', 'niqe,clipiqa', python=NO_REFERENCE_KEYWORD)}).")
        files = _images(Path(source))
        pairs = [(path, None) for path in (files[:limit] if limit else files)]
    else:
        pairs = list(match_pairs(source, gt, by=by, limit=limit))
    context = MeterContext(protocol or MetricProtocol(), device=str(device),
                           search_dirs=[Path(d) for d in search_dirs], networks=dict(networks or {}))
    factories, failed = meter_factories(metrics, context)
    unknown = [exc for exc in failed.values() if isinstance(exc, UnknownComponentError)]
    if unknown:
        raise unknown[0]
    notes = [f"{name} not computed: {exc}" for name, exc in failed.items()]  # a missing feature network
    values, images = score_pairs(pairs, factories, restore=restore, device=device, on_image=on_image)
    for name, value in values.items():
        if value is None and name == "fid":
            notes.append(f"fid not computed: FID needs at least 2 images (got {len(pairs)}).")
    return ScoreReport({name: values.get(name) for name in dict.fromkeys(metrics)}, images, notes)
