"""Fixtures of the sampler tests: the MRS reference fixture and analytic stand-in networks."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch

REPO_ROOT = Path(__file__).resolve().parents[2]
MRS_FIXTURE = "mrs_sampler.golden.pt"
MRS_OPTIONS_FIXTURE = "mrs_sampler_options.golden.pt"


@pytest.fixture(scope="session")
def mrs_golden(reference_dir) -> dict:
    """``mrs_sampler.golden.pt`` (official MRS runs) from ``tests/fixtures/reference/``."""
    return torch.load(reference_dir / MRS_FIXTURE, map_location="cpu", weights_only=True)


@pytest.fixture(scope="session")
def mrs_options_golden(reference_dir) -> dict:
    """``mrs_sampler_options.golden.pt`` (twenty official MRS runs over the option set)."""
    return torch.load(reference_dir / MRS_OPTIONS_FIXTURE, map_location="cpu", weights_only=True)


def lerp_at(values: torch.Tensor, t: float) -> torch.Tensor:
    """``values`` (indexed by integer time) at float ``t``: linear from index ``i`` to ``i + 1``
    with weight ``t - i`` (the last segment is used at ``t = T``)."""
    i = min(math.floor(t), values.numel() - 2)
    return values[i] + (t - i) * (values[i + 1] - values[i])


class StandIn(torch.nn.Module):
    """Analytic network of a mean-reverting schedule (``alpha``, ``sigma`` indexed by time).

    Its clean-image estimate is ``x0(x) = gt + bend * tanh(x - mu)``; it returns the noise
    ``(x - mu - a(t) (x0 - mu)) / s(t)`` (``kind="noise"``), ``x0`` itself (``"data"``) or the velocity
    ``lam a eps - (s / lam) (x0 - mu)``, plus ``tanh_noise * tanh(x - mu)`` on the noise (the MRS
    fixture's stand-in has ``bend=0, tanh_noise=0.05``). Records the times it is called at.
    """

    def __init__(self, alpha: torch.Tensor, sigma: torch.Tensor, gt: torch.Tensor, *, lam: float = 50 / 255,
                 tanh_noise: float = 0.0, bend: float = 0.0, kind: str = "noise"):
        super().__init__()
        self.alpha, self.sigma, self.gt, self.lam = alpha, sigma, gt, lam
        self.tanh_noise, self.bend, self.kind = tanh_noise, bend, kind
        self.times: list[float] = []

    def forward(self, x, lq, t, degradation=None, content=None):
        self.times.append(t)
        a, s = lerp_at(self.alpha, t), lerp_at(self.sigma, t)
        x0 = self.gt + self.bend * torch.tanh(x - lq) if self.bend else self.gt
        eps = (x - lq - a * (x0 - lq)) / s + self.tanh_noise * torch.tanh(x - lq)
        if self.kind == "noise":
            return eps
        if self.kind == "data":
            return x0
        return self.lam * a * eps - (s / self.lam) * (x0 - lq)


@pytest.fixture
def stand_in():
    """``stand_in(sampler, gt, **kw)``: a :class:`StandIn` on ``sampler.schedule``'s alpha/sigma."""

    def make(sampler, gt, **kw):
        sched = sampler.schedule
        return StandIn(sched.alpha_array, sched.sigma_array, gt, lam=sched.lam, **kw)

    return make


@pytest.fixture
def images():
    """``images(shape, seed)``: ``(gt, lq, z)`` with ``lq`` a perturbed ``gt`` and ``z`` standard normal."""

    def make(shape=(1, 3, 16, 16), seed=0):
        g = torch.Generator().manual_seed(seed)
        gt = torch.rand(shape, generator=g)
        lq = (gt + 0.2 * torch.randn(shape, generator=g)).clamp(0, 1)
        return gt, lq, torch.randn(shape, generator=g)

    return make

