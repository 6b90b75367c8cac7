"""Restoration pipelines: embedder + denoiser + sampler, or embedder + one-shot backbone.

:func:`sample` is the reverse-diffusion loop; :class:`RestorationPipeline` wraps it (or a one-shot
backbone) with embedding, batching, padding, optional tiling and clamping.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch

from ..errors import ConfigError
from ..ops.padding import crop_to, pad_to_multiple
from ..ops.tiles import tiled_apply
from ..types import Conditioning, ImageEmbedding
from .backbone import Denoiser, RestorationBackbone
from .checks import check_image
from .embedder import EmbeddingProvider
from .sampler import Sampler
from .sampling import Progress, sample


@dataclass(frozen=True)
class RestoreResult:
    """Output of :class:`RestorationPipeline`.

    Attributes:
        image: ``(B, 3, H, W)`` restored images, float RGB in [0, 1], on the input's device.
        embedding: the embeddings the network was conditioned on (``None`` without an embedder).
    """

    image: torch.Tensor
    embedding: ImageEmbedding | None = None


def _cat_embeddings(parts: list[ImageEmbedding]) -> ImageEmbedding | None:
    if not parts:
        return None
    content = torch.cat([p.content for p in parts])
    degradation = None if parts[0].degradation is None else torch.cat([p.degradation for p in parts])
    return ImageEmbedding(content, degradation)


class RestorationPipeline:
    """Restore ``(B, 3, H, W)`` images in [0, 1].

    Give either ``denoiser`` and ``sampler`` (IR-SDE) or a one-shot ``backbone``; ``embedder`` is
    optional (networks without conditioning). The embedder sees each whole image (it resizes
    internally), also when the network runs on tiles.

    Example:
        >>> pipe = RestorationPipeline(embedder=daclip, denoiser=unet, sampler=sde)  # doctest: +SKIP
        >>> result = pipe(lq, steps=100, generator=torch.Generator().manual_seed(0))  # doctest: +SKIP
        >>> result.image.shape  # doctest: +SKIP
        torch.Size([1, 3, 256, 256])
    """

    def __init__(self, embedder: EmbeddingProvider | None = None, denoiser: Denoiser | None = None,
                 sampler: Sampler | None = None, backbone: RestorationBackbone | None = None):
        if backbone is not None and (denoiser is not None or sampler is not None):
            raise ConfigError("Give either backbone= (one-shot) or denoiser= with sampler=, not both.")
        if backbone is None and (denoiser is None or sampler is None):
            raise ConfigError("A diffusion pipeline needs both denoiser= and sampler= "
                              "(e.g. create_sampler('irsde')); a one-shot model goes in backbone=.")
        self.embedder = embedder
        self.denoiser = denoiser
        self.sampler = sampler
        self.backbone = backbone

    @property
    def network(self) -> torch.nn.Module:
        """The restoration network (denoiser or backbone)."""
        return self.denoiser if self.denoiser is not None else self.backbone

    def _device_dtype(self) -> tuple[torch.device, torch.dtype]:
        param = next(self.network.parameters(), None)
        if param is None:
            return torch.device("cpu"), torch.float32
        return param.device, param.dtype

    @torch.no_grad()
    def __call__(self, lq: torch.Tensor, *, steps: int | None = None, mode: str | None = None,
                 generator: torch.Generator | None = None, tile: int | None = None,
                 tile_overlap: int = 32, tile_batch: int = 1, batch_size: int | None = None,
                 progress: Progress | None = None) -> RestoreResult:
        """Restore ``lq``.

        Args:
            lq: ``(B, 3, H, W)`` float RGB in [0, 1], any size.
            steps, mode, generator: sampling options (diffusion pipelines only).
            tile: run the network on ``tile x tile`` tiles overlapping by ``tile_overlap`` pixels,
                ``tile_batch`` tiles per call (``None``: whole images).
            batch_size: images per network call (default: all of ``lq`` at once).
            progress: ``progress(done, total)`` over all network evaluations.

        Returns:
            :class:`RestoreResult` with the image clamped to [0, 1] on ``lq``'s device.
        """
        check_image(lq, "lq")
        device, dtype = self._device_dtype()
        batch_size = lq.shape[0] if batch_size is None else batch_size
        if batch_size < 1:
            raise ConfigError(f"batch_size={batch_size} must be at least 1.")
        chunks = list(torch.split(lq, batch_size))
        outputs, embeddings = [], []
        per_chunk = len(self.sampler.timesteps(steps)) if self.sampler is not None else 1
        for index, chunk in enumerate(chunks):
            x = chunk.to(device=device, dtype=dtype)
            embedding = None
            if self.embedder is not None:
                embedding = self.embedder.embed_image(x)
                embeddings.append(embedding)
                embedding = embedding.to(device=device, dtype=dtype)
            cond = Conditioning.from_embedding(embedding)

            def chunk_progress(done: int, total: int, offset: int = index * per_chunk) -> None:
                if progress is not None:
                    progress(offset + done, len(chunks) * per_chunk)

            if self.denoiser is not None:
                sampler = self.sampler
                if mode is not None and mode != getattr(sampler.config, "mode", mode):
                    import dataclasses

                    sampler = type(sampler)(dataclasses.replace(sampler.config, mode=mode))
                out = sample(self.denoiser, sampler, x, cond, steps=steps,
                             generator=generator, progress=chunk_progress, tile=tile,
                             tile_overlap=tile_overlap, tile_batch=tile_batch)
            else:
                out = self._run_backbone(x, cond, tile, tile_overlap, tile_batch)
                chunk_progress(1, 1)
            outputs.append(out.clamp_(0, 1).to(lq.device, lq.dtype))
        return RestoreResult(torch.cat(outputs), _cat_embeddings(embeddings))

    def _run_backbone(self, x: torch.Tensor, cond: Conditioning, tile: int | None, overlap: int,
                      tile_batch: int) -> torch.Tensor:
        net = self.backbone
        divisor = int(getattr(net, "size_divisor", 1) or 1)

        def run(lq: torch.Tensor, degradation, content, tokens) -> torch.Tensor:
            h, w = lq.shape[-2:]
            out = net(pad_to_multiple(lq, divisor),
                      Conditioning(degradation=degradation, content=content, tokens=tokens))
            return crop_to(out, h, w)

        context = (cond.degradation, cond.content, cond.tokens)
        if tile is None:
            return run(x, *context)
        return tiled_apply(run, (x,), tile=tile, overlap=overlap, tile_batch=tile_batch, context=context)
