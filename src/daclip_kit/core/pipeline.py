"""Restoration pipelines: embedder + denoiser + sampler, or embedder + one-shot backbone.

:class:`RestorationPipeline` restores one batch: it embeds the whole images, runs the network
(through :func:`daclip_kit.sample` for denoisers), pads and crops by the network's padding rule,
optionally tiles, and clamps. How a run is carried out (steps, tiling) is one frozen
:class:`RestoreOptions`; grouping many images into batches is the job of
:func:`daclip_kit.pipelines.engine.restore_images`.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

import torch

from ..errors import ConfigError, InputError, NonFiniteError, ShapeError
from ..ops.memory import (
    ACTIVATION_BYTES,
    COMPUTE_DTYPES,
    available_bytes,
    meta_state,
    peak_activation_bytes,
)
from ..ops.padding import padded_call
from ..ops.tiles import tiled_apply
from ..options import option
from ..types import Conditioning, ImageEmbedding
from .backbone import Denoiser, RestorationBackbone
from .checks import check_image
from .embedder import EmbeddingProvider
from .runtime import (
    DEFAULT_BUCKET,
    PRECISIONS,
    CompiledCache,
    autocast,
    bucket_divisor,
    resolve_precision,
)
from .sampler import Sampler
from .sampling import Progress, sample

log = logging.getLogger(__name__)

#: Full-size float32 images a diffusion run holds per image during a solver step, when no network
#: activations are live (state, LQ, network output, noise draw, step temporaries, new state).
STATE_TENSORS = 6
#: Full-size float32 images a diffusion run holds per image while the network runs (state, LQ, the
#: previous step's network output); a one-shot backbone holds its input.
LIVE_TENSORS = 3
#: Float32 images of the network call's size around the network (untiled: the padded copies of its
#: two inputs and its output; tiled: also the crops and the windowed output).
CALL_TENSORS = 3
TILED_CALL_TENSORS = 6
#: Fraction of the budget a run is planned to use: the headroom for what the estimate does not see
#: (allocator slack and fragmentation, kernels' work buffers). ``benchmarks/bench_memory.py``
#: measures the peaks against the budgets (docs/performance.md).
BUDGET_FRACTION = 0.8
#: The smallest automatic tile side; a run that does not fit with it is an error.
MIN_AUTO_TILE = 64


@dataclass(frozen=True, kw_only=True)
class RestoreOptions:
    """How a restoration run is carried out; made once (e.g. from the CLI) and passed down.

    Attributes:
        steps: network evaluations of a diffusion run (``None``: the pipeline's, else the sampler's
            default).
        tile: run the network on ``tile x tile`` tiles (``None``: whole images, or automatic
            tiles when ``auto_tile`` finds the run would not fit in memory); bounds memory.
        tile_overlap: minimum overlap of neighbouring tiles in pixels.
        tile_batch: tiles per network call.
        precision: ``fp32``, ``bf16``, ``fp16`` or ``auto`` (bf16 on CUDA, fp32 on the CPU): the
            networks run under autocast, the diffusion state and the sampler stay float32.
        compile: run the networks through ``torch.compile`` (CUDA graphs on CUDA); inputs are
            padded to multiples of ``bucket`` so nearby sizes share a graph.
        bucket: pad network inputs to multiples of this (default 64 when compiling, else only the
            network's ``size_divisor``).
        max_memory: bytes a run may add at its peak to what the process already holds (the loaded
            weights are not part of it; ``None``: the device's free memory).
        auto_tile: when ``tile`` is not given and the estimated peak memory
            (:meth:`RestorationPipeline.estimate_memory`) exceeds :data:`BUDGET_FRACTION` of the
            budget, pick the tiles that fit with the least computation instead of running out of
            memory (:meth:`RestorationPipeline.plan_tile`).
    """

    steps: int | None = None
    tile: int | None = None
    tile_overlap: int = 32
    tile_batch: int = 1
    precision: str = "fp32"
    compile: bool = False
    bucket: int | None = None
    max_memory: int | None = None
    auto_tile: bool = True

    @property
    def padding_bucket(self) -> int | None:
        """The ``bucket`` in effect: as given, else 64 when compiling, else none."""
        return self.bucket or (DEFAULT_BUCKET if self.compile else None)

    def __post_init__(self) -> None:
        for name in ("steps", "tile"):
            value = getattr(self, name)
            if value is not None and value < 1:
                raise ConfigError(f"{name}={value} must be at least 1 (or None).")
        if self.tile_batch < 1:
            raise ConfigError(f"tile_batch={self.tile_batch} must be at least 1.")
        if self.tile is not None and not 0 <= self.tile_overlap < self.tile:
            raise ConfigError(f"tile_overlap={self.tile_overlap} must lie in [0, tile={self.tile}).")
        if self.precision not in PRECISIONS:
            raise ConfigError(f"precision={self.precision!r} must be one of {', '.join(PRECISIONS)}.")
        if self.bucket is not None and self.bucket < 1:
            raise ConfigError(f"bucket={self.bucket} must be at least 1 (or None).")
        if self.max_memory is not None and self.max_memory <= 0:
            raise ConfigError(f"max_memory={self.max_memory} must be a positive number of bytes (or None).")


@dataclass(frozen=True)
class RestoreResult:
    """Output of :class:`RestorationPipeline`.

    Attributes:
        image: ``(B, 3, H, W)`` restored images, float RGB in [0, 1], on the input's device.
        embedding: the embeddings the network was conditioned on (``None`` without an embedder).
    """

    image: torch.Tensor
    embedding: ImageEmbedding | None = None


def per_image_generators(seed: int, count: int) -> list[torch.Generator]:
    """The seeding rule of daclip-kit: every image gets its own CPU generator seeded with ``seed``.

    Each image's noise then depends only on the seed, never on the batch it runs in, its position
    in the input list or the device.
    """
    return [torch.Generator().manual_seed(int(seed)) for _ in range(count)]


def start_noise(noise: torch.Tensor, lq: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor] | None]:
    """``(z, draws)`` of a given ``noise`` for restoring ``lq`` ``(B, 3, H, W)``: the start noise
    ``z`` ``(B, 3, H, W)`` and, for ``(B, 1 + S, 3, H, W)``, the ``S`` later draws (else ``None``:
    they come from the generator), on ``lq``'s device and dtype.

    Raises:
        ShapeError: any other shape, naming the expected one.
    """
    b, c, h, w = lq.shape
    shape = tuple(noise.shape)
    if noise.ndim == 4 and shape == (b, c, h, w):
        return noise.to(device=lq.device, dtype=lq.dtype), None
    if noise.ndim == 5 and shape[0] == b and shape[1] >= 1 and shape[2:] == (c, h, w):
        z = noise.to(device=lq.device, dtype=lq.dtype)
        return z[:, 0], [z[:, k] for k in range(1, shape[1])]
    raise ShapeError(f"The start noise has shape {shape}; restoring {b} image(s) of {w}x{h} takes "
                     f"({b}, {c}, {h}, {w}) (the images' own size, not padded), or ({b}, 1 + S, {c}, {h}, {w}) "
                     "with the S draws of the stochastic steps after it.")


def tile_count(side: int, tile: int, overlap: int) -> int:
    """Tiles of ``tile`` pixels overlapping by at least ``overlap`` that
    :func:`~daclip_kit.ops.tiles.tile_grid` puts along a side of ``side`` pixels."""
    return 1 if side <= tile else -(-(side - tile) // (tile - overlap)) + 1


def tile_cost(height: int, width: int, tile: int, overlap: int, divisor: int = 1) -> int:
    """Pixels the network computes restoring a ``height x width`` image in ``tile``-pixel tiles
    (each tile padded to a multiple of ``divisor``)."""
    th, tw = (-(-min(tile, side) // divisor) * divisor for side in (height, width))
    return tile_count(height, tile, overlap) * tile_count(width, tile, overlap) * th * tw


def tight_tiles(height: int, width: int, overlap: int, divisor: int, smallest: int) -> list[int]:
    """Tile sides worth trying for a ``height x width`` image, largest first: for ``n = 2, 3, ...``
    the smallest multiple of ``divisor`` covering the height or the width in ``n`` tiles that
    overlap by ``overlap``, down to ``smallest`` (itself included, rounded up to ``divisor``).

    Any tile between two of these computes more pixels than the smaller of them: it needs as many
    tiles per side as that one, and each is larger.
    """
    sides: set[int] = set()
    for side in {height, width}:
        for n in range(2, side + 1):
            tile = -(-(side + (n - 1) * overlap) // n)
            tile = -(-tile // divisor) * divisor
            if tile < smallest:
                break
            if overlap < tile < max(height, width):
                sides.add(tile)
    floor = -(-smallest // divisor) * divisor
    if overlap < floor < max(height, width):
        sides.add(floor)
    return sorted(sides, reverse=True)


class RestorationPipeline:
    """Restore a batch of ``(B, 3, H, W)`` images in [0, 1].

    Give either ``denoiser`` and ``sampler`` (IR-SDE and other diffusion networks) or a one-shot
    ``backbone``; ``embedder`` is optional (networks without conditioning). The embedder sees each
    whole image (it resizes internally), also when the network runs on tiles.

    Args:
        embedder: the embedding provider, or ``None``.
        denoiser: a diffusion network.
        sampler: the denoiser's sampler.
        backbone: a one-shot network.
        options: the default :class:`RestoreOptions` of calls (e.g. the recipe's steps).

    Example:
        >>> pipe = RestorationPipeline(embedder=daclip, denoiser=unet, sampler=sde)  # doctest: +SKIP
        >>> result = pipe(lq, steps=100, generator=torch.Generator().manual_seed(0))  # doctest: +SKIP
        >>> result.image.shape  # doctest: +SKIP
        torch.Size([1, 3, 256, 256])
    """

    def __init__(self, embedder: EmbeddingProvider | None = None, denoiser: Denoiser | None = None,
                 sampler: Sampler | None = None, backbone: RestorationBackbone | None = None, *,
                 options: RestoreOptions | None = None):
        if backbone is not None and (denoiser is not None or sampler is not None):
            raise ConfigError("Give either backbone= (one-shot) or denoiser= with sampler=, not both.")
        if backbone is None and (denoiser is None or sampler is None):
            raise ConfigError("A diffusion pipeline needs both denoiser= and sampler= "
                              "(e.g. create_sampler('irsde')); a one-shot model goes in backbone=.")
        self.embedder = embedder
        self.denoiser = denoiser
        self.sampler = sampler
        self.backbone = backbone
        self.options = options or RestoreOptions()
        self._compiled = CompiledCache()
        self._meta_state: dict[str, torch.Tensor] | None = None
        self._estimates: dict[tuple[int, int, int, torch.dtype], int] = {}
        self._told: set[str] = set()  # memory decisions already logged (one line per image size, not per batch)

    @property
    def network(self) -> torch.nn.Module:
        """The restoration network (denoiser or backbone)."""
        net = self.denoiser if self.denoiser is not None else self.backbone
        assert net is not None  # __init__ takes one or the other
        return net

    def evaluations(self, options: RestoreOptions | None = None) -> int:
        """Network evaluations per batch under ``options`` (1 for one-shot backbones)."""
        if self.sampler is None:
            return 1
        return len(self.sampler.timesteps((options or self.options).steps))

    def _device_dtype(self) -> tuple[torch.device, torch.dtype]:
        param = next(self.network.parameters(), None)
        if param is None:
            return torch.device("cpu"), torch.float32
        return param.device, param.dtype

    # -- memory --------------------------------------------------------------------------------

    def _padded_size(self, height: int, width: int, bucket: int | None) -> tuple[int, int]:
        divisor = bucket_divisor(self.network, bucket)
        return -(-height // divisor) * divisor, -(-width // divisor) * divisor

    def _network_call(self, batch: int, height: int, width: int) -> tuple[tuple[Any, ...], dict[str, Any]]:
        _, dtype = self._device_dtype()
        x = torch.empty(batch, 3, height, width, device="meta", dtype=dtype)
        context = int(getattr(self.network, "context_dim", 0) or 0)
        accepts = set(getattr(self.network, "accepts", ()) or ())
        emb = {role: torch.empty(batch, context, device="meta", dtype=dtype) for role in ("degradation", "content")
               if role in accepts and context}
        if self.denoiser is not None:
            return (x, x, torch.empty(1, device="meta")), emb
        return (x, Conditioning(**emb)), {}

    def estimate_memory(self, batch: int, height: int, width: int, precision: str = "fp32", *,
                        tile: int | None = None, tile_batch: int = 1, bucket: int | None = None) -> int:
        """Estimated peak bytes a restoration of a ``(batch, 3, height, width)`` batch adds to
        what the process holds before it (the loaded weights are not counted): the larger of

        * the network call: its intermediate tensors at the padded (or tile) size, measured on the
          ``meta`` device (:func:`~daclip_kit.ops.memory.peak_activation_bytes`) and scaled to
          ``precision``, its inputs' and output's copies at that size (:data:`CALL_TENSORS`,
          :data:`TILED_CALL_TENSORS`), the full-size images the run keeps meanwhile
          (:data:`LIVE_TENSORS`) and, tiled, the full-size weighted sum and weight map the tiles
          are blended into;
        * a solver step: the full-size diffusion state and its temporaries (:data:`STATE_TENSORS`).

        Attention is counted as the kernel PyTorch picks on the network's device in ``precision``
        allocates it (fused kernels: no ``N x N`` matrix; the math fallback: with it; see
        :mod:`daclip_kit.ops.memory`).

        Example:
            >>> pipe.estimate_memory(1, 1024, 1024, "bf16") / 2**30  # doctest: +SKIP
            5.6
        """
        tiled = tile is not None and (tile < height or tile < width)
        if tiled:
            assert tile is not None
            call_batch, h, w = batch * tile_batch, min(tile, height), min(tile, width)
        else:
            call_batch, h, w = batch, height, width
        h, w = self._padded_size(h, w, bucket)
        image = batch * 3 * height * width * 4  # one float32 full-size batch
        diffusion = self.denoiser is not None
        held = (LIVE_TENSORS if diffusion else 1) * image
        if tiled:
            held += image + batch * height * width * 4  # tiled_apply's weighted sum and weight map
        call = (TILED_CALL_TENSORS if tiled else CALL_TENSORS) * call_batch * 3 * h * w * 4
        network = self.activation_memory(call_batch, h, w, precision) + call + held
        step = (STATE_TENSORS if diffusion else 2) * image
        return max(network, step)

    def activation_memory(self, batch: int, height: int, width: int, precision: str = "fp32") -> int:
        """Estimated peak bytes of the intermediate tensors of one network call on a
        ``(batch, 3, height, width)`` input (a size the network takes), in ``precision``."""
        device, _ = self._device_dtype()
        compute = COMPUTE_DTYPES.get(precision, torch.float32)
        key = (batch, height, width, compute)
        if key not in self._estimates:
            if self._meta_state is None:
                self._meta_state = meta_state(self.network)
            args, kwargs = self._network_call(batch, height, width)
            self._estimates[key] = peak_activation_bytes(self.network, args, kwargs, state=self._meta_state,
                                                         device=device, dtype=compute)
        activations = int(self._estimates[key] * ACTIVATION_BYTES.get(precision, 4) / 4)
        if compute != torch.float32:  # autocast keeps half copies of weights that require grad while it runs
            activations += sum(2 * p.numel() for p in self.network.parameters() if p.requires_grad)
        return activations

    def _tell(self, message: str) -> None:
        """Log a memory decision at INFO once (``restore`` shows these lines)."""
        if message not in self._told:
            self._told.add(message)
            log.info("%s", message)

    def plan_tile(self, batch: int, height: int, width: int, opts: RestoreOptions, device: torch.device,
                  precision: str) -> int | None:
        """``None`` when the whole batch fits the memory budget, else the tile side that fits with
        the least computation.

        The budget is ``opts.max_memory`` (else the device's free memory): what the run may add at
        its peak. A plan's estimate (:meth:`estimate_memory`) must stay within
        :data:`BUDGET_FRACTION` of it. The candidates are the tightest tiles for ``n = 2, 3, ...``
        tiles per side (the smallest multiple of the network's divisor covering the side with
        ``opts.tile_overlap``; halving the tile instead would cut 1024 pixels into 3 x 3 tiles of
        512, 2.25 times the pixels); of those that fit, the one computing the fewest (padded)
        pixels is taken. The decision is logged once, in one line, with the budget as given.

        Raises:
            InputError: the image does not fit even in tiles of :data:`MIN_AUTO_TILE` pixels,
                naming the estimate, the budget and the fix.
        """
        budget = int(opts.max_memory or available_bytes(device))
        target = int(budget * BUDGET_FRACTION)
        bucket = opts.padding_bucket
        try:
            need = self.estimate_memory(batch, height, width, precision, bucket=bucket)
        except (RuntimeError, NotImplementedError, TypeError) as exc:  # an op without a meta kernel
            self._tell(f"no memory estimate for {type(self.network).__name__} ({exc}); no automatic tiling")
            return None
        if need <= target:
            return None
        divisor = bucket_divisor(self.network, bucket)
        overlap = opts.tile_overlap
        candidates = tight_tiles(height, width, overlap, divisor, max(MIN_AUTO_TILE, divisor))

        def estimate(tile: int) -> int:
            return self.estimate_memory(batch, height, width, precision, tile=tile, tile_batch=opts.tile_batch,
                                        bucket=bucket)

        lo, hi = 0, len(candidates)  # the estimate shrinks with the tile: find the largest tile that fits
        while lo < hi:
            mid = (lo + hi) // 2
            if estimate(candidates[mid]) <= target:
                hi = mid
            else:
                lo = mid + 1
        if lo < len(candidates):
            tile = min(candidates[lo:], key=lambda t: (tile_cost(height, width, t, overlap, divisor), -t))
            count = tile_count(height, tile, overlap) * tile_count(width, tile, overlap)
            source = "" if opts.max_memory else " (free memory)"
            self._tell(f"tiling {width}x{height} in {count} tiles of {tile} px: ~{estimate(tile) / 2**30:.2f} GiB "
                       f"planned of the {budget / 2**30:.2f} GiB budget{source}; untiled ~{need / 2**30:.2f} GiB")
            return tile
        raise InputError(
            f"Restoring {batch} image(s) of {width}x{height} needs about {need / 2**30:.1f} GiB and does not fit "
            f"{budget / 2**30:.2f} GiB even in {MIN_AUTO_TILE}-pixel tiles; raise {option('max_memory', 'BYTES')}, "
            f"use bf16 ({option('precision', 'bf16')}), a smaller {option('batch', 'N')}, or free memory.")

    # -- running -------------------------------------------------------------------------------

    @torch.no_grad()
    def __call__(self, lq: torch.Tensor, *, generator: torch.Generator | Sequence[torch.Generator] | None = None,
                 options: RestoreOptions | None = None, progress: Progress | None = None,
                 noise: torch.Tensor | None = None, **option_values: Any) -> RestoreResult:
        """Restore ``lq`` as one batch.

        Args:
            lq: ``(B, 3, H, W)`` float RGB in [0, 1], any size.
            generator: a generator, or one per image (:func:`per_image_generators`); the only
                source of randomness.
            options: how to run (default: the pipeline's :attr:`options`).
            progress: ``progress(done, total)`` after each network evaluation.
            noise: the start noise of a diffusion run instead of drawing it from ``generator``
                (:func:`start_noise`): ``(B, 3, H, W)`` standard-normal ``z`` of
                ``x_T = sampler.noise_state(lq, noise=z)`` at the image's own size (the padding
                to the network's divisor happens inside each network call), or
                ``(B, 1 + S, 3, H, W)``: ``z``, then the ``S`` draws the solver's stochastic
                steps take, in order (all of them). The run is then fixed by the files alone.
            **option_values: :class:`RestoreOptions` fields replacing those of ``options``
                (``steps=10``, ``tile=512``, ``precision="bf16"``, ...).

        Returns:
            :class:`RestoreResult` with the image clamped to [0, 1] on ``lq``'s device.
        """
        check_image(lq, "lq")
        if not bool(torch.isfinite(lq).all()):
            raise InputError("The input image holds NaN or infinite values; restore finite images in [0, 1].")
        opts = options or self.options
        if option_values:
            opts = replace(opts, **option_values)
        device, dtype = self._device_dtype()
        precision = resolve_precision(opts.precision, device)
        x = lq.to(device=device, dtype=dtype)
        tile = opts.tile
        if tile is None and opts.auto_tile:
            tile = self.plan_tile(x.shape[0], x.shape[-2], x.shape[-1], opts, device, precision)
        bucket = opts.padding_bucket
        embedding = None
        if self.embedder is not None:
            with autocast(precision, device):
                embedding = self.embedder.embed_image(x)
        cond = Conditioning.from_embedding(None if embedding is None else embedding.to(device=device, dtype=dtype))
        if self.denoiser is not None:
            assert self.sampler is not None  # __init__ takes a denoiser only with its sampler
            denoiser = self._compiled.get(self.denoiser, device, denoiser=True) if opts.compile else self.denoiser
            x_T, draws = None, None
            if noise is not None:
                z, draws = start_noise(noise, x)
                x_T = self.sampler.noise_state(x, noise=z)
            out = sample(denoiser, self.sampler, x, cond, steps=opts.steps, generator=generator,
                         progress=progress, tile=tile, tile_overlap=opts.tile_overlap,
                         tile_batch=opts.tile_batch, precision=precision, bucket=bucket, x_T=x_T, noise=draws)
        else:
            assert self.backbone is not None  # __init__ takes a backbone when there is no denoiser
            if noise is not None:
                raise ConfigError(f"noise= is the start noise of a diffusion run; {type(self.backbone).__name__} "
                                  "restores in one shot and draws none. Leave it out.")
            backbone = self._compiled.get(self.backbone, device, denoiser=False) if opts.compile else self.backbone
            with autocast(precision, device):
                out = self._run_backbone(backbone, x, cond, replace(opts, tile=tile), bucket).to(dtype)
            if not bool(torch.isfinite(out).all()):
                raise NonFiniteError(f"{type(backbone).__name__} produced NaN or infinite values; check the weights "
                                     f"(NaN/Inf tensors), or run in fp32 ({option('precision', 'fp32')}).")
            if progress is not None:
                progress(1, 1)
        return RestoreResult(out.clamp_(0, 1).to(lq.device, lq.dtype), embedding)

    def _run_backbone(self, net: torch.nn.Module, x: torch.Tensor, cond: Conditioning, opts: RestoreOptions,
                      bucket: int | None) -> torch.Tensor:
        divisor = bucket_divisor(net, bucket)
        pad_mode = getattr(net, "pad_mode", "reflect")

        def run(lq: torch.Tensor, degradation: torch.Tensor | None, content: torch.Tensor | None,
                tokens: torch.Tensor | None) -> torch.Tensor:
            c = Conditioning(degradation=degradation, content=content, tokens=tokens)
            return padded_call(lambda image: net(image, c), (lq,), divisor, pad_mode)

        context = (cond.degradation, cond.content, cond.tokens)
        if opts.tile is None:
            return run(x, *context)
        return tiled_apply(run, (x,), tile=opts.tile, overlap=opts.tile_overlap, tile_batch=opts.tile_batch,
                           context=context)
