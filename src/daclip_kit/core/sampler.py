"""Samplers: the stochastic process of a diffusion restorer, kept apart from the network.

A sampler never stores a model and never writes files. The loop that alternates network calls
and sampler steps is :func:`daclip_kit.core.pipeline.sample`.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class SamplerOutput:
    """Result of one reverse step.

    Attributes:
        prev_sample: ``(B, C, H, W)`` state at the next (smaller) step.
        pred_clean: ``(B, C, H, W)`` estimate of the clean image implied by the model output.
    """

    prev_sample: torch.Tensor
    pred_clean: torch.Tensor


class Sampler:
    """Interface of samplers for :class:`~daclip_kit.core.backbone.Denoiser` networks.

    The network is called as ``net(x_t, lq, t, degradation=..., content=...)`` with a Python
    number ``t`` taken from :meth:`timesteps`, and its output is passed to :meth:`step`.
    Randomness comes only from the ``generator`` arguments (or explicit ``noise``).
    """

    def timesteps(self, num_steps: int | None = None) -> list[int]:
        """Descending steps at which the network is evaluated (the last one is the final step)."""
        raise NotImplementedError

    def noise_state(self, lq: torch.Tensor, generator: torch.Generator | None = None,
                    noise: torch.Tensor | None = None) -> torch.Tensor:
        """Initial state ``x_T`` for restoring ``lq`` ``(B, C, H, W)``."""
        raise NotImplementedError

    def step(self, model_output: torch.Tensor, t: int, x_t: torch.Tensor, lq: torch.Tensor, *,
             mode: str | None = None, generator: torch.Generator | None = None,
             t_prev: int | None = None, noise: torch.Tensor | None = None) -> SamplerOutput:
        """Move ``x_t`` from step ``t`` to ``t_prev`` (default ``t - 1``) given the network output."""
        raise NotImplementedError


def randn_like(x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    """Standard normal noise shaped like ``x``, drawn from ``generator`` (on its own device).

    Drawing on the generator's device and moving the result makes a CPU generator give the same
    noise whatever device ``x`` lives on.
    """
    if generator is None:
        return torch.randn_like(x)
    noise = torch.randn(x.shape, generator=generator, device=generator.device, dtype=torch.float32)
    return noise.to(device=x.device, dtype=x.dtype)
