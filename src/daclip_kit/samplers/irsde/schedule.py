"""The discretised theta/sigma schedule of the mean-reverting SDE.

``dx = theta_t (mu - x) dt + sigma_t dw`` with ``sigma_t^2 = 2 lambda^2 theta_t``, so the
marginal at step ``t`` is ``N(mu + (x0 - mu) e^{-theta_bar_t dt}, lambda^2 (1 - e^{-2 theta_bar_t dt}))``.
Arrays have ``T + 1`` entries and are indexed by the step ``t`` in ``1..T`` (index 0 is the start).
Everything is computed in float32 in the official order so the numbers match it bit for bit
where possible.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields
from typing import Any

import torch

from .config import IRSDEConfig


@dataclass(frozen=True)
class IRSDESchedule:
    """Schedule tensors (float32, length ``T + 1``) and the step size.

    Attributes:
        thetas: mean-reversion rates ``theta_t``.
        sigmas: diffusion coefficients ``sqrt(2 lambda^2 theta_t)``.
        thetas_cumsum: ``theta_bar_t = sum_{i<=t} theta_i - theta_0`` (so ``theta_bar_0 = 0``).
        sigma_bars: marginal standard deviations ``lambda sqrt(1 - exp(-2 theta_bar_t dt))``.
        dt: 0-dim step size with ``exp(-theta_bar_T dt) = eps``.
        max_sigma: lambda, in [0, 1] image units.
    """

    thetas: torch.Tensor
    sigmas: torch.Tensor
    thetas_cumsum: torch.Tensor
    sigma_bars: torch.Tensor
    dt: torch.Tensor
    max_sigma: float

    @property
    def T(self) -> int:
        """Number of steps."""
        return self.thetas.shape[0] - 1

    def to(self, device: torch.device | str) -> IRSDESchedule:
        """Copy with every tensor on ``device``."""
        moved: dict[str, Any] = {
            f.name: (v.to(device) if isinstance(v := getattr(self, f.name), torch.Tensor) else v)
            for f in fields(self)
        }
        return IRSDESchedule(**moved)


def theta_schedule(name: str, T: int) -> torch.Tensor:
    """``T + 1`` theta values of schedule ``name`` (``cosine``, ``linear`` or ``constant``)."""
    if name == "cosine":
        # improved-DDPM cosine over T + 2 steps, s = 0.008; theta_i = 1 - abar_{i+1} / abar_0
        steps = T + 2
        x = torch.linspace(0, steps, steps + 1, dtype=torch.float32)
        abar = torch.cos(((x / steps) + 0.008) / (1 + 0.008) * math.pi * 0.5) ** 2
        abar = abar / abar[0]
        return 1 - abar[1:-1]
    if name == "linear":
        scale = 1000 / (T + 1)
        return torch.linspace(scale * 0.0001, scale * 0.02, T + 1, dtype=torch.float32)
    if name == "constant":
        return torch.ones(T + 1, dtype=torch.float32)
    raise ValueError(f"Unknown schedule {name!r}; use 'cosine', 'linear' or 'constant'.")


def make_schedule(config: IRSDEConfig) -> IRSDESchedule:
    """Build the schedule of ``config`` (on CPU)."""
    lam = config.lam
    thetas = theta_schedule(config.schedule, config.T)
    sigmas = torch.sqrt(lam ** 2 * 2 * thetas)
    thetas_cumsum = torch.cumsum(thetas, dim=0) - thetas[0]
    dt = -1 / thetas_cumsum[-1] * math.log(config.eps)
    sigma_bars = torch.sqrt(lam ** 2 * (1 - torch.exp(-2 * thetas_cumsum * dt)))
    return IRSDESchedule(thetas, sigmas, thetas_cumsum, sigma_bars, dt, lam)
