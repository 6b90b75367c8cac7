"""What the samplers of the MRS code's mean-reverting SDE (``mrs``, ``heun``) share: the schedule,
built once from the config's ``sde`` settings, and the official start state."""

from __future__ import annotations

import torch

from ...core.sampler import Sampler, randn_like
from ...errors import ConfigError
from .config import MRSDESettings
from .schedule import MRSchedule, make_mr_schedule


class MeanRevertingSampler(Sampler):
    """Base of a stateless sampler over :class:`~.schedule.MRSchedule`.

    Args:
        config: the sampler's frozen config (:class:`~.config.MRSDESettings` or a subclass).
        fallback_steps: network evaluations of a run when ``config.num_sample_steps`` is ``None``.
    """

    config: MRSDESettings

    def __init__(self, config: MRSDESettings, fallback_steps: int):
        self.config = config
        self.default_steps = config.num_sample_steps if config.num_sample_steps is not None else fallback_steps
        self.schedule: MRSchedule = make_mr_schedule(config.lam, config.T, config.schedule, config.eps,
                                                     keep_theta_0=config.keeps_theta_0)

    def run_steps(self, steps: int | None) -> int:
        """``steps`` (default :attr:`default_steps`), the network evaluations of a run.

        Raises:
            ConfigError: not a positive integer.
        """
        steps = self.default_steps if steps is None else steps
        if isinstance(steps, bool) or not isinstance(steps, int) or steps < 1:
            raise ConfigError(f"steps={steps!r} must be a positive integer (network evaluations of the run).")
        return steps

    @property
    def max_sigma(self) -> float:
        """Stationary standard deviation lambda in [0, 1] units."""
        return self.schedule.lam

    def marginals(self, t: float) -> tuple[float, float]:
        """``(alpha_t, sigma_t)`` of :attr:`schedule`, interpolated at the float time ``t``."""
        times = torch.tensor([float(t)], dtype=torch.float64)
        return float(self.schedule.at("alpha_array", times)), float(self.schedule.at("sigma_array", times))

    def noise_state(self, lq: torch.Tensor, generator: torch.Generator | None = None,
                    noise: torch.Tensor | None = None) -> torch.Tensor:
        """``x_T = lq + lambda * z`` (the official start state), ``(B, 3, H, W)`` like ``lq``."""
        if noise is None:
            noise = randn_like(lq, generator)
        return lq + noise * self.max_sigma
