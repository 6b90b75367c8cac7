"""Schedules of the MR Sampler: the mean-reverting SDE's alpha/sigma/lambda and the time grids.

In the notation of the MRS paper, with ``mu`` the LQ image and ``lambda`` (``lam`` here) the
stationary standard deviation, the forward marginal at (float) time ``t`` is

    x_t = mu + alpha_t (x_0 - mu) + sigma_t eps,   alpha_t = exp(-theta_bar_t dt),
    sigma_t = lam sqrt(1 - alpha_t^2),              lambda_t = log(alpha_t / sigma_t).

The MRS code defines ``theta_bar_t = sum_{i<=t} theta_i`` *without* subtracting ``theta_0`` (the
IR-SDE code subtracts it), and picks ``dt`` so that ``alpha_T = eps``. Hence ``alpha_0 < 1`` and
``lambda_0`` is finite, which the solvers need for their final step to ``t = 0``. Between integer
steps every quantity is interpolated linearly in ``t`` (:func:`interpolate`), as in the MRS code.

``keep_theta_0=False`` builds the SDE the IR-SDE / DA-CLIP networks were trained with instead
(``theta_bar_t = sum_{i<=t} theta_i - theta_0``, ``dt`` from ``alpha_T = eps`` on that sum, as
:mod:`daclip_kit.samplers.irsde.schedule`): ``alpha_0 = 1``, ``sigma_0 = 0`` and ``lambda_0 = +inf``.
There ``lambda`` between keypoints is ``log(alpha) - log(sigma)`` of the interpolated ``alpha`` and
``sigma`` (a line through ``+inf`` is undefined), and the solver's last step to ``t = 0`` returns
the data prediction, the exact limit of every MRS update at ``sigma = 0``.

Everything is float32, computed in the official order of operations.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from ..irsde.schedule import theta_schedule


def interpolate(x: torch.Tensor, xp: torch.Tensor, yp: torch.Tensor) -> torch.Tensor:
    """Piecewise-linear ``y(x)`` through the keypoints ``(xp, yp)``, extrapolated linearly.

    Points outside ``[xp[0], xp[-1]]`` use the first or last segment's line (not a constant), so
    the function is defined everywhere, like DPM-Solver's ``interpolate_fn``. A point equal to a
    keypoint gets that keypoint's value exactly.

    Args:
        x: ``(N,)`` query points.
        xp: ``(K,)`` strictly increasing keypoints, ``K >= 2``.
        yp: ``(K,)`` values at the keypoints.

    Returns:
        ``(N,)`` interpolated values.
    """
    if xp.ndim != 1 or xp.shape != yp.shape or xp.numel() < 2:
        raise ValueError(f"xp and yp must be 1-D with the same length >= 2, got {tuple(xp.shape)} "
                         f"and {tuple(yp.shape)}.")
    # segment j spans [xp[j], xp[j+1]]: the last keypoint not above x, kept inside [0, K-2]
    seg = (torch.searchsorted(xp, x.contiguous(), right=True) - 1).clamp(0, xp.numel() - 2)
    x0, x1 = xp[seg], xp[seg + 1]
    y0, y1 = yp[seg], yp[seg + 1]
    return y0 + (x - x0) * (y1 - y0) / (x1 - x0)


@dataclass(frozen=True)
class MRSchedule:
    """The mean-reverting SDE of the MRS code on the integer steps ``0..T`` (float32, ``T + 1`` entries).

    Attributes:
        thetas: mean-reversion rates ``theta_t``.
        diffusion: diffusion coefficients ``g_t = sqrt(2 lam^2 theta_t)`` (``sde.sigmas`` in the
            official code; not the marginal standard deviation).
        alpha_array: ``alpha_t = exp(-theta_bar_t dt)`` with ``theta_bar_t = cumsum(thetas)[t]``.
        sigma_array: marginal standard deviations ``sigma_t = lam sqrt(1 - exp(-2 theta_bar_t dt))``.
        lambda_array: half log-SNR ``log(alpha_t) - log(sigma_t)`` (decreasing in ``t``).
        t_array: the integer times ``0..T`` as floats.
        dt: 0-dim step size with ``alpha_T = eps``.
        lam: stationary standard deviation in [0, 1] units.
    """

    thetas: torch.Tensor
    diffusion: torch.Tensor
    alpha_array: torch.Tensor
    sigma_array: torch.Tensor
    lambda_array: torch.Tensor
    t_array: torch.Tensor
    dt: torch.Tensor
    lam: float

    @property
    def T(self) -> int:
        """Number of steps."""
        return self.t_array.numel() - 1

    @property
    def ends_clean(self) -> bool:
        """Whether ``sigma_0 = 0`` (the training SDE's schedule, ``keep_theta_0=False``)."""
        return bool(self.sigma_array[0] == 0)

    def at(self, name: str, times: torch.Tensor) -> torch.Tensor:
        """``name`` (``alpha_array``, ``sigma_array``, ``lambda_array``, ``thetas``, ``diffusion``)
        interpolated at float ``times``; with :attr:`ends_clean`, ``lambda`` is computed from the
        interpolated ``alpha`` and ``sigma`` (``+inf`` at ``sigma = 0``)."""
        if name == "lambda_array" and self.ends_clean:
            return torch.log(self.at("alpha_array", times)) - torch.log(self.at("sigma_array", times))
        values = getattr(self, name)
        return interpolate(times.to(values.dtype), self.t_array, values)


def make_mr_schedule(lam: float, T: int, schedule: str, eps: float, *, keep_theta_0: bool = True) -> MRSchedule:
    """Build the MRS schedule (CPU, float32).

    Args:
        lam: stationary standard deviation in [0, 1] units (``max_sigma / 255``).
        T: number of steps.
        schedule: theta schedule name (``cosine``, ``linear``, ``constant``).
        eps: value of ``alpha_T``.
        keep_theta_0: ``True`` (the MRS code): ``theta_bar`` keeps ``theta_0``; ``False``: the
            training SDE's ``theta_bar`` without it (``alpha_0 = 1``).
    """
    thetas = theta_schedule(schedule, T)
    diffusion = torch.sqrt(lam ** 2 * 2 * thetas)
    theta_bar = torch.cumsum(thetas, dim=0)  # the MRS code keeps theta_0
    if not keep_theta_0:
        theta_bar = theta_bar - thetas[0]
    dt = -1 / theta_bar[-1] * math.log(eps)
    alpha = torch.exp(-theta_bar * dt)
    sigma = torch.sqrt(lam ** 2 * (1 - torch.exp(-2 * theta_bar * dt)))
    lambdas = torch.log(alpha) - torch.log(sigma)
    t_array = torch.linspace(0, T, T + 1, dtype=torch.float32)
    return MRSchedule(thetas, diffusion, alpha, sigma, lambdas, t_array, dt, lam)


# -- time grids -------------------------------------------------------------------------------------

def max_start_time(sched: MRSchedule, lambda_min: float) -> int:
    """The largest integer step whose ``lambda_t`` is not below ``lambda_min`` (``T`` when none is)."""
    below = int((sched.lambda_array < lambda_min).sum())  # lambda decreases in t: these are the last steps
    return sched.T - below


def _karras(start: float, end: float, n: int, rho: float) -> torch.Tensor:
    """``n`` values from ``start`` to ``end`` evenly spaced in ``value ** (1 / rho)`` (float32)."""
    ramp = torch.linspace(0, 1, n, dtype=torch.float32)
    a, b = start ** (1 / rho), end ** (1 / rho)
    return (a + ramp * (b - a)) ** rho


def time_grid(sched: MRSchedule, steps: int, time_schedule: str, *, lambda_min: float = -math.inf,
              timestep_offset: int = 0, rho: float = 7.0) -> torch.Tensor:
    """The float32 time grid ``t_0 > t_1 > ... > t_M`` of a run (``M`` intervals).

    The network is evaluated at ``t_0 .. t_{M-1}`` and the run ends at ``t_M``. ``M`` equals
    ``steps`` except for ``trailing``, whose grid is whatever ``arange(start, 0, -T / (steps + 1))``
    gives (it ends above 0 and has fewer intervals when ``lambda_min`` cuts the start).

    * ``linspace``: ``steps + 1`` evenly spaced times from the cut ``t_max`` down to 0.
    * ``leading``: multiples of ``t_max // (steps + 1)`` from ``steps`` of them down to 0, plus
      ``timestep_offset``.
    * ``trailing``: from ``t_max`` down in strides of ``T / (steps + 1)``, stopping above 0.
    * ``karras-n``: the noise-to-signal ratio ``sigma_t / alpha_t`` Karras-spaced (``rho``) between
      its extremes over ``0..T``, mapped back to times (ends at ~0; ignores ``lambda_min``).
    * ``karras-t``: times Karras-spaced from ``T`` to 1 (ends at 1; ignores ``lambda_min``).
    * ``linear-lambda``: ``lambda_t`` evenly spaced from ``max(min lambda, lambda_min)`` to its
      maximum, mapped back to times (from the cut down to 0).

    Here ``t_max`` is :func:`max_start_time` of ``lambda_min``.
    """
    n = steps + 1
    t_max = max_start_time(sched, lambda_min)
    if time_schedule == "linspace":
        return torch.linspace(0, t_max, n, dtype=torch.float32).flip(0)
    if time_schedule == "leading":
        stride = t_max // n
        return (torch.arange(0, n, dtype=torch.float32) * stride).flip(0) + timestep_offset
    if time_schedule == "trailing":
        return torch.arange(t_max, 0, -(sched.T / n), dtype=torch.float32)
    if time_schedule == "karras-n":
        ratio = sched.sigma_array / sched.alpha_array  # increasing in t
        ratios = _karras(ratio.max().item(), ratio.min().item(), n, rho)
        return interpolate(ratios, ratio, sched.t_array)
    if time_schedule == "karras-t":
        return _karras(float(sched.T), 1.0, n, rho)
    if time_schedule == "linear-lambda":
        low = max(sched.lambda_array.min().item(), lambda_min)
        levels = torch.linspace(low, sched.lambda_array.max().item(), n, dtype=torch.float32)
        return interpolate(levels, sched.lambda_array.flip(0), sched.t_array.flip(0))
    raise ValueError(f"Unknown time_schedule {time_schedule!r}.")
