"""Restoration pipelines: embedder + denoiser + sampler, or embedder + one-shot backbone.

:class:`RestorationPipeline` restores one batch: it embeds the whole images, runs the network
(through :func:`daclip_kit.sample` for denoisers), pads and crops by the network's padding rule,
optionally tiles, and clamps. How a run is carried out (steps, tiling) is one frozen
:class:`RestoreOptions`; grouping many images into batches is the job of
:func:`daclip_kit.pipelines.engine.restore_images`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace

import torch

from ..errors import ConfigError
from ..ops.padding import padded_call
from ..ops.tiles import tiled_apply
from ..types import Conditioning, ImageEmbedding
from .backbone import Denoiser, RestorationBackbone
from .checks import check_image
from .embedder import EmbeddingProvider
from .sampler import Sampler
from .sampling import Progress, sample


@dataclass(frozen=True, kw_only=True)
class RestoreOptions:
    """How a restoration run is carried out; made once (e.g. from the CLI) and passed down.

    Attributes:
        steps: network evaluations of a diffusion run (``None``: the pipeline's, else the sampler's
            default).
        tile: run the network on ``tile x tile`` tiles (``None``: whole images); bounds memory.
        tile_overlap: minimum overlap of neighbouring tiles in pixels.
        tile_batch: tiles per network call.
    """

    steps: int | None = None
    tile: int | None = None
    tile_overlap: int = 32
    tile_batch: int = 1

    def __post_init__(self) -> None:
        for name in ("steps", "tile"):
            value = getattr(self, name)
            if value is not None and value < 1:
                raise ConfigError(f"{name}={value} must be at least 1 (or None).")
        if self.tile_batch < 1:
            raise ConfigError(f"tile_batch={self.tile_batch} must be at least 1.")
        if self.tile is not None and not 0 <= self.tile_overlap < self.tile:
            raise ConfigError(f"tile_overlap={self.tile_overlap} must lie in [0, tile={self.tile}).")


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


class RestorationPipeline:
    """Restore a batch of ``(B, 3, H, W)`` images in [0, 1].

    Give either ``denoiser`` and ``sampler`` (IR-SDE and other diffusion networks) or a one-shot
    ``backbone``; ``embedder`` is optional (networks without conditioning). The embedder sees each
    whole image (it resizes internally), also when the network runs on tiles.

    Args:
        embedder: the embedding provider, or ``None``.
        denoiser, sampler: a diffusion network and its sampler.
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

    @property
    def network(self) -> torch.nn.Module:
        """The restoration network (denoiser or backbone)."""
        return self.denoiser if self.denoiser is not None else self.backbone

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

    @torch.no_grad()
    def __call__(self, lq: torch.Tensor, *, generator: torch.Generator | Sequence[torch.Generator] | None = None,
                 options: RestoreOptions | None = None, progress: Progress | None = None,
                 **option_values) -> RestoreResult:
        """Restore ``lq`` as one batch.

        Args:
            lq: ``(B, 3, H, W)`` float RGB in [0, 1], any size.
            generator: a generator, or one per image (:func:`per_image_generators`); the only
                source of randomness.
            options: how to run (default: the pipeline's :attr:`options`).
            progress: ``progress(done, total)`` after each network evaluation.
            **option_values: :class:`RestoreOptions` fields replacing those of ``options``
                (``steps=10``, ``tile=512``, ...).

        Returns:
            :class:`RestoreResult` with the image clamped to [0, 1] on ``lq``'s device.
        """
        check_image(lq, "lq")
        opts = options or self.options
        if option_values:
            opts = replace(opts, **option_values)
        device, dtype = self._device_dtype()
        x = lq.to(device=device, dtype=dtype)
        embedding = None
        if self.embedder is not None:
            embedding = self.embedder.embed_image(x)
        cond = Conditioning.from_embedding(None if embedding is None else embedding.to(device=device, dtype=dtype))
        if self.denoiser is not None:
            out = sample(self.denoiser, self.sampler, x, cond, steps=opts.steps, generator=generator,
                         progress=progress, tile=opts.tile, tile_overlap=opts.tile_overlap,
                         tile_batch=opts.tile_batch)
        else:
            out = self._run_backbone(x, cond, opts)
            if progress is not None:
                progress(1, 1)
        return RestoreResult(out.clamp_(0, 1).to(lq.device, lq.dtype), embedding)

    def _run_backbone(self, x: torch.Tensor, cond: Conditioning, opts: RestoreOptions) -> torch.Tensor:
        net = self.backbone
        divisor = int(getattr(net, "size_divisor", 1) or 1)
        pad_mode = getattr(net, "pad_mode", "reflect")

        def run(lq: torch.Tensor, degradation, content, tokens) -> torch.Tensor:
            c = Conditioning(degradation=degradation, content=content, tokens=tokens)
            return padded_call(lambda image: net(image, c), (lq,), divisor, pad_mode)

        context = (cond.degradation, cond.content, cond.tokens)
        if opts.tile is None:
            return run(x, *context)
        return tiled_apply(run, (x,), tile=opts.tile, overlap=opts.tile_overlap, tile_batch=opts.tile_batch,
                           context=context)
