"""Config of the IR-SDE sampler (torch-free)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from ...errors import ConfigError


@dataclass(frozen=True, kw_only=True)
class IRSDEConfig:
    """Settings of the mean-reverting SDE, named as in the official option files (``sde:``).

    Defaults are the universal and Wild-IR models' (``max_sigma 50, T 100, cosine, eps 0.005``).

    Attributes:
        max_sigma: stationary noise level lambda; values >= 1 are in 0-255 units and divided by
            255 (as the official code does), smaller values are used as they are.
        T: number of steps of the discretised process.
        schedule: theta schedule: ``cosine`` (official default), ``linear`` or ``constant``.
        eps: the mean reverts to within ``eps`` of ``lq`` at ``t = T``:
            ``exp(-theta_bar_T * dt) = eps`` fixes ``dt``.
        mode: the reverse step of a run: ``posterior`` (official default: sample the Gaussian
            posterior given the predicted clean image), ``sde`` (Euler-Maruyama on the reverse
            SDE, the ICLR paper's sampler) or ``ode`` (Euler on the probability-flow ODE).
    """

    max_sigma: float = 50.0
    T: int = 100
    schedule: Literal["cosine", "linear", "constant"] = "cosine"
    eps: float = 0.005
    mode: Literal["posterior", "sde", "ode"] = "posterior"

    def __post_init__(self) -> None:
        if self.max_sigma <= 0:
            raise ConfigError(f"max_sigma={self.max_sigma} must be positive (e.g. 50 for 50/255).")
        if self.T < 1:
            raise ConfigError(f"T={self.T} must be at least 1.")
        if not 0 < self.eps < 1:
            raise ConfigError(f"eps={self.eps} must lie in (0, 1); the official value is 0.005.")
        if self.schedule not in ("cosine", "linear", "constant"):
            raise ConfigError(f"schedule={self.schedule!r} must be 'cosine', 'linear' or 'constant'.")
        if self.mode not in ("posterior", "sde", "ode"):
            raise ConfigError(f"mode={self.mode!r} must be 'posterior', 'sde' or 'ode'.")

    @property
    def lam(self) -> float:
        """Stationary standard deviation lambda in [0, 1] image units."""
        return self.max_sigma / 255 if self.max_sigma >= 1 else self.max_sigma
