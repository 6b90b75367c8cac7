"""Exponential moving average of a network's weights."""

from __future__ import annotations

import copy

import torch
from torch import nn


class EMA:
    """A frozen copy of ``model`` that trails its weights.

    Every ``update_every`` calls of :meth:`update` the copy moves towards the model:
    ``ema = decay * ema + (1 - decay) * weights`` for floating-point parameters and buffers;
    other buffers are copied.

    Args:
        model: the network being trained (copied now).
        decay: weight of the old average (0.995 in the official IR-SDE training).
        update_every: average every N steps (10 in the official IR-SDE training).

    Attributes:
        model: the averaged network (eval mode, no gradients); its ``state_dict`` has the keys of
            the trained network.
        updates: averaging updates done so far.
    """

    def __init__(self, model: nn.Module, *, decay: float = 0.995, update_every: int = 10):
        self.model = copy.deepcopy(model).eval().requires_grad_(False)
        self.decay = float(decay)
        self.update_every = int(update_every)
        self.updates = 0
        self._calls = 0

    @torch.no_grad()
    def update(self, model: nn.Module) -> bool:
        """Count one training step; average on every ``update_every``-th. Returns whether it did."""
        self._calls += 1
        if self._calls % self.update_every:
            return False
        current = dict(model.named_parameters())
        for name, avg in self.model.named_parameters():
            avg.lerp_(current[name].detach().to(avg.dtype), 1.0 - self.decay)
        buffers = dict(model.named_buffers())
        for name, avg in self.model.named_buffers():
            src = buffers[name].detach()
            if avg.is_floating_point():
                avg.lerp_(src.to(avg.dtype), 1.0 - self.decay)
            else:
                avg.copy_(src)
        self.updates += 1
        return True

    def state(self) -> dict[str, int]:
        """Counters for resuming (the averaged weights are saved as a model folder)."""
        return {"updates": self.updates, "calls": self._calls}

    def load_state(self, state: dict[str, int]) -> None:
        self.updates = int(state["updates"])
        self._calls = int(state["calls"])
