"""Heun's method for the reverse-time SDE / probability-flow ODE of IR-SDE (the MRS paper's
second-order baseline; official ``HeunSampler`` in grrrute/mr-sampler,
``universal-image-restoration/utils/sampler.py``).

The reverse process of ``dx = theta_t (mu - x) dt + g_t dw`` (time measured in steps ``t`` of size
``dt``, ``g_t = sqrt(2 lambda^2 theta_t)``) is

    dx = [theta_t (mu - x) - c g_t^2 score(x, t)] dt + [c = 1] g_t dw_reverse,

with ``c = 1`` for the SDE and ``c = 1/2`` (no noise) for the probability-flow ODE. A run of
``NFE = steps`` evaluations uses the grid ``linspace(T, 0, steps + 1)`` (float times) and takes one
Heun step per pair of intervals: an Euler(-Maruyama) predictor from ``t_s`` to ``t_{s+2}``, a
second evaluation there, and the trapezoidal corrector with diffusion ``(g_s + g_t) / 2``. When
``steps`` is odd the last interval is a single Euler step. ``theta``, ``g`` and the marginal
standard deviation are interpolated linearly between integer steps. The schedule is the MRS
code's (``theta_bar`` keeps ``theta_0``, ``dt`` from ``alpha_T = eps``), the one its Heun code path
uses (``utils.IRSDE`` of that repository). The SDE draws one normal sample for the predictor and
one for the corrector of each Heun step (and one for a final Euler step), in the official order;
note that the corrector's Brownian increment is therefore independent of the predictor's (the
textbook stochastic Heun scheme reuses it); we keep the official draw count and order.

Two deliberate differences from the official code, both so that the solver integrates the SDE
the network was trained for:

* **Score.** A noise-predicting network gives ``eps`` with ``x_t = mu_bar_t + sigma_bar_t eps``,
  so the score is ``-eps / sigma_bar_t`` (the marginal standard deviation; the official IR-SDE
  ``get_score_from_noise`` and Euler sampler use exactly this). The official ``HeunSampler`` divides
  by the interpolated ``sde.sigmas``, the diffusion coefficient ``g_t = lambda sqrt(2 theta_t)``.
  That is a different function of ``t``: for the cosine schedule with T=100, ``g_t / sigma_bar_t``
  is about 3.1 at ``t=0``, 1.5 at ``t=10``, 1.0 near ``t=40`` and 1.4 at ``t=T``, so the official
  score is too small by that factor (the noise term of the drift is ``g eps`` instead of
  ``g^2 eps / sigma_bar``). It is not an alternative parameterisation, only a mismatch with how the
  network was trained; we divide by ``sigma_bar_t``.
* **Step length.** The official update multiplies by ``(j - i) * dt`` with ``i, j`` *grid indices*,
  i.e. it assumes one time step per interval; with ``steps < T`` an interval spans ``T / steps`` time
  steps, so the official run integrates the drift and noise over only ``steps / T`` of the time axis
  while its network times run down to 0. We use the time difference ``(t_i - t_j) * dt``; both agree
  when ``steps = T``.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch

from ...core.sampler import Draw, SamplerOutput, Solver, randn_like
from ...errors import ConfigError, ShapeError
from ..mrs.base import MeanRevertingSampler
from ..mrs.schedule import interpolate
from .config import HeunConfig


class HeunSampler(MeanRevertingSampler):
    """Stateless Heun sampler (SDE or ODE) with ``NFE = steps``.

    Args:
        config: :class:`HeunConfig` (default: SDE, max_sigma 50, T 100, cosine, eps 0.005,
            ``T`` evaluations).

    Example:
        >>> import daclip_kit
        >>> heun = daclip_kit.create_sampler("heun", solver_type="ode")
        >>> heun.timesteps(5)
        (100.0, 60.0, 60.0, 20.0, 20.0)
    """

    config: HeunConfig

    def __init__(self, config: HeunConfig | None = None):
        config = HeunConfig() if config is None else config
        super().__init__(config, config.T)

    def __repr__(self) -> str:
        c = self.config
        return f"HeunSampler(solver_type={c.solver_type!r}, steps={self.default_steps}, T={c.T})"

    def time_grid(self, steps: int | None = None) -> list[float]:
        """The ``steps + 1`` grid times ``linspace(T, 0, steps + 1)`` (float64)."""
        return torch.linspace(self.config.T, 0, self.run_steps(steps) + 1, dtype=torch.float64).tolist()

    def coefficients(self, times: list[float]) -> dict[str, list[float]]:
        """``theta``, ``g`` (diffusion), ``sigma_bar`` and ``alpha`` interpolated at ``times`` (float64)."""
        sched = self.schedule
        x = torch.tensor(times, dtype=torch.float64)
        xp = sched.t_array.double()
        names = {"theta": "thetas", "g": "diffusion", "sigma_bar": "sigma_array", "alpha": "alpha_array"}
        return {k: interpolate(x, xp, getattr(sched, v).double()).tolist() for k, v in names.items()}

    def solver(self, steps: int | None = None) -> HeunSolver:
        """A fresh run of ``steps`` network evaluations (default :attr:`default_steps`)."""
        return HeunSolver(self, self.time_grid(steps))


    def drift(self, x: torch.Tensor, model_output: torch.Tensor, lq: torch.Tensor, theta: float, g: float,
              sigma_bar: float) -> torch.Tensor:
        """Reverse drift per time step ``theta (mu - x) - c g^2 score`` with ``score = -eps / sigma_bar``
        (``c = 1`` for the SDE, ``1/2`` for the ODE)."""
        c = 1.0 if self.config.solver_type == "sde" else 0.5
        score = -model_output / sigma_bar
        return theta * (lq - x) - c * g ** 2 * score

    def euler(self, x: torch.Tensor, drift: torch.Tensor, g: float, span: float,
              noise: Callable[[], torch.Tensor]) -> torch.Tensor:
        """The Euler(-Maruyama) update ``x - drift * span`` (``+ g sqrt(span) z`` for the SDE, with
        ``z = noise()`` drawn only then)."""
        out = x - drift * span
        if self.config.solver_type == "sde":
            out = out + g * math.sqrt(span) * noise()
        return out

    def step(self, model_output: torch.Tensor, t: float, x_t: torch.Tensor, lq: torch.Tensor, *,
             t_prev: float | None = None, generator: torch.Generator | None = None,
             noise: torch.Tensor | None = None) -> SamplerOutput:
        """One Euler(-Maruyama) step from time ``t`` to ``t_prev`` (the predictor of a Heun step).

        ``t_prev`` defaults to the next time of the default run's grid (or 0).
        """
        t = float(t)
        if t_prev is None:
            t_prev = next((v for v in self.time_grid() if v < t), 0.0)
        t_prev = float(t_prev)
        if not t_prev < t:
            raise ConfigError(f"t_prev={t_prev} must be below t={t}.")
        co = self.coefficients([t])
        theta, g, sigma_bar, alpha = co["theta"][0], co["g"][0], co["sigma_bar"][0], co["alpha"][0]
        span = (t - t_prev) * float(self.schedule.dt)
        drift = self.drift(x_t, model_output, lq, theta, g, sigma_bar)
        out = self.euler(x_t, drift, g, span, lambda: randn_like(x_t, generator) if noise is None else noise)
        clean = (x_t - lq - sigma_bar * model_output) / alpha + lq
        return SamplerOutput(out, clean)


class HeunSolver(Solver):
    """One Heun run: evaluations at ``t_0, t_2, t_2, t_4, ..., t_M`` (``M`` even) and, for odd
    ``M``, a last Euler step from ``t_{M-1}``.

    Holds the start state and drift of the current Heun step between its two evaluations.
    """

    def __init__(self, sampler: HeunSampler, grid: list[float]):
        self.sampler = sampler
        self.grid = grid
        co = sampler.coefficients(grid)
        self._theta, self._g, self._sigma_bar = co["theta"], co["g"], co["sigma_bar"]
        self._dt = float(sampler.schedule.dt)
        m = len(grid) - 1
        plan: list[tuple[str, int, int]] = []
        for s in range(0, m - 1, 2):
            plan += [("predict", s, s + 2), ("correct", s, s + 2)]
        if m % 2:
            plan.append(("euler", m - 1, m))
        self._plan = plan
        self.timesteps = tuple(grid[s] if kind != "correct" else grid[t] for kind, s, t in plan)
        self._start: tuple[torch.Tensor, torch.Tensor] | None = None
        self._k = 0

    def step(self, model_output: torch.Tensor, x: torch.Tensor, lq: torch.Tensor, draw: Draw) -> torch.Tensor:
        if self._k >= len(self._plan):
            raise ConfigError(f"This Heun run has {len(self._plan)} evaluations; make a new solver for another run.")
        if model_output.shape != x.shape:
            raise ShapeError(f"model output {tuple(model_output.shape)} does not match the state {tuple(x.shape)}.")
        kind, s, t = self._plan[self._k]
        self._k += 1
        sde = self.sampler.config.solver_type == "sde"
        span = (self.grid[s] - self.grid[t]) * self._dt
        if kind in ("predict", "euler"):
            f0 = self.sampler.drift(x, model_output, lq, self._theta[s], self._g[s], self._sigma_bar[s])
            out = self.sampler.euler(x, f0, self._g[s], span, lambda: draw(x))
            self._start = (x, f0) if kind == "predict" else None
            return out
        assert self._start is not None  # the predict call of this interval came first
        x_s, f0 = self._start
        self._start = None
        f1 = self.sampler.drift(x, model_output, lq, self._theta[t], self._g[t], self._sigma_bar[t])
        out = x_s - 0.5 * (f0 + f1) * span
        if sde:
            out = out + 0.5 * (self._g[s] + self._g[t]) * math.sqrt(span) * draw(x)
        return out
