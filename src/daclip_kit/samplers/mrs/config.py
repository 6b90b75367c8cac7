"""Config of the MR Sampler (torch-free).

Field names are the official ones, so the ``sde:`` and ``sampler:`` sections of an MRS option file
(``options/mrsampler.yml``) can be passed unchanged:
``create_sampler("mrs", **opt["sde"], **opt["sampler"])``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import ClassVar, Literal

from ...errors import ConfigError

SOLVER_TYPES = ("ode", "sde")
PARAMETERIZATIONS = ("data", "noise")
FIT_TARGETS = ("noise", "data", "velocity")
TIME_SCHEDULES = ("linspace", "leading", "trailing", "karras-n", "karras-t", "linear-lambda")
THETA_SCHEDULES = ("cosine", "linear", "constant")
MAX_ORDER = {"ode": 3, "sde": 2}


def check_sde_fields(max_sigma: float, T: int, schedule: str, eps: float) -> None:
    """Validate the mean-reverting SDE settings shared by the ``mrs`` and ``heun`` configs."""
    if not max_sigma > 0:
        raise ConfigError(f"max_sigma={max_sigma} must be positive (e.g. 50 for 50/255; values >= 1 "
                          "are in 0-255 units).")
    if T < 1:
        raise ConfigError(f"T={T} must be at least 1 (the official models use 100).")
    if schedule not in THETA_SCHEDULES:
        raise ConfigError(f"schedule={schedule!r} must be one of {', '.join(THETA_SCHEDULES)} "
                          "(the official models use 'cosine').")
    if not 0 < eps < 1:
        raise ConfigError(f"eps={eps} must lie in (0, 1); the official value is 0.005.")


def check_algorithm(algorithm: str | None, expected: str) -> None:
    """Accept the ``sde.algorithm`` key of a pasted option file when it names this sampler."""
    if algorithm is None or algorithm == expected:
        return
    other = {"mrsampler": "mrs", "heun": "heun", "sde": "irsde (mode='sde')",
             "posterior": "irsde (mode='posterior')"}.get(algorithm)
    hint = f" It selects the {other} sampler: create that one instead." if other else ""
    raise ConfigError(f"algorithm={algorithm!r} does not describe this sampler; it must be "
                      f"{expected!r} or left out.{hint}")


@dataclass(frozen=True, kw_only=True)
class MRSDESettings:
    """The ``sde:`` section of an MRS option file, shared by the ``mrs`` and ``heun`` configs.

    Attributes:
        max_sigma: stationary noise level lambda; values >= 1 are in 0-255 units (divided by 255).
        T: number of steps of the discretised SDE the network was trained on.
        schedule: theta schedule: ``cosine``, ``linear`` or ``constant``.
        eps: ``exp(-theta_bar_T dt) = eps`` fixes ``dt`` (MRS convention: ``theta_0`` is kept in
            ``theta_bar``).
        algorithm: optional ``sde.algorithm`` key of a pasted option file; must name this sampler.
        num_sample_steps: default number of network evaluations (NFE) of a run.
    """

    #: The ``algorithm`` value of a pasted option file that selects this sampler.
    ALGORITHM: ClassVar[str] = ""

    max_sigma: float = 50.0
    T: int = 100
    schedule: Literal["cosine", "linear", "constant"] = "cosine"
    eps: float = 0.005
    algorithm: str | None = None
    num_sample_steps: int | None = None

    def check_sde(self, default_steps: str) -> None:
        """Validate the shared fields (``default_steps`` says what ``num_sample_steps=None`` means)."""
        check_sde_fields(self.max_sigma, self.T, self.schedule, self.eps)
        check_algorithm(self.algorithm, self.ALGORITHM)
        if self.num_sample_steps is not None and self.num_sample_steps < 1:
            raise ConfigError(f"num_sample_steps={self.num_sample_steps} must be at least 1 (or left "
                              f"out for {default_steps}).")

    @property
    def lam(self) -> float:
        """Stationary standard deviation lambda in [0, 1] image units."""
        return self.max_sigma / 255 if self.max_sigma >= 1 else self.max_sigma

    @property
    def keeps_theta_0(self) -> bool:
        """Whether the cumulative theta keeps ``theta_0`` (the MRS code's SDE)."""
        return True


@dataclass(frozen=True, kw_only=True)
class MRSConfig(MRSDESettings):
    """Settings of the MR Sampler and of the mean-reverting SDE it solves.

    Defaults are the MRS paper's recommended setting for the DA-CLIP universal model
    (``options/mrsampler.yml``): second-order data-prediction ODE solver, ``lambda_min = -5``,
    uniform time grid, a noise-predicting network.

    Attributes:
        max_sigma: stationary noise level lambda; values >= 1 are in 0-255 units (divided by
            255), smaller values are used as they are.
        T: number of steps of the discretised SDE the network was trained on.
        schedule: theta schedule: ``cosine`` (official), ``linear`` or ``constant``.
        eps: ``exp(-theta_bar_T dt) = eps`` fixes ``dt``. Unlike the IR-SDE sampler, the MRS
            schedule does not subtract ``theta_0`` from the cumulative theta (as in the MRS code),
            so ``alpha_0 < 1`` and ``lambda(0)`` is finite.
        algorithm: optional ``sde.algorithm`` key of a pasted option file; must be
            ``"mrsampler"`` when given.
        num_sample_steps: default number of network evaluations (NFE) of a run; ``None`` gives 10.
        solver_type: ``ode`` (probability-flow ODE) or ``sde`` (reverse-time SDE, stochastic).
        parameterization: what the solver integrates: ``data`` (predicted clean image; more
            stable at low NFE) or ``noise`` (predicted noise).
        order: solver order: 1-3 for ``ode``, 1-2 for ``sde``. The first steps use lower orders
            (warm-up), and runs with fewer than 10 steps lower the order near the end.
        fit_target: what the network predicts: ``noise`` (the DA-CLIP / IR-SDE networks),
            ``data`` (the clean image) or ``velocity``
            (``lambda * alpha_t * eps - (sigma_t / lambda) * (x0 - mu)``).
        lambda_min: smallest half log-SNR ``log(alpha_t / sigma_t)`` a run starts from; the time
            grid is cut at the largest step whose lambda is still >= ``lambda_min``
            (``-inf``: no cut; has no effect on ``karras-n`` and ``karras-t``).
        time_schedule: the time grid: ``linspace`` (uniform from the cut to 0), ``leading``,
            ``trailing`` (ends above 0), ``karras-n`` (Karras spacing of ``sigma/alpha``),
            ``karras-t`` (Karras spacing of t, ends at 1) or ``linear-lambda`` (uniform in lambda).
        timestep_offset: added to every time of the ``leading`` grid (official; only used there).
        rho: exponent of the ``karras-n`` / ``karras-t`` spacing.
        thresholding: dynamic thresholding of each data prediction (Imagen): clip to ``[-s, s]``
            and divide by ``s``, with ``s`` the ``threshold_ratio`` quantile of ``|x0|`` per image,
            clamped to ``[1, threshold_max]``. Only with ``parameterization="data"``.
        threshold_ratio: quantile of the thresholding, in (0, 1].
        threshold_max: largest ``s`` of the thresholding, >= 1.
        denoise_last: the last network evaluation returns its data prediction instead of taking
            the final solver step.
        training_schedule: solve the SDE the network was trained with: the cumulative theta
            subtracts ``theta_0`` as the IR-SDE / DA-CLIP training code does (``alpha_0 = 1``,
            ``sigma_0 = 0``; a run ending at ``t = 0`` then returns the last data prediction, the
            exact limit of every update there). ``False`` (default) is the official MRS code's
            SDE, which keeps ``theta_0``. Not with ``time_schedule="linear-lambda"``
            (``lambda_0`` is infinite).
    """

    ALGORITHM = "mrsampler"

    solver_type: Literal["ode", "sde"] = "ode"
    parameterization: Literal["data", "noise"] = "data"
    order: int = 2
    fit_target: Literal["noise", "data", "velocity"] = "noise"
    lambda_min: float = -5.0
    time_schedule: Literal["linspace", "leading", "trailing", "karras-n", "karras-t", "linear-lambda"] = "linspace"
    timestep_offset: int = 0
    rho: float = 7.0
    thresholding: bool = False
    threshold_ratio: float = 0.995
    threshold_max: float = 1.5
    denoise_last: bool = False
    training_schedule: bool = False

    @property
    def keeps_theta_0(self) -> bool:
        return not self.training_schedule

    def __post_init__(self) -> None:
        self.check_sde("10")
        if not isinstance(self.training_schedule, bool):
            raise ConfigError(f"training_schedule={self.training_schedule!r} must be true or false.")
        if self.training_schedule and self.time_schedule == "linear-lambda":
            raise ConfigError("time_schedule='linear-lambda' needs a finite lambda at t=0, which the training "
                              "schedule lacks (sigma_0 = 0); use another time_schedule or training_schedule=False.")
        if self.solver_type not in SOLVER_TYPES:
            raise ConfigError(f"solver_type={self.solver_type!r} must be 'ode' or 'sde'.")
        if self.parameterization not in PARAMETERIZATIONS:
            raise ConfigError(f"parameterization={self.parameterization!r} must be 'data' or 'noise' "
                              "(the paper recommends 'data').")
        top = MAX_ORDER[self.solver_type]
        if isinstance(self.order, bool) or not (isinstance(self.order, int) and 1 <= self.order <= top):
            raise ConfigError(f"order={self.order!r} is not supported with solver_type="
                              f"{self.solver_type!r}: use 1-{top}"
                              + (" (or solver_type='ode' for order 3)." if self.solver_type == "sde" else "."))
        if self.fit_target not in FIT_TARGETS:
            raise ConfigError(f"fit_target={self.fit_target!r} must be one of {', '.join(FIT_TARGETS)}; "
                              "the DA-CLIP / IR-SDE networks predict 'noise'.")
        if math.isnan(self.lambda_min):
            raise ConfigError("lambda_min is NaN; give a number such as -5.0 (or -inf for no cut).")
        if self.time_schedule not in TIME_SCHEDULES:
            raise ConfigError(f"time_schedule={self.time_schedule!r} must be one of "
                              f"{', '.join(TIME_SCHEDULES)}.")
        if self.timestep_offset != 0 and self.time_schedule != "leading":
            raise ConfigError(f"timestep_offset={self.timestep_offset} only applies to "
                              f"time_schedule='leading' (got {self.time_schedule!r}); set it to 0.")
        if not 0 <= self.timestep_offset < self.T:
            raise ConfigError(f"timestep_offset={self.timestep_offset} must lie in [0, T-1={self.T - 1}].")
        if not self.rho > 0:
            raise ConfigError(f"rho={self.rho} must be positive (Karras et al. use 7).")
        if not 0 < self.threshold_ratio <= 1:
            raise ConfigError(f"threshold_ratio={self.threshold_ratio} must lie in (0, 1]; the official "
                              "value is 0.995.")
        if not self.threshold_max >= 1:
            raise ConfigError(f"threshold_max={self.threshold_max} must be at least 1 (the threshold s is "
                              "clamped to [1, threshold_max]); the official value is 1.5.")
        if self.thresholding and self.parameterization != "data":
            raise ConfigError("thresholding=True clips data predictions and needs parameterization='data' "
                              f"(got {self.parameterization!r}); set thresholding=False or use 'data'.")

