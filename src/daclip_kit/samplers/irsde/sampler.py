"""The IR-SDE sampler: forward marginals, training target and reverse steps.

The network predicts the noise ``eps`` of ``x_t = mu_bar(x0, t) + sigma_bar_t * eps`` with the
SDE mean ``mu`` equal to the LQ image. Reverse steps (``mode``):

* ``"posterior"`` (official default): sample the Gaussian posterior ``p(x_s | x_t, x0_hat)``;
* ``"sde"``: Euler-Maruyama on the reverse-time SDE (the ICLR paper's sampler);
* ``"ode"``: Euler on the probability-flow ODE (deterministic).

Steps may skip: from ``t`` to any ``s < t`` the theta increment ``theta_bar_t - theta_bar_s``
replaces ``theta_t`` (for ``s = t - 1`` the official formulas are used unchanged), so fewer
network evaluations than ``T`` are possible.
"""

from __future__ import annotations

import math
from typing import Literal

import torch
import torch.nn.functional as F

from ...core.sampler import Draw, Sampler, SamplerOutput, Solver, randn_like
from ...errors import ConfigError, ShapeError
from .config import IRSDEConfig
from .schedule import IRSDESchedule, make_schedule

Step = int | torch.Tensor
MODES = ("posterior", "sde", "ode")


class IRSDESampler(Sampler):
    """Stateless mean-reverting SDE sampler.

    Args:
        config: :class:`IRSDEConfig` (default: max_sigma 50, T 100, cosine, eps 0.005).

    ``t`` arguments are Python ints (sampling) or integer tensors of shape ``(B,)`` or
    ``(B, 1, 1, 1)`` (training); image tensors are ``(B, C, H, W)``.

    Example:
        >>> s = IRSDESampler(IRSDEConfig())
        >>> lq = torch.rand(1, 3, 8, 8)
        >>> x = s.noise_state(lq, generator=torch.Generator().manual_seed(0))
        >>> out = s.step(torch.zeros_like(x), 100, x, lq, generator=torch.Generator().manual_seed(1))
        >>> out.prev_sample.shape
        torch.Size([1, 3, 8, 8])
    """

    config: IRSDEConfig

    def __init__(self, config: IRSDEConfig | None = None):
        self.config = IRSDEConfig() if config is None else config
        self.default_steps = self.config.T
        self.schedule: IRSDESchedule = make_schedule(self.config)
        self._on_device: dict[torch.device, IRSDESchedule] = {torch.device("cpu"): self.schedule}
        self._coefficients: dict[tuple[int, ...], list[tuple[float, float, float]]] = {}

    @property
    def T(self) -> int:
        """Number of steps of the discretised SDE."""
        return self.config.T

    @property
    def max_sigma(self) -> float:
        """Stationary standard deviation lambda in [0, 1] units."""
        return self.schedule.max_sigma

    def __repr__(self) -> str:
        c = self.config
        return (f"IRSDESampler(max_sigma={c.max_sigma}, T={c.T}, schedule={c.schedule!r}, eps={c.eps}, "
                f"mode={c.mode!r})")

    # -- indexing helpers ------------------------------------------------------------------------

    def _sched(self, device: torch.device) -> IRSDESchedule:
        if device not in self._on_device:
            self._on_device[device] = self.schedule.to(device)
        return self._on_device[device]

    def _at(self, values: torch.Tensor, t: Step, device: torch.device) -> torch.Tensor:
        """``values[t]`` as a 0-dim tensor (int ``t``) or ``(B, 1, 1, 1)`` (tensor ``t``)."""
        if isinstance(t, torch.Tensor):
            if t.is_floating_point():
                raise ShapeError(f"t must hold integer steps, got dtype {t.dtype}.")
            return values[t.to(values.device).reshape(-1)].reshape(-1, 1, 1, 1).to(device)
        step = int(t)
        if not 0 <= step <= self.T:
            raise ConfigError(f"Step t={step} is outside [0, {self.T}].")
        return values[step]

    def _theta_bar(self, t: Step, device: torch.device) -> torch.Tensor:
        return self._at(self._sched(device).thetas_cumsum, t, device)

    def _increment(self, t: Step, t_prev: Step | None, device: torch.device) -> torch.Tensor:
        """``theta_bar_t - theta_bar_{t_prev}`` (``theta_t`` itself for adjacent steps)."""
        sched = self._sched(device)
        if t_prev is None or (not isinstance(t, torch.Tensor) and int(t_prev) == int(t) - 1):
            return self._at(sched.thetas, t, device)
        return self._theta_bar(t, device) - self._theta_bar(t_prev, device)

    def _prev_theta_bar(self, t: Step, t_prev: Step | None, device: torch.device) -> torch.Tensor:
        return self._theta_bar(t - 1 if t_prev is None else t_prev, device)

    # -- forward process ---------------------------------------------------------------------

    def mu_bar(self, x0: torch.Tensor, lq: torch.Tensor, t: Step) -> torch.Tensor:
        """Mean of ``x_t`` given ``x0``: ``lq + (x0 - lq) exp(-theta_bar_t dt)``."""
        dt = self._sched(x0.device).dt
        return lq + (x0 - lq) * torch.exp(-self._theta_bar(t, x0.device) * dt)

    def sigma_bar(self, t: Step, device: torch.device | str = "cpu") -> torch.Tensor:
        """Standard deviation of ``x_t`` given ``x0``."""
        device = torch.device(device)
        return self._at(self._sched(device).sigma_bars, t, device)

    def forward_noise(self, x0: torch.Tensor, lq: torch.Tensor, t: Step, *,
                      noise: torch.Tensor | None = None,
                      generator: torch.Generator | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """Sample ``x_t = mu_bar(x0, t) + sigma_bar_t * noise`` (training inputs).

        Returns:
            ``(x_t, noise)``.
        """
        if noise is None:
            noise = randn_like(x0, generator)
        return self.mu_bar(x0, lq, t) + self.sigma_bar(t, x0.device) * noise, noise

    def random_timesteps(self, batch: int, generator: torch.Generator | None = None,
                         device: torch.device | str = "cpu") -> torch.Tensor:
        """Training steps ``t ~ U{1..T}``, shape ``(batch, 1, 1, 1)`` (long)."""
        gen_device = generator.device if generator is not None else "cpu"
        t = torch.randint(1, self.T + 1, (batch, 1, 1, 1), generator=generator, device=gen_device)
        return t.to(device)

    def marginals(self, t: float) -> tuple[float, float]:
        """``(alpha_t, sigma_bar_t)`` with ``alpha_t = exp(-theta_bar_t dt)`` (:meth:`mu_bar`); between
        integer steps ``theta_bar`` is interpolated linearly."""
        sched = self.schedule
        t = float(t)
        if not 0 <= t <= self.T:
            raise ConfigError(f"Step t={t:g} is outside [0, {self.T}].")
        lo = min(math.floor(t), self.T - 1)
        w = t - lo
        theta_bar = float(sched.thetas_cumsum[lo]) * (1 - w) + float(sched.thetas_cumsum[lo + 1]) * w
        alpha = math.exp(-theta_bar * float(sched.dt))
        return alpha, self.max_sigma * math.sqrt(max(1 - alpha * alpha, 0.0))

    def noise_from_state(self, x_t: torch.Tensor, x0: torch.Tensor, lq: torch.Tensor, t: Step) -> torch.Tensor:
        """The true noise in ``x_t`` given the clean ``x0``: ``(x_t - mu_bar(x0, t)) / sigma_bar_t``."""
        return (x_t - self.mu_bar(x0, lq, t)) / self.sigma_bar(t, x_t.device)

    def score_from_noise(self, noise: torch.Tensor, t: Step) -> torch.Tensor:
        """Score ``-noise / sigma_bar_t``."""
        return -noise / self.sigma_bar(t, noise.device)

    def pred_clean(self, x_t: torch.Tensor, noise: torch.Tensor, lq: torch.Tensor, t: Step) -> torch.Tensor:
        """Clean image implied by predicted ``noise``: ``(x_t - lq - sigma_bar_t noise) e^{theta_bar_t dt} + lq``."""
        dt = self._sched(x_t.device).dt
        grow = torch.exp(self._theta_bar(t, x_t.device) * dt)
        return (x_t - lq - self.sigma_bar(t, x_t.device) * noise) * grow + lq

    # -- posterior -------------------------------------------------------------------------------

    def _posterior_coefs(self, t: Step, t_prev: Step | None, device: torch.device):
        dt = self._sched(device).dt
        inc = self._increment(t, t_prev, device)
        a = torch.exp(-inc * dt)
        b = torch.exp(-self._theta_bar(t, device) * dt)
        c = torch.exp(-self._prev_theta_bar(t, t_prev, device) * dt)
        return a, b, c, inc, dt

    def reverse_optimum_step(self, x_t: torch.Tensor, x0: torch.Tensor, lq: torch.Tensor, t: Step,
                             t_prev: Step | None = None) -> torch.Tensor:
        """Posterior mean of ``x_{t_prev}`` given ``x_t`` and ``x0`` (the training target).

        ``a (x_t - mu) + b (x0 - mu) + mu`` with ``a = A(1 - C^2)/(1 - B^2)``,
        ``b = C(1 - A^2)/(1 - B^2)``, ``A = e^{-(theta_bar_t - theta_bar_s) dt}``,
        ``B = e^{-theta_bar_t dt}``, ``C = e^{-theta_bar_s dt}``.
        """
        a, b, c, _, _ = self._posterior_coefs(t, t_prev, x_t.device)
        term1 = a * (1 - c ** 2) / (1 - b ** 2)
        term2 = c * (1 - a ** 2) / (1 - b ** 2)
        return term1 * (x_t - lq) + term2 * (x0 - lq) + lq

    def reverse_optimum_std(self, t: Step, t_prev: Step | None = None,
                            device: torch.device | str = "cpu") -> torch.Tensor:
        """Posterior standard deviation ``lambda sqrt((1 - A^2)(1 - C^2)/(1 - B^2))``
        (variance clamped at ``1e-20 dt``)."""
        device = torch.device(device)
        _, _, _, inc, dt = self._posterior_coefs(t, t_prev, device)
        a2 = torch.exp(-2 * inc * dt)
        b2 = torch.exp(-2 * self._theta_bar(t, device) * dt)
        c2 = torch.exp(-2 * self._prev_theta_bar(t, t_prev, device) * dt)
        var = (1 - a2) * (1 - c2) / (1 - b2)
        return torch.clamp(var, min=1e-20 * dt).sqrt() * self.max_sigma

    # -- reverse SDE / ODE -------------------------------------------------------------------

    def reverse_sde_mean(self, x_t: torch.Tensor, score: torch.Tensor, lq: torch.Tensor, t: Step,
                         t_prev: Step | None = None) -> torch.Tensor:
        """Deterministic part of an Euler-Maruyama reverse step (the official training prediction):
        ``x - (theta_t (mu - x) - sigma_t^2 score) dt``."""
        return x_t - self._drift(x_t, score, lq, t, t_prev, ode=False)

    def _drift(self, x: torch.Tensor, score: torch.Tensor, lq: torch.Tensor, t: Step,
               t_prev: Step | None, ode: bool) -> torch.Tensor:
        sched = self._sched(x.device)
        inc = self._increment(t, t_prev, x.device)
        adjacent = t_prev is None or (not isinstance(t, torch.Tensor) and int(t_prev) == int(t) - 1)
        sigma2 = self._at(sched.sigmas, t, x.device) ** 2 if adjacent else 2 * self.max_sigma ** 2 * inc
        if ode:
            sigma2 = 0.5 * sigma2
        return (inc * (lq - x) - sigma2 * score) * sched.dt

    def _diffusion_std(self, t: Step, t_prev: Step | None, device: torch.device) -> torch.Tensor:
        sched = self._sched(device)
        adjacent = t_prev is None or int(t_prev) == int(t) - 1
        if adjacent:
            return self._at(sched.sigmas, t, device) * sched.dt.sqrt()
        return (2 * self.max_sigma ** 2 * self._increment(t, t_prev, device) * sched.dt).sqrt()

    # -- sampling ----------------------------------------------------------------------------

    def steps_grid(self, num_steps: int | None = None) -> list[int]:
        """Descending integer steps ``T, ..., 1`` (all of them by default), or ``num_steps`` of them
        evenly spaced from ``T`` to ``1``."""
        if num_steps is None or num_steps >= self.T:
            return list(range(self.T, 0, -1))
        if num_steps < 1:
            raise ConfigError(f"steps={num_steps} must be at least 1.")
        values = torch.linspace(self.T, 1, num_steps, dtype=torch.float64).round().long().tolist()
        return sorted(set(values), reverse=True)

    def solver(self, steps: int | None = None) -> IRSDESolver:
        """A fresh run of ``steps`` network evaluations (default all ``T``) using :attr:`config` ``.mode``."""
        return IRSDESolver(self, self.steps_grid(steps))

    def timesteps(self, steps: int | None = None) -> tuple[float, ...]:
        """The network evaluation times of a run with ``steps`` evaluations (no solver built)."""
        return tuple(float(t) for t in self.steps_grid(steps))

    def run_coefficients(self, grid: list[int]) -> list[tuple[float, float, float]]:
        """``(c1, c2, c3)`` of each step of a run over ``grid`` (:class:`IRSDESolver`), computed once
        per grid: the sampler's settings never change."""
        key = tuple(grid)
        if key not in self._coefficients:
            self._coefficients[key] = [self._step_coefficients(t, grid[k + 1] if k + 1 < len(grid) else 0)
                                       for k, t in enumerate(grid)]
        return self._coefficients[key]

    def _step_coefficients(self, t: int, t_prev: int) -> tuple[float, float, float]:
        """``(c1, c2, c3)`` of the step from ``t`` to ``t_prev``, found by applying the step rule to
        basis inputs (``x - lq``, ``eps`` and ``z`` set to 1 one at a time), in float64."""
        zero, one = torch.zeros(1, 1, 1, 1, dtype=torch.float64), torch.ones(1, 1, 1, 1, dtype=torch.float64)
        mode = self.config.mode

        def apply(x: torch.Tensor, eps: torch.Tensor, z: torch.Tensor) -> float:
            noise = None if mode == "ode" else z
            return float(self.step(eps, t, x, zero, t_prev=t_prev, noise=noise).prev_sample)

        c1 = apply(one, zero, zero)
        c2 = apply(zero, one, zero)
        c3 = 0.0 if mode == "ode" else apply(zero, zero, one)
        return c1, c2, c3

    def noise_state(self, lq: torch.Tensor, generator: torch.Generator | None = None,
                    noise: torch.Tensor | None = None) -> torch.Tensor:
        """``x_T = lq + lambda * z`` (the official start state; not a fresh prior sample)."""
        if noise is None:
            noise = randn_like(lq, generator)
        return lq + noise * self.max_sigma

    def step(self, model_output: torch.Tensor, t: int, x_t: torch.Tensor, lq: torch.Tensor, *,
             mode: Literal["posterior", "sde", "ode"] | None = None,
             generator: torch.Generator | None = None, t_prev: int | None = None,
             noise: torch.Tensor | None = None) -> SamplerOutput:
        """One reverse step from ``t`` to ``t_prev`` (default ``t - 1``).

        Args:
            model_output: ``(B, C, H, W)`` predicted noise at ``(x_t, t)``.
            t: current step in ``1..T``.
            x_t: ``(B, C, H, W)`` current state; lq: the LQ image (SDE mean).
            mode: ``"posterior"``, ``"sde"`` or ``"ode"`` (default: ``config.mode``).
            generator: source of the step's noise (``posterior``/``sde``).
            t_prev: target step in ``0..t-1``.
            noise: explicit standard-normal noise instead of drawing it.
        """
        mode = mode or self.config.mode
        if mode not in MODES:
            raise ConfigError(f"mode={mode!r} must be one of {', '.join(MODES)}.")
        t = int(t)
        if t_prev is not None and not 0 <= int(t_prev) < t:
            raise ConfigError(f"t_prev={t_prev} must lie in [0, {t - 1}] for t={t}.")
        clean = self.pred_clean(x_t, model_output, lq, t)
        if mode == "posterior":
            mean = self.reverse_optimum_step(x_t, clean, lq, t, t_prev)
            std = self.reverse_optimum_std(t, t_prev, x_t.device)
            z = randn_like(x_t, generator) if noise is None else noise
            return SamplerOutput(mean + std * z, clean)
        score = self.score_from_noise(model_output, t)
        if mode == "ode":
            return SamplerOutput(x_t - self._drift(x_t, score, lq, t, t_prev, ode=True), clean)
        z = randn_like(x_t, generator) if noise is None else noise
        prev = x_t - self._drift(x_t, score, lq, t, t_prev, ode=False) - self._diffusion_std(t, t_prev, x_t.device) * z
        return SamplerOutput(prev, clean)

    # -- training ----------------------------------------------------------------------------

    def training_loss(self, model_output: torch.Tensor, x_t: torch.Tensor, x0: torch.Tensor,
                      lq: torch.Tensor, t: Step, *, objective: Literal["ml", "noise", "clean"] = "ml",
                      loss: Literal["l1", "l2"] = "l1") -> torch.Tensor:
        """Training loss of a denoiser.

        * ``objective="ml"`` (official): the reverse-SDE step mean implied by the noise prediction
          ``model_output`` against the optimal posterior mean ``reverse_optimum_step(x_t, x0, t)``.
        * ``objective="noise"``: the noise prediction ``model_output`` against the true noise in ``x_t``.
        * ``objective="clean"``: the clean-image prediction ``model_output`` (a network with
          ``prediction = "clean"``) against ``x0``.

        Returns:
            Scalar mean ``l1``/``l2`` loss.
        """
        if objective == "ml":
            pred = self.reverse_sde_mean(x_t, self.score_from_noise(model_output, t), lq, t)
            target = self.reverse_optimum_step(x_t, x0, lq, t)
        elif objective == "noise":
            pred, target = model_output, self.noise_from_state(x_t, x0, lq, t)
        elif objective == "clean":
            pred, target = model_output, x0
        else:
            raise ConfigError(f"objective={objective!r} must be 'ml', 'noise' or 'clean'.")
        if loss == "l1":
            return F.l1_loss(pred, target)
        if loss == "l2":
            return F.mse_loss(pred, target)
        raise ConfigError(f"loss={loss!r} must be 'l1' or 'l2'.")


class IRSDESolver(Solver):
    """One IR-SDE run over integer steps: ``t = grid[k]`` moves to ``grid[k + 1]`` (0 after the last).

    Stateless apart from the position in the grid; each network output is used once. Every rule
    is affine in the state, the network output and the LQ image, so a step is one fused update
    ``x' = lq + c1 (x - lq) + c2 eps + c3 z`` (a handful of elementwise kernels per step instead
    of about twenty) whose scalar coefficients come from :meth:`IRSDESampler.step`'s formulas,
    once per grid (:meth:`IRSDESampler.run_coefficients`); equal to the step-by-step formulas to
    float32 rounding, tested.
    """

    def __init__(self, sampler: IRSDESampler, grid: list[int]):
        self.sampler = sampler
        self.grid = grid
        self.timesteps = tuple(float(t) for t in grid)
        self._k = 0
        self.coefficients = sampler.run_coefficients(grid)

    def step(self, model_output: torch.Tensor, x: torch.Tensor, lq: torch.Tensor, draw: Draw) -> torch.Tensor:
        k = self._k
        if k >= len(self.grid):
            raise ConfigError(f"This IR-SDE run has {len(self.grid)} steps; make a new solver for another run.")
        self._k += 1
        c1, c2, c3 = self.coefficients[k]
        out = torch.sub(x, lq).mul_(c1).add_(model_output, alpha=c2).add_(lq)
        if self.sampler.config.mode != "ode":
            out.add_(draw(x), alpha=c3)
        return out
