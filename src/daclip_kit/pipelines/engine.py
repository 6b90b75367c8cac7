"""Restoring many images: the one batching layer.

:func:`restore_images` takes images one at a time (any sizes, any number), groups images of the
same size into batches of ``batch_size`` and runs each batch through a
:class:`~daclip_kit.core.pipeline.RestorationPipeline`. At most one partial batch per distinct size
is held, so memory does not grow with the number of inputs. Every image gets its own generator
seeded with ``seed`` (:func:`~daclip_kit.core.pipeline.per_image_generators`), so results do not
depend on batching, order or device.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Hashable, Iterable, Iterator, Mapping
from dataclasses import dataclass

import torch

from ..core.pipeline import RestorationPipeline, RestoreOptions, per_image_generators
from ..errors import ConfigError, ShapeError

#: ``progress(done, total)`` in units of one network evaluation of one image.
ImageProgress = Callable[[float, float], None]


@dataclass(frozen=True)
class Restored:
    """One restored image.

    Attributes:
        key: the key it was given with (a file path, an index).
        image: ``(1, 3, H, W)`` float RGB in [0, 1] on the CPU.
        seconds: wall time of its batch divided by the batch size.
    """

    key: Hashable
    image: torch.Tensor
    seconds: float


def restore_images(pipeline: RestorationPipeline, images: Iterable[tuple[Hashable, torch.Tensor]], *,
                   options: RestoreOptions | None = None, batch_size: int = 1, seed: int = 0,
                   device: torch.device | str | None = None, total: int | None = None,
                   progress: ImageProgress | None = None,
                   noise: Mapping[Hashable, torch.Tensor] | None = None) -> Iterator[Restored]:
    """Restore ``(key, image)`` pairs, yielding :class:`Restored` as batches finish.

    Args:
        pipeline: the model.
        images: ``(key, (1, 3, H, W) float tensor in [0, 1])`` pairs; consumed lazily.
        options: run options (default: the pipeline's).
        batch_size: images of one size per network call.
        seed: the seed of every image's generator.
        device: where to move each batch (default: the network's device).
        total: the number of images, when known, for ``progress``.
        progress: ``progress(done, total)`` in image-evaluations (``total * evaluations``).
        noise: each image's start noise by key, ``(1, 3, H, W)`` or ``(1, 1 + S, 3, H, W)``
            (:func:`~daclip_kit.core.pipeline.start_noise`), instead of drawing it from its
            generator; every key needs one.

    Yields:
        :class:`Restored`, in batch completion order (not necessarily input order).
    """
    if batch_size < 1:
        raise ConfigError(f"batch_size={batch_size} must be at least 1.")
    opts = options or pipeline.options
    per_image = pipeline.evaluations(opts)
    whole = None if total is None else float(total * per_image)
    done = 0.0
    pending: dict[tuple[int, ...], list[tuple[Hashable, torch.Tensor]]] = {}

    def run(batch: list[tuple[Hashable, torch.Tensor]]) -> Iterator[Restored]:
        nonlocal done
        lq = torch.cat([img for _, img in batch])
        if device is not None:
            lq = lq.to(device)
        start = time.perf_counter()
        base = done

        def on_step(k: int, _n: int) -> None:
            if progress is not None:
                progress(base + k * len(batch), whole if whole is not None else base + per_image * len(batch))

        given = None if noise is None else torch.cat([noise[key] for key, _ in batch])
        result = pipeline(lq, generator=per_image_generators(seed, len(batch)), options=opts, progress=on_step,
                          noise=given)
        out = result.image.float().cpu()
        seconds = (time.perf_counter() - start) / len(batch)
        done = base + per_image * len(batch)
        for j, (key, _) in enumerate(batch):
            yield Restored(key, out[j:j + 1], seconds)

    for key, image in images:
        if image.ndim != 4 or image.shape[0] != 1:
            raise ConfigError(f"image {key!r} must be a (1, 3, H, W) tensor, got shape {tuple(image.shape)}.")
        if noise is not None:
            if key not in noise:
                raise ConfigError(f"noise= has no start noise for image {key!r}; give one per image.")
            z = noise[key]
            if z.ndim not in (4, 5) or z.shape[0] != 1 or tuple(z.shape[-3:]) != tuple(image.shape[1:]):
                raise ShapeError(f"The start noise of image {key!r} has shape {tuple(z.shape)}; the image takes "
                                 f"{(1, *image.shape[1:])} (its own size, not padded), or (1, 1 + S, "
                                 f"{', '.join(map(str, image.shape[1:]))}) with the S later draws.")
        bucket = pending.setdefault(tuple(image.shape[1:]), [])
        bucket.append((key, image))
        if len(bucket) == batch_size:
            yield from run(pending.pop(tuple(image.shape[1:])))
    for bucket in list(pending.values()):
        yield from run(bucket)
