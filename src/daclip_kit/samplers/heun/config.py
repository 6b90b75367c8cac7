"""Config of the Heun baseline sampler (torch-free)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from ...errors import ConfigError
from ..mrs.config import check_algorithm, check_sde_fields


@dataclass(frozen=True, kw_only=True)
class HeunConfig:
    """Settings of the Heun sampler, named as in the MRS option files.

    The SDE fields are those of the ``sde:`` section (``algorithm: heun`` is accepted); of the
    ``sampler:`` section the official Heun code reads only ``num_sample_steps`` and
    ``solver_type``, so only those two are accepted here.

    Attributes:
        max_sigma: stationary noise level lambda (>= 1: 0-255 units, divided by 255).
        T: number of steps of the discretised SDE.
        schedule: theta schedule: ``cosine``, ``linear`` or ``constant``.
        eps: ``exp(-theta_bar_T dt) = eps`` fixes ``dt`` (MRS convention: ``theta_0`` is kept in
            ``theta_bar``).
        algorithm: optional ``sde.algorithm`` key of a pasted option file; must be ``"heun"``.
        num_sample_steps: default number of network evaluations (NFE); ``None`` gives ``T``.
        solver_type: ``sde`` (stochastic Heun on the reverse SDE; official default) or ``ode``
            (Heun on the probability-flow ODE).
    """

    max_sigma: float = 50.0
    T: int = 100
    schedule: Literal["cosine", "linear", "constant"] = "cosine"
    eps: float = 0.005
    algorithm: str | None = None
    num_sample_steps: int | None = None
    solver_type: Literal["sde", "ode"] = "sde"

    def __post_init__(self) -> None:
        check_sde_fields(self.max_sigma, self.T, self.schedule, self.eps)
        check_algorithm(self.algorithm, "heun")
        if self.num_sample_steps is not None and self.num_sample_steps < 1:
            raise ConfigError(f"num_sample_steps={self.num_sample_steps} must be at least 1 (or left "
                              "out for T).")
        if self.solver_type not in ("sde", "ode"):
            raise ConfigError(f"solver_type={self.solver_type!r} must be 'sde' or 'ode'.")

    @property
    def lam(self) -> float:
        """Stationary standard deviation lambda in [0, 1] image units."""
        return self.max_sigma / 255 if self.max_sigma >= 1 else self.max_sigma
