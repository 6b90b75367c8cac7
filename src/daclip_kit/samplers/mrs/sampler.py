"""The MR Sampler (MRS; Li et al., "MRS: A Fast Sampler for Mean Reverting Diffusion based on ODE
and SDE Solvers", ICLR 2025) for noise-predicting mean-reverting networks such as DA-CLIP's.

Write ``y = x - mu`` for the distance to the SDE mean (the LQ image). The forward marginal is
``y_t = alpha_t y_0 + sigma_t eps`` (:mod:`.schedule`), so the reverse-time SDE and its
probability-flow ODE are linear in ``y`` apart from the network term. MRS integrates the linear
part exactly and the network term with an exponential integrator in the half log-SNR
``lambda = log(alpha / sigma)``, like DPM-Solver(++) does for VP diffusion. With
``h = lambda_t - lambda_s`` for a step from ``s`` to ``t < s``, data prediction ``x0`` and noise
prediction ``e`` (first order; higher orders add finite differences of earlier predictions):

* ODE, data:  ``y_t = (sigma_t / sigma_s) y_s + alpha_t (1 - e^{-h}) (x0 - mu)``
* ODE, noise: ``y_t = (alpha_t / alpha_s) y_s - sigma_t (e^h - 1) e``
* SDE, data:  ``y_t = (sigma_t / sigma_s) e^{-h} y_s + alpha_t (1 - e^{-2h}) (x0 - mu)
  + sigma_t sqrt(1 - e^{-2h}) z``
* SDE, noise: ``y_t = (alpha_t / alpha_s) y_s - 2 sigma_t (e^h - 1) e + sigma_t sqrt(e^{2h} - 1) z``

With the exact clean image the data-prediction ODE step is exact and the data-prediction SDE step
samples the exact Gaussian posterior ``q(x_t | x_s, x_0)``.

The update formulas, the multistep history, the warm-up with lower orders, the order reduction
of runs with fewer than 10 steps and every time grid follow the official ``MRSampler``
(grrrute/mr-sampler, ``universal-image-restoration/utils/sampler.py``), in float32 and in its order
of operations; the solver reproduces its recorded runs to about 1e-7. Deliberate differences:

* ``denoise_last`` with ``parameterization="noise"`` returns the data prediction (the official
  code returns the converted network output, i.e. a noise image).
* ``thresholding`` needs ``parameterization="data"`` (the official code would clip noise).
* runs with fewer steps than ``order`` use the orders the history allows (the official loop
  re-steps from the final state there); a grid that is not strictly decreasing (e.g. ``leading``
  with more steps than ``T``) is an error instead of NaNs.
"""

from __future__ import annotations

import math

import torch

from ...core.sampler import Draw, SamplerOutput, Solver, randn_like
from ...errors import ConfigError, ShapeError
from .base import MeanRevertingSampler
from .config import MRSConfig
from .schedule import MRSchedule, time_grid

DEFAULT_STEPS = 10


def step_orders(num_intervals: int, order: int) -> list[int]:
    """Solver order of each of the ``M = num_intervals`` steps of a run (official rule).

    Step ``i`` (1-based) uses order ``i`` while the history is shorter than ``order`` (warm-up);
    then ``order``, except that runs with ``M < 10`` use ``min(order, M - i)`` for the steps before
    the last; the last step uses ``order`` again. No step uses more outputs than it has seen.
    """
    orders = []
    for i in range(1, num_intervals + 1):
        if i < order:
            o = i
        elif i < num_intervals and num_intervals < 10:
            o = min(order, num_intervals - i)
        else:
            o = order
        orders.append(min(o, i))
    return orders


def dynamic_threshold(x0: torch.Tensor, ratio: float, max_value: float) -> torch.Tensor:
    """Imagen's dynamic thresholding, per image of the batch.

    ``s`` is the ``ratio`` quantile (linear interpolation) of ``|x0|`` over each image, clamped to
    ``[1, max_value]``; the image is clipped to ``[-s, s]`` and divided by ``s``.
    """
    dtype = x0.dtype
    flat = x0.reshape(x0.shape[0], -1)
    if flat.dtype not in (torch.float32, torch.float64):
        flat = flat.float()
    n = flat.shape[1]
    ordered = flat.abs().sort(dim=1).values
    pos = ratio * (n - 1)
    lo = math.floor(pos)
    hi = min(lo + 1, n - 1)
    s = ordered[:, lo] + (pos - lo) * (ordered[:, hi] - ordered[:, lo])
    s = s.clamp(min=1, max=max_value).unsqueeze(1)
    out = torch.maximum(torch.minimum(flat, s), -s) / s
    return out.reshape(x0.shape).to(dtype)


class MRSampler(MeanRevertingSampler):
    """MR Sampler: a stateless mean-reverting diffusion sampler of 5-20 network evaluations.

    Args:
        config: :class:`MRSConfig` (default: data-prediction ODE, order 2, ``lambda_min = -5``,
            ``linspace`` grid, noise-predicting network, 10 steps).

    Example:
        >>> import daclip_kit, torch
        >>> mrs = daclip_kit.create_sampler("mrs")
        >>> mrs.timesteps(5)
        (100.0, 80.0, 60.0, 40.0, 20.0)
        >>> lq = torch.rand(1, 3, 8, 8)
        >>> solver = mrs.solver(5)                     # one run; holds the multistep history
        >>> x = mrs.noise_state(lq, generator=torch.Generator().manual_seed(0))
        >>> for t in solver.timesteps:
        ...     eps = torch.zeros_like(x)              # the network's noise prediction at (x, t)
        ...     x = solver.step(eps, x, lq, draw=torch.randn_like)
        >>> x.shape
        torch.Size([1, 3, 8, 8])
    """

    config: MRSConfig

    def __init__(self, config: MRSConfig | None = None):
        super().__init__(MRSConfig() if config is None else config, DEFAULT_STEPS)

    def __repr__(self) -> str:
        c = self.config
        return (f"MRSampler(solver_type={c.solver_type!r}, parameterization={c.parameterization!r}, "
                f"order={c.order}, fit_target={c.fit_target!r}, time_schedule={c.time_schedule!r}, "
                f"steps={self.default_steps}, T={c.T})")

    # -- grids ----------------------------------------------------------------------------------

    def time_grid(self, steps: int | None = None) -> torch.Tensor:
        """The float32 grid ``t_0 > ... > t_M`` of a run; the network is evaluated at all but the
        last entry (see :func:`~.schedule.time_grid`)."""
        c = self.config
        steps = self.run_steps(steps)
        grid = time_grid(self.schedule, steps, c.time_schedule, lambda_min=c.lambda_min,
                         timestep_offset=c.timestep_offset, rho=c.rho)
        if grid.numel() < 2 or not bool((grid[1:] < grid[:-1]).all()):
            raise ConfigError(f"time_schedule={c.time_schedule!r} with steps={steps} gives the grid "
                              f"{[round(v, 4) for v in grid.tolist()]}, which is not strictly decreasing "
                              f"(too many steps for T={c.T} and lambda_min={c.lambda_min}); use fewer "
                              "steps or another time_schedule.")
        return grid

    def solver(self, steps: int | None = None) -> MRSSolver:
        """A fresh run of ``steps`` network evaluations (default :attr:`default_steps`).

        ``trailing`` grids may have a different number of evaluations; ``len(solver.timesteps)``
        is the true count.
        """
        return MRSSolver(self, self.time_grid(steps))


    # -- network output conversions ---------------------------------------------------------------

    def data_prediction(self, model_output: torch.Tensor, x: torch.Tensor, lq: torch.Tensor,
                        alpha: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
        """Clean image implied by ``model_output`` (of kind ``fit_target``) at a time with
        ``alpha``, ``sigma``."""
        target = self.config.fit_target
        if target == "noise":
            x0 = (x - sigma * model_output) / alpha
            return x0 - (1 - alpha) / alpha * lq
        if target == "data":
            return model_output
        return alpha * x - sigma / self.max_sigma * model_output + (1 - alpha) * lq  # velocity

    def noise_prediction(self, model_output: torch.Tensor, x: torch.Tensor, lq: torch.Tensor,
                         alpha: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
        """Noise implied by ``model_output`` (of kind ``fit_target``)."""
        target = self.config.fit_target
        if target == "noise":
            return model_output
        if target == "data":
            return (x - lq - (model_output - lq) * alpha) / sigma
        lam = self.max_sigma  # velocity
        return (model_output * alpha + (x - lq) * sigma / lam) / lam

    def convert(self, model_output: torch.Tensor, x: torch.Tensor, lq: torch.Tensor,
                alpha: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
        """The quantity the solver integrates (``parameterization``), thresholded if configured."""
        c = self.config
        if c.parameterization == "data":
            out = self.data_prediction(model_output, x, lq, alpha, sigma)
        else:
            out = self.noise_prediction(model_output, x, lq, alpha, sigma)
        if c.thresholding:
            out = dynamic_threshold(out, c.threshold_ratio, c.threshold_max)
        return out

    # -- one update -------------------------------------------------------------------------------

    def update(self, x: torch.Tensor, lq: torch.Tensor, coefs: StepCoefs, history: list[torch.Tensor],
               order: int, noise: torch.Tensor | None) -> torch.Tensor:
        """Move ``x`` from ``t_{i-1}`` to ``t_i`` with the converted outputs ``history`` (newest
        first) at ``t_{i-1}, t_{i-2}, ...``; ``noise`` is the standard normal draw of an SDE step."""
        c = self.config
        a, a_prev, s, s_prev, h = coefs.a, coefs.a_prev, coefs.s, coefs.s_prev, coefs.h
        q0 = history[0]
        if order == 2:
            assert coefs.h_prev is not None  # a second-order step has an earlier interval
            d1 = (q0 - history[1]) / (coefs.h_prev / h)
        elif order == 3:
            assert coefs.h_prev is not None and coefs.h_prev2 is not None  # and a third-order one two
            r0, r1 = coefs.h_prev / h, coefs.h_prev2 / h
            d1_0 = (q0 - history[1]) / r0
            d1_1 = (history[1] - history[2]) / r1
            d1 = d1_0 + (d1_0 - d1_1) * r0 / (r0 + r1)
            d2 = (d1_0 - d1_1) / (r0 + r1)
        data = c.parameterization == "data"
        if c.solver_type == "ode":
            if data:
                phi1 = torch.exp(-h) - 1
                total = phi1 * q0
                if order >= 2:
                    phi2 = phi1 / h + 1
                    total = total - phi2 * d1
                    if order == 3:
                        total = total + (phi2 / h - 0.5) * d2
                ratio = s / s_prev
                out = ratio * x - a * total
                return out + lq * (1 - ratio + ratio * a_prev - a)
            phi1 = torch.exp(h) - 1
            total = phi1 * q0
            if order >= 2:
                phi2 = phi1 / h - 1
                total = total + phi2 * d1
                if order == 3:
                    total = total + (phi2 / h - 0.5) * d2
            out = a / a_prev * x - s * total
            return out + lq * (1 - a / a_prev)
        # reverse-time SDE (order 1 or 2)
        assert noise is not None  # every SDE step is given its draw
        if data:
            phi1 = 1 - torch.exp(-2 * h)
            out = s / s_prev * torch.exp(-h) * x + a * phi1 * q0
            if order == 2:
                out = out + a * (1 - phi1 / 2 / h) * d1
            out = out + s * torch.sqrt(phi1) * noise
            return out + lq * (1 - a / a_prev * torch.exp(-2 * h) - a * phi1)
        phi1 = torch.exp(h) - 1
        out = a / a_prev * x - 2 * s * phi1 * q0
        if order == 2:
            out = out - 2 * s * (phi1 / h - 1) * d1
        out = out + s * torch.sqrt(torch.exp(2 * h) - 1) * noise
        return out + lq * (1 - a / a_prev)

    def step(self, model_output: torch.Tensor, t: float, x_t: torch.Tensor, lq: torch.Tensor, *,
             t_prev: float | None = None, generator: torch.Generator | None = None,
             noise: torch.Tensor | None = None) -> SamplerOutput:
        """One first-order MRS step from time ``t`` to ``t_prev`` (no history; for single steps
        and tests; runs use :meth:`solver`).

        Args:
            model_output: ``(B, C, H, W)`` network output at ``(x_t, t)`` (kind ``fit_target``).
            t: current (float) time.
            x_t: the state at ``t``.
            lq: the LQ image (SDE mean).
            t_prev: target time below ``t``; default the next time of the default run's grid
                (or its end).
            generator: draws the SDE step's noise.
            noise: the SDE step's noise (overrides ``generator``).
        """
        t = float(t)
        if t_prev is None:
            grid = self.time_grid().tolist()
            t_prev = next((v for v in grid if v < t), min(grid[-1], 0.0))
        t_prev = float(t_prev)
        if not t_prev < t:
            raise ConfigError(f"t_prev={t_prev} must be below t={t}.")
        coefs = StepCoefs.build(self.schedule, torch.tensor([t, t_prev], dtype=torch.float32), 1, x_t.device)
        out = self.convert(model_output, x_t, lq, coefs.a_prev, coefs.s_prev)
        clean = out if self.config.parameterization == "data" else self.data_prediction(
            model_output, x_t, lq, coefs.a_prev, coefs.s_prev)
        if bool(coefs.s == 0):  # the training schedule's t = 0: every update's limit is the data prediction
            return SamplerOutput(clean if self.config.parameterization == "noise" else out, clean)
        z = None
        if self.config.solver_type == "sde":
            z = randn_like(x_t, generator) if noise is None else noise
        return SamplerOutput(self.update(x_t, lq, coefs, [out], 1, z), clean)


class StepCoefs:
    """Schedule values of step ``i`` (grid index ``i - 1`` to ``i``) as 0-dim float32 tensors.

    Attributes:
        a, s: ``alpha``, ``sigma`` at the target time ``t_i``.
        a_prev, s_prev: at the start ``t_{i-1}`` (where the network was evaluated).
        h, h_prev, h_prev2: ``lambda`` increments of this step and of the one or two before
            (``None`` where the grid has no earlier point).
    """

    __slots__ = ("a", "a_prev", "s", "s_prev", "h", "h_prev", "h_prev2")
    a: torch.Tensor
    a_prev: torch.Tensor
    s: torch.Tensor
    s_prev: torch.Tensor
    h: torch.Tensor
    h_prev: torch.Tensor | None
    h_prev2: torch.Tensor | None

    @classmethod
    def build(cls, sched: MRSchedule, times: torch.Tensor, i: int, device: torch.device,
              arrays: tuple[torch.Tensor, torch.Tensor, torch.Tensor] | None = None) -> StepCoefs:
        """Coefficients of step ``i`` of the grid ``times`` (``arrays``: its precomputed
        ``alpha``, ``sigma``, ``lambda`` on ``device``)."""
        if arrays is None:
            arrays = _grid_arrays(sched, times, device)
        alphas, sigmas, lambdas = arrays
        c = cls()
        c.a, c.a_prev = alphas[i], alphas[i - 1]
        c.s, c.s_prev = sigmas[i], sigmas[i - 1]
        c.h = lambdas[i] - lambdas[i - 1]
        c.h_prev = lambdas[i - 1] - lambdas[i - 2] if i >= 2 else None
        c.h_prev2 = lambdas[i - 2] - lambdas[i - 3] if i >= 3 else None
        return c


def _grid_arrays(sched: MRSchedule, times: torch.Tensor, device: torch.device):
    """``alpha``, ``sigma`` and ``lambda`` interpolated on ``times`` (float32, on ``device``)."""
    return tuple(sched.at(name, times).to(device) for name in ("alpha_array", "sigma_array", "lambda_array"))


class MRSSolver(Solver):
    """One MRS run over the grid ``t_0 > ... > t_M``: the ``k``-th call moves ``t_k`` to ``t_{k+1}``.

    Holds the run's multistep history (the converted outputs of the last ``order`` evaluations,
    never the network's output tensor itself, which a CUDA graph rewrites on its next replay),
    so runs never share state; with ``denoise_last`` the final call returns the data prediction.

    Attributes:
        grid: ``(M + 1,)`` float32 times; ``timesteps`` are its first ``M`` entries as floats.
        alphas, sigmas, lambdas: the schedule interpolated on ``grid`` (float32, CPU).
        orders: the solver order of each step (the last is unused with ``denoise_last``).
    """

    def __init__(self, sampler: MRSampler, grid: torch.Tensor):
        self.sampler = sampler
        self.grid = grid
        self.timesteps = tuple(grid[:-1].tolist())
        self.alphas, self.sigmas, self.lambdas = _grid_arrays(sampler.schedule, grid, torch.device("cpu"))
        self.orders = step_orders(len(self.timesteps), sampler.config.order)
        #: the grid ends where sigma = 0 (training schedule at t = 0): the last call returns the data prediction
        self.clean_end = bool(self.sigmas[-1] == 0)
        self._history: list[torch.Tensor] = []
        self._arrays: dict[torch.device, tuple[torch.Tensor, ...]] = {}
        self._k = 0

    def _on(self, device: torch.device):
        if device not in self._arrays:
            self._arrays[device] = tuple(v.to(device) for v in (self.alphas, self.sigmas, self.lambdas))
        return self._arrays[device]

    def step(self, model_output: torch.Tensor, x: torch.Tensor, lq: torch.Tensor, draw: Draw) -> torch.Tensor:
        k = self._k
        if k >= len(self.timesteps):
            raise ConfigError(f"This MRS run has {len(self.timesteps)} steps; make a new solver for another run.")
        if model_output.shape != x.shape:
            raise ShapeError(f"model output {tuple(model_output.shape)} does not match the state {tuple(x.shape)}.")
        self._k += 1
        sampler, c = self.sampler, self.sampler.config
        i = k + 1
        arrays = self._on(x.device)
        coefs = StepCoefs.build(sampler.schedule, self.grid, i, x.device, arrays)
        out = sampler.convert(model_output, x, lq, coefs.a_prev, coefs.s_prev)
        if out is model_output:  # kept for later steps: a CUDA graph's next replay rewrites its output buffer
            out = out.clone()
        self._history = [out, *self._history][: c.order]
        if (c.denoise_last or self.clean_end) and i == len(self.timesteps):
            if c.parameterization == "data":
                return out
            return sampler.data_prediction(model_output, x, lq, coefs.a_prev, coefs.s_prev)
        noise = draw(x) if c.solver_type == "sde" else None
        return sampler.update(x, lq, coefs, self._history, self.orders[k], noise)
