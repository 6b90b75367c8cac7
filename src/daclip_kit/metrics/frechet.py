"""Fréchet distance between Gaussians fitted to feature sets (the core of FID)."""

from __future__ import annotations

import numpy as np
import torch

from ..errors import ShapeError


class FeatureStats:
    """Running mean and covariance of ``(N, D)`` feature batches, accumulated in float64.

    The covariance is the unbiased sample covariance (``numpy.cov(x, rowvar=False)``), as
    pytorch-fid uses. Memory is ``O(D^2)`` whatever the number of images.
    """

    def __init__(self) -> None:
        self.count = 0
        self._sum: np.ndarray | None = None
        self._outer: np.ndarray | None = None
        self._shift: np.ndarray | None = None

    def update(self, features: torch.Tensor | np.ndarray) -> None:
        """Add a ``(N, D)`` batch of features."""
        x = features.detach().cpu().numpy() if isinstance(features, torch.Tensor) else np.asarray(features)
        x = x.astype(np.float64, copy=False)
        if x.ndim != 2:
            raise ShapeError(f"features must have shape (N, D), got {x.shape}.")
        if self._shift is None:
            # Centering on the first sample keeps the sums small (numerically stable covariance).
            self._shift = x[0].copy()
            d = x.shape[1]
            self._sum = np.zeros(d)
            self._outer = np.zeros((d, d))
        elif x.shape[1] != self._shift.shape[0]:
            raise ShapeError(f"feature size changed from {self._shift.shape[0]} to {x.shape[1]}.")
        xc = x - self._shift
        self._sum += xc.sum(axis=0)
        self._outer += xc.T @ xc
        self.count += x.shape[0]

    @property
    def mean(self) -> np.ndarray:
        """``(D,)`` mean of all features seen."""
        self._require(1)
        assert self._shift is not None and self._sum is not None  # set by the first update
        return self._shift + self._sum / self.count

    @property
    def cov(self) -> np.ndarray:
        """``(D, D)`` unbiased covariance (needs at least two samples)."""
        self._require(2)
        assert self._sum is not None and self._outer is not None  # set by the first update
        m = self._sum / self.count
        return (self._outer - self.count * np.outer(m, m)) / (self.count - 1)

    def _require(self, n: int) -> None:
        if self.count < n:
            raise ShapeError(f"need at least {n} feature vectors, got {self.count}.")


def _sqrt_psd(mat: np.ndarray) -> np.ndarray:
    """Symmetric square root of a symmetric positive semi-definite matrix (eigenvalues clipped at 0)."""
    w, v = np.linalg.eigh((mat + mat.T) / 2)
    return (v * np.sqrt(np.clip(w, 0, None))) @ v.T


def frechet_distance(mu1: np.ndarray, sigma1: np.ndarray, mu2: np.ndarray, sigma2: np.ndarray) -> float:
    """Fréchet distance between ``N(mu1, sigma1)`` and ``N(mu2, sigma2)``.

    ``|mu1 - mu2|^2 + tr(S1) + tr(S2) - 2 tr((S1 S2)^{1/2})``. The trace term is computed in the
    symmetric form ``tr((S1^{1/2} S2 S1^{1/2})^{1/2})`` (same eigenvalues as ``S1 S2``) with
    eigen-decompositions in float64, so singular or rank-deficient covariances (fewer images than
    feature dimensions) give a finite, non-negative answer instead of complex ``sqrtm`` noise.

    Args:
        mu1: ``(D,)`` mean of the first Gaussian.
        sigma1: ``(D, D)`` covariance of the first Gaussian.
        mu2: ``(D,)`` mean of the second Gaussian.
        sigma2: ``(D, D)`` covariance of the second Gaussian.
    """
    mu1, mu2 = np.atleast_1d(np.asarray(mu1, np.float64)), np.atleast_1d(np.asarray(mu2, np.float64))
    s1, s2 = np.atleast_2d(np.asarray(sigma1, np.float64)), np.atleast_2d(np.asarray(sigma2, np.float64))
    if mu1.shape != mu2.shape or s1.shape != s2.shape or s1.shape != (mu1.size, mu1.size):
        raise ShapeError(
            f"inconsistent shapes: mu1 {mu1.shape}, mu2 {mu2.shape}, sigma1 {s1.shape}, sigma2 {s2.shape}."
        )
    root1 = _sqrt_psd(s1)
    middle = root1 @ s2 @ root1
    eig = np.linalg.eigvalsh((middle + middle.T) / 2)
    tr_covmean = float(np.sqrt(np.clip(eig, 0, None)).sum())
    diff = mu1 - mu2
    value = float(diff @ diff + np.trace(s1) + np.trace(s2) - 2.0 * tr_covmean)
    return max(value, 0.0)


def frechet_distance_from_stats(a: FeatureStats, b: FeatureStats) -> float:
    """:func:`frechet_distance` of two :class:`FeatureStats`."""
    return frechet_distance(a.mean, a.cov, b.mean, b.cov)
