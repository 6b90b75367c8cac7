"""Config of the Heun baseline sampler (torch-free)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from ...errors import ConfigError
from ..mrs.config import MRSDESettings


@dataclass(frozen=True, kw_only=True)
class HeunConfig(MRSDESettings):
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

    ALGORITHM = "heun"

    solver_type: Literal["sde", "ode"] = "sde"

    def __post_init__(self) -> None:
        self.check_sde("T")
        if self.solver_type not in ("sde", "ode"):
            raise ConfigError(f"solver_type={self.solver_type!r} must be 'sde' or 'ode'.")
