"""Exponential moving average of a network's weights, with the official semantics.

The official IR-SDE training keeps ``ema_pytorch.EMA(model, beta=0.995, update_every=10)``;
:class:`EMA` wraps that class (package ``ema-pytorch``) so the behaviour is the package's own:

* counting optimizer steps ``n = 1, 2, ...`` and ``s = n - 1``: a warm-up that *copies* the
  weights at ``s = 0`` and at every multiple of ``update_every`` up to ``update_after_step`` (100),
  so the average starts from a trained network instead of the random initialisation;
* then, at every multiple of ``update_every``, ``ema.lerp_(weights, 1 - d)`` with the ramped decay
  ``d = min(beta, 1 - (1 + (n - update_after_step - 1) / inv_gamma) ** -power)``.

Floating-point parameters and buffers are averaged; others are left alone (as the package does).
"""

from __future__ import annotations

import torch
from torch import nn

from ..errors import CheckpointError
from ..options import option


class EMA:
    """A frozen copy of ``model`` that trails its weights (``ema_pytorch.EMA`` underneath).

    Call :meth:`update` once after every optimizer step.

    Args:
        model: the network being trained (copied now; the same object must be passed to
            :meth:`update`).
        decay: the largest decay, ``beta`` (0.995 in the official IR-SDE training).
        update_every: average every N steps (10 in the official IR-SDE training).
        update_after_step: copy the weights instead of averaging up to this step (100).
        inv_gamma: the decay ramp's scale (1; the formula above).
        power: the decay ramp's exponent (2/3).

    Attributes:
        model: the averaged network (eval mode, no gradients); its ``state_dict`` has the keys of
            the trained network.
        step: updates (optimizer steps) counted so far.
    """

    def __init__(self, model: nn.Module, *, decay: float = 0.995, update_every: int = 10,
                 update_after_step: int = 100, inv_gamma: float = 1.0, power: float = 2 / 3):
        from ema_pytorch import EMA as _PackageEMA

        self._online = model
        self._ema = _PackageEMA(model, beta=float(decay), update_every=int(update_every),
                                update_after_step=int(update_after_step), inv_gamma=float(inv_gamma),
                                power=float(power), include_online_model=False)
        self.model: nn.Module = self._ema.ema_model
        self.model.eval().requires_grad_(False)

    @property
    def step(self) -> int:
        return int(self._ema.step.item())

    @torch.no_grad()
    def update(self, model: nn.Module | None = None) -> None:
        """Count one optimizer step of ``model`` (the network given at construction)."""
        if model is not None and model is not self._online:
            raise ValueError("EMA.update() got another network than the one it was built with.")
        self._ema.update()

    def state(self) -> dict[str, int | bool]:
        """Counters for resuming (the averaged weights are saved as a model folder)."""
        return {"step": self.step, "initted": bool(self._ema.initted.item())}

    def load_state(self, state: dict[str, int | bool]) -> None:
        """Restore :meth:`state` (after the averaged weights were loaded into :attr:`model`)."""
        if "step" not in state:  # a checkpoint of the former constant-decay EMA
            raise CheckpointError("This checkpoint's EMA state predates the ema-pytorch EMA; start a new run "
                                  f"from its weights ({option('init_from', 'CHECKPOINT/network')}).")
        self._ema.step.fill_(int(state["step"]))
        self._ema.initted.fill_(bool(state["initted"]))
