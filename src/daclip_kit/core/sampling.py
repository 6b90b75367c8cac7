"""The reverse-diffusion loop: alternate network evaluations and solver steps.

:func:`sample` is public as ``daclip_kit.sample``. It owns the one padding rule of daclip-kit:
every network input is padded (bottom/right) to the network's ``size_divisor`` with its
``pad_mode`` and every output is cropped back (:func:`~daclip_kit.ops.padding.padded_call`), so the
state keeps the size of ``lq``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence

import torch

from ..errors import ConfigError, NonFiniteError, ShapeError
from ..ops.padding import padded_call
from ..ops.tiles import tiled_apply
from ..options import option
from ..types import Conditioning
from .runtime import autocast, bucket_divisor
from .sampler import Sampler, Solver, noise_from_output, prediction_of, randn_like

#: ``progress(done, total)`` is called after every network evaluation.
Progress = Callable[[int, int], None]


class NoiseSource:
    """Standard-normal draws for stochastic solver updates.

    Args:
        noise: recorded tensors consumed in order (reproducing a reference run); when given, the
            run must consume exactly these.
        generator: otherwise, the only source of randomness (``None``: torch's global generator),
            or one generator per sample of the batch (each sample's noise from its own).
    """

    def __init__(self, noise: Iterable[torch.Tensor] | None = None,
                 generator: torch.Generator | Sequence[torch.Generator] | None = None):
        self._recorded: Iterator[torch.Tensor] | None = None if noise is None else iter(noise)
        self._generator = generator
        self.drawn = 0

    def __call__(self, like: torch.Tensor) -> torch.Tensor:
        self.drawn += 1
        if self._recorded is None:
            gen = self._generator
            if gen is None or isinstance(gen, torch.Generator):
                return randn_like(like, gen)
            if len(gen) != like.shape[0]:
                raise ConfigError(f"{len(gen)} generators for a batch of {like.shape[0]}; give one per image.")
            return torch.cat([randn_like(like[i:i + 1], g) for i, g in enumerate(gen)])
        try:
            z = next(self._recorded)
        except StopIteration:
            raise ConfigError(f"noise= holds {self.drawn - 1} tensors but the run needs more; record "
                              "every draw of the reference run.") from None
        if tuple(z.shape) != tuple(like.shape):
            raise ShapeError(f"noise draw {self.drawn} has shape {tuple(z.shape)}, expected {tuple(like.shape)}.")
        return z.to(device=like.device, dtype=like.dtype)

    def unused(self) -> int:
        """How many recorded tensors were left over (0 when drawing from a generator)."""
        return 0 if self._recorded is None else sum(1 for _ in self._recorded)


def sample(denoiser: torch.nn.Module, sampler: Sampler, lq: torch.Tensor, cond: Conditioning | None = None, *,
           steps: int | None = None, generator: torch.Generator | Sequence[torch.Generator] | None = None,
           x_T: torch.Tensor | None = None, noise: Iterable[torch.Tensor] | None = None,
           progress: Progress | None = None, tile: int | None = None, tile_overlap: int = 32,
           tile_batch: int = 1, solver: Solver | None = None, precision: str = "fp32",
           bucket: int | None = None, check_finite: bool = True) -> torch.Tensor:
    """Restore ``lq`` by running the reverse process of ``sampler`` with ``denoiser``.

    The network is called as ``denoiser(x_t, lq, t, degradation=, content=)`` with ``t`` a Python
    float (possibly non-integer); the output of a network whose ``prediction`` is ``"clean"`` is
    turned into the noise the solver takes through the sampler's SDE
    (:func:`~.sampler.noise_from_output`). With ``tile`` each network evaluation runs on
    overlapping tiles that are blended, while the state and all noise stay whole-image; with one
    tile covering the image the result equals the untiled one.

    Args:
        denoiser: the network (``size_divisor``, ``pad_mode``, ``prediction`` attributes optional).
        sampler: e.g. ``create_sampler("irsde")`` or ``create_sampler("mrs")``.
        lq: ``(B, 3, H, W)`` low-quality images in [0, 1] (the SDE mean).
        cond: degradation / content embeddings ``(B, D)``.
        steps: network evaluations (``None``: the sampler's default, e.g. all ``T`` for IR-SDE).
        generator: the only source of randomness when ``x_T`` / ``noise`` are not given; a
            sequence gives every image of the batch its own generator.
        x_T: the initial state; default ``sampler.noise_state(lq, generator)``.
        noise: tensors that stochastic updates consume in order instead of drawing from
            ``generator`` (to reproduce a recorded reference run); all must be consumed.
        progress: ``progress(done, total)`` after each network evaluation.
        tile: the network runs on tiles of this size (:func:`~daclip_kit.ops.tiles.tiled_apply`).
        tile_overlap: pixels shared by neighbouring tiles.
        tile_batch: tiles per network call.
        solver: a fresh solver from ``sampler.solver(steps)`` when the caller already made one.
        precision: ``fp32``, ``bf16`` or ``fp16`` (resolved; see :mod:`daclip_kit.core.runtime`):
            the network runs under autocast, its output is cast to float32 and the state stays
            float32.
        bucket: pad network inputs to multiples of this too (static shapes for compiled networks).
        check_finite: raise :class:`~daclip_kit.errors.NonFiniteError` naming the first step whose
            state holds NaN or infinite values (flags stay on the device during the run: one
            synchronisation at the end).

    Returns:
        ``(B, 3, H, W)`` final state (not clamped).

    Example:
        >>> import daclip_kit, torch
        >>> net = daclip_kit.create_backbone("irsde-unet", nf=32, ch_mult=(1, 1), context_dim=0,
        ...                                  use_degra_context=False, use_image_context=False).eval()
        >>> sde = daclip_kit.create_sampler("irsde", T=10)
        >>> with torch.no_grad():
        ...     out = daclip_kit.sample(net, sde, torch.rand(1, 3, 12, 20), steps=3,
        ...                             generator=torch.Generator().manual_seed(0))
        >>> out.shape
        torch.Size([1, 3, 12, 20])
    """
    cond = cond or Conditioning()
    solver = solver if solver is not None else sampler.solver(steps)
    draws = NoiseSource(noise, generator)
    x = sampler.noise_state(lq, noise=NoiseSource(None, generator)(lq)) if x_T is None else x_T
    if tuple(x.shape) != tuple(lq.shape):
        raise ShapeError(f"x_T has shape {tuple(x.shape)} but lq has {tuple(lq.shape)}.")
    context = (cond.degradation, cond.content)
    divisor = bucket_divisor(denoiser, bucket)
    prediction = prediction_of(denoiser)
    pad_mode = getattr(denoiser, "pad_mode", "reflect")
    device = lq.device

    def predict(x_t: torch.Tensor, lq_t: torch.Tensor, degradation: torch.Tensor | None,
                content: torch.Tensor | None, *, t: float) -> torch.Tensor:
        with autocast(precision, device):
            out = padded_call(lambda a, b: denoiser(a, b, t, degradation=degradation, content=content),
                              (x_t, lq_t), divisor, pad_mode)
        return out.float() if out.dtype != x_t.dtype else out

    total = len(solver.timesteps)
    finite: list[torch.Tensor] = []
    for k, t in enumerate(solver.timesteps):
        t = float(t)
        if tile is None:
            eps = predict(x, lq, *context, t=t)
        else:
            eps = tiled_apply(lambda *a, t=t: predict(*a, t=t), (x, lq), tile=tile, overlap=tile_overlap,
                              tile_batch=tile_batch, context=context)
        eps = noise_from_output(eps, prediction, sampler, x, lq, t)
        x = solver.step(eps, x, lq, draws)
        if check_finite:
            finite.append(torch.isfinite(x).all())
        if progress is not None:
            progress(k + 1, total)
    if finite:
        flags = torch.stack(finite)
        if not bool(flags.all()):
            first = int((~flags).nonzero()[0])
            raise NonFiniteError(
                f"Sampling produced NaN or infinite values at step {first + 1} of {total} "
                f"(t={solver.timesteps[first]:g}); check the weights (NaN/Inf tensors), or run in fp32 "
                f"({option('precision', 'fp32')}) if this happened in bf16/fp16.")
    left = draws.unused()
    if left:
        raise ConfigError(f"noise= holds {left} more tensor(s) than the run drew ({draws.drawn}); the "
                          "recording does not match this sampler and step count.")
    return x
