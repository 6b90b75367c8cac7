"""Fréchet Inception Distance, computed the way pytorch-fid does (folder vs folder)."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

import torch

from ..core.checks import check_image
from ..errors import InputError
from ..io import list_images, read_image
from .frechet import FeatureStats, frechet_distance_from_stats
from .prepare import to_uint8_levels

#: A set of images: a folder, a list of image files, or a ``(N, 3, H, W)`` tensor in [0, 1].
ImageSet = str | Path | Iterable[str | Path] | torch.Tensor


def _batches(images: ImageSet, batch_size: int) -> Iterator[torch.Tensor]:
    """Yield ``(b, 3, H, W)`` [0, 1] batches; consecutive files of one size share a batch."""
    if isinstance(images, torch.Tensor):
        check_image(images, "images")
        for i in range(0, images.shape[0], batch_size):
            yield images[i:i + batch_size]
        return

    paths = list_images([images] if isinstance(images, (str, Path)) else list(images))
    pending: list[torch.Tensor] = []
    for path in paths:
        img = read_image(path)
        if pending and (img.shape != pending[0].shape or len(pending) == batch_size):
            yield torch.cat(pending)
            pending = []
        pending.append(img)
    if pending:
        yield torch.cat(pending)


def feature_stats(images: ImageSet, feature_net: Callable[[torch.Tensor], torch.Tensor], *,
                  batch_size: int = 50, quantize: bool = True,
                  stats: FeatureStats | None = None) -> FeatureStats:
    """Accumulate the features of ``images`` into a :class:`FeatureStats`.

    Args:
        images: folder, image files, or a ``(N, 3, H, W)`` float tensor in [0, 1].
        feature_net: ``(b, 3, H, W)`` [0, 1] -> ``(b, D)`` features (default in :func:`fid`:
            :func:`~daclip_kit.metrics.inception.load_fid_inception`).
        quantize: round tensors to uint8 levels first, as if they had been saved as PNG files.
        stats: add to these statistics instead of new ones.
    """
    stats = FeatureStats() if stats is None else stats
    device = next(iter(getattr(feature_net, "parameters", lambda: iter(()))()), torch.empty(0)).device
    with torch.no_grad():
        for batch in _batches(images, batch_size):
            if quantize:
                batch = to_uint8_levels(batch).float() / 255.0
            stats.update(feature_net(batch.to(device)).reshape(batch.shape[0], -1))
    return stats


def fid(pred: ImageSet, ref: ImageSet, *, feature_net: Callable[[torch.Tensor], torch.Tensor] | None = None,
        weights_dir: str | Path | None = None, device: str | torch.device = "cpu",
        batch_size: int = 50) -> float:
    """FID between two image sets (lower is better).

    pytorch-fid's protocol: every image (read as 8-bit RGB, scaled to [0, 1]) is resized to 299x299
    and passed through the FID Inception-v3; the 2048-d pool3 features of each set are fitted
    with a Gaussian (mean, unbiased covariance) and the Fréchet distance of the two Gaussians is
    returned (:func:`~daclip_kit.metrics.frechet.frechet_distance`).

    Args:
        pred: folder, list of image files, or ``(N, 3, H, W)`` float tensor in [0, 1]; at least
            two images.
        ref: the reference set, likewise.
        feature_net: replaces the Inception network (tests, other feature spaces).
        weights_dir: folder holding ``pt_inception-2015-12-05-6726825d.pth``.
        device: where the Inception network runs.
        batch_size: images per forward pass.

    Raises:
        WeightsNotFoundError: the Inception weights are missing (nothing is downloaded).
        InputError: a set has fewer than two images.
    """
    if feature_net is None:
        from .inception import load_fid_inception

        feature_net = load_fid_inception(weights_dir, device=device)
    stats = []
    for name, images in (("pred", pred), ("ref", ref)):
        s = feature_stats(images, feature_net, batch_size=batch_size)
        if s.count < 2:
            raise InputError(f"FID needs at least two images per set; {name} has {s.count}.")
        stats.append(s)
    return frechet_distance_from_stats(stats[0], stats[1])
