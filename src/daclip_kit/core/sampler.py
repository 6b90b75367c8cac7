"""Samplers: the stochastic process of a diffusion restorer, kept apart from the network.

A :class:`Sampler` holds only its configuration and precomputed schedule; it never stores a model,
a batch or the history of a run, and never writes files. Each run gets a fresh :class:`Solver`
from :meth:`Sampler.solver`, which owns that run's time grid and, for multistep methods, the
history of earlier network outputs; two runs (or two batches) therefore never see each other's
state. The loop that alternates network calls and solver steps is :func:`daclip_kit.sample`
(:mod:`daclip_kit.core.sampling`).

Randomness enters only through the ``draw`` callable a solver receives (backed by a
``torch.Generator`` or by a recorded sequence of noise tensors).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass

import torch

from ..errors import ConfigError

#: What a denoiser returns (its ``prediction`` attribute): the noise in ``x_t`` or the clean image.
PREDICTIONS = ("noise", "clean")

#: ``draw(like)`` returns standard-normal noise with the shape, dtype and device of ``like``.
Draw = Callable[[torch.Tensor], torch.Tensor]


@dataclass(frozen=True)
class SamplerOutput:
    """Result of one reverse step of a single-step rule (:meth:`IRSDESampler.step`).

    Attributes:
        prev_sample: ``(B, C, H, W)`` state at the next (smaller) time.
        pred_clean: ``(B, C, H, W)`` estimate of the clean image implied by the model output.
    """

    prev_sample: torch.Tensor
    pred_clean: torch.Tensor


class Solver(ABC):
    """One sampling run: where the network is evaluated and how its outputs move the state.

    Attributes:
        timesteps: the (float) times at which the network is evaluated, in call order; its length
            is the number of network evaluations (NFE) of the run. Times may repeat (Heun
            evaluates twice per interval) and need not be integers (MRS).
    """

    timesteps: tuple[float, ...]

    @abstractmethod
    def step(self, model_output: torch.Tensor, x: torch.Tensor, lq: torch.Tensor, draw: Draw) -> torch.Tensor:
        """Consume the network output for the current evaluation and return the next state.

        Called once per entry of :attr:`timesteps`, in order. ``model_output`` is the network's
        prediction at ``(x, timesteps[k])`` for the ``k``-th call; the returned tensor is where
        the network is evaluated next, or the final sample after the last call (not clamped).

        Args:
            model_output: ``(B, C, H, W)`` network output (noise prediction for IR-SDE networks).
            x: ``(B, C, H, W)`` the state the network saw.
            lq: ``(B, C, H, W)`` the LQ image (the SDE mean ``mu``).
            draw: source of standard-normal noise for stochastic updates.
        """


class Sampler(ABC):
    """Interface of samplers for :class:`~daclip_kit.core.backbone.Denoiser` networks.

    Attributes:
        config: the frozen config dataclass the sampler was built from (registry ``config``).
        default_steps: network evaluations of a run when the caller gives none.
    """

    config: object
    default_steps: int

    @abstractmethod
    def solver(self, steps: int | None = None) -> Solver:
        """A fresh :class:`Solver` for one run with ``steps`` network evaluations
        (``None``: :attr:`default_steps`).

        Raises:
            ConfigError: ``steps`` is not supported (e.g. below 1).
        """

    def timesteps(self, steps: int | None = None) -> tuple[float, ...]:
        """The network evaluation times of a run with ``steps`` evaluations."""
        return self.solver(steps).timesteps

    def marginals(self, t: float) -> tuple[float, float]:
        """``(alpha_t, sigma_t)``: the state at time ``t`` is
        ``lq + alpha_t (x0 - lq) + sigma_t eps`` in this sampler's SDE. Needed to run networks that
        predict the clean image (:func:`noise_from_output`).

        Raises:
            ConfigError: the sampler does not describe its marginals.
        """
        raise ConfigError(f"{type(self).__name__} does not give its SDE's marginals, so it can only run "
                          "noise-predicting networks; use irsde, mrs or heun for a clean-predicting one.")

    @abstractmethod
    def noise_state(self, lq: torch.Tensor, generator: torch.Generator | None = None,
                    noise: torch.Tensor | None = None) -> torch.Tensor:
        """Initial state ``x_T`` for restoring ``lq`` ``(B, C, H, W)``; ``noise`` replaces the
        standard-normal draw."""


def prediction_of(denoiser: torch.nn.Module) -> str:
    """What ``denoiser`` returns, ``"noise"`` unless it says otherwise (its ``prediction``).

    Raises:
        ConfigError: an unknown kind.
    """
    kind = getattr(denoiser, "prediction", "noise")
    if kind not in PREDICTIONS:
        raise ConfigError(f"The network's prediction={kind!r} is not one of {', '.join(PREDICTIONS)}.")
    return kind


def noise_from_output(output: torch.Tensor, prediction: str, sampler: Sampler, x: torch.Tensor,
                      lq: torch.Tensor, t: float) -> torch.Tensor:
    """The noise prediction the samplers take, from a network ``output`` of kind ``prediction``.

    A clean prediction ``c`` at time ``t`` becomes ``(x - lq - alpha_t (c - lq)) / sigma_t``, the noise
    that puts ``c`` at ``x`` in the sampler's SDE (:meth:`Sampler.marginals`), so a sampler's own
    clean-image estimate from it is ``c`` again.

    Args:
        output: the network's output, ``(B, C, H, W)``.
        prediction: what ``output`` is: ``"noise"`` or ``"clean"``.
        sampler: the sampler whose SDE the network was trained with.
        x: the state the network saw, ``(B, C, H, W)``.
        lq: the low-quality image, ``(B, C, H, W)``.
        t: the time the network saw (``sigma_t > 0``).
    """
    if prediction == "noise":
        return output
    alpha, sigma = sampler.marginals(float(t))
    if not sigma > 0:
        raise ConfigError(f"A clean prediction at t={t:g} where the SDE has no noise (sigma_t = 0) implies no "
                          "noise; evaluate the network at t > 0.")
    return (x - lq - alpha * (output - lq)) / sigma


def randn_like(x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    """Standard normal noise shaped like ``x``, drawn from ``generator`` (on its own device).

    Drawing on the generator's device and moving the result makes a CPU generator give the same
    noise whatever device ``x`` lives on.
    """
    if generator is None:
        return torch.randn_like(x)
    noise = torch.randn(x.shape, generator=generator, device=generator.device, dtype=torch.float32)
    return noise.to(device=x.device, dtype=x.dtype)
