"""Fréchet distance against closed-form Gaussian cases; running feature statistics."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.linalg

from daclip_kit.metrics import FeatureStats, frechet_distance


def test_identical_gaussians_have_zero_distance():
    rng = np.random.default_rng(0)
    a = rng.normal(size=(5, 5))
    cov = a @ a.T + np.eye(5)
    mu = rng.normal(size=5)
    assert frechet_distance(mu, cov, mu, cov) == pytest.approx(0.0, abs=1e-9)


def test_one_dimensional_closed_form():
    # N(m1, s1^2) vs N(m2, s2^2): (m1 - m2)^2 + (s1 - s2)^2
    d = frechet_distance(np.array([1.0]), np.array([[4.0]]), np.array([-2.0]), np.array([[9.0]]))
    assert d == pytest.approx(9.0 + 1.0)


def test_commuting_covariances_closed_form():
    rng = np.random.default_rng(1)
    q, _ = np.linalg.qr(rng.normal(size=(4, 4)))
    v1, v2 = np.array([1.0, 2.0, 0.5, 3.0]), np.array([4.0, 0.25, 0.5, 1.0])
    s1, s2 = q @ np.diag(v1) @ q.T, q @ np.diag(v2) @ q.T
    mu1, mu2 = np.zeros(4), np.array([1.0, 0.0, -1.0, 2.0])
    expected = 6.0 + np.sum((np.sqrt(v1) - np.sqrt(v2)) ** 2)
    assert frechet_distance(mu1, s1, mu2, s2) == pytest.approx(expected, rel=1e-10)


def test_general_case_matches_scipy_sqrtm():
    rng = np.random.default_rng(2)
    a, b = rng.normal(size=(6, 6)), rng.normal(size=(6, 6))
    s1, s2 = a @ a.T + 0.1 * np.eye(6), b @ b.T + 0.1 * np.eye(6)
    mu1, mu2 = rng.normal(size=6), rng.normal(size=6)
    covmean = scipy.linalg.sqrtm(s1 @ s2).real
    expected = np.sum((mu1 - mu2) ** 2) + np.trace(s1) + np.trace(s2) - 2 * np.trace(covmean)
    assert frechet_distance(mu1, s1, mu2, s2) == pytest.approx(expected, rel=1e-8)


def test_rank_deficient_covariances_stay_finite_and_non_negative():
    rng = np.random.default_rng(3)
    x, y = rng.normal(size=(3, 16)), rng.normal(size=(3, 16)) + 0.5  # 3 samples, 16 dims
    d = frechet_distance(x.mean(0), np.cov(x, rowvar=False), y.mean(0), np.cov(y, rowvar=False))
    assert np.isfinite(d) and d > 0


def test_feature_stats_match_numpy_mean_and_cov():
    rng = np.random.default_rng(4)
    x = rng.normal(loc=1000.0, scale=0.01, size=(37, 5))  # large offset: tests the stable accumulation
    stats = FeatureStats()
    for chunk in np.array_split(x, 4):
        stats.update(chunk)
    assert stats.count == 37
    np.testing.assert_allclose(stats.mean, x.mean(0), rtol=1e-12)
    np.testing.assert_allclose(stats.cov, np.cov(x, rowvar=False), rtol=1e-7, atol=1e-12)
