"""One-call API: restore or classify an image of any kind.

``daclip_kit.restore(image)`` and ``daclip_kit.classify(image)`` take a file path, a PIL image, a
numpy array (``H x W x 3`` or ``H x W``, uint8, uint16 or float in [0, 1]) or a tensor
(``(3, H, W)`` or ``(B, 3, H, W)`` float in [0, 1]). ``restore`` returns the same kind it was given
(a PIL image for a path, or a uint16 numpy array for the 16-bit kinds Pillow cannot hold); models
are built once per setting and reused, so repeated calls are cheap.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .factory import create_sampler
from .io import from_image_tensor, image_kind, pil_kind, to_image_tensor
from .pipelines.recipe import DEFAULT_EMBEDDER_WEIGHTS, with_overrides
from .weights import resolve_weights

if TYPE_CHECKING:
    from .core.pipeline import RestorationPipeline
    from .core.sampling import Progress
    from .pipelines.build import BuiltPipeline

log = logging.getLogger(__name__)

#: Settings that only change the sampler: applied per call to the cached networks.
_SAMPLER_KEYS = ("sampler", "steps")
#: Embedders already built (:func:`~daclip_kit.pipelines.build.load_embedder`): shared by
#: :func:`restore` and :func:`classify`.
_EMBEDDERS: dict[str, Any] = {}


def _key(value: str | Path | None) -> str | None:
    return None if value is None else str(value)


def _is_sampler_setting(key: str) -> bool:
    return key in _SAMPLER_KEYS or key.startswith("sampler.")


@functools.lru_cache(maxsize=2)
def _built(model: str, weights: str | None, embedder_weights: str | None, device: str | None, download: bool,
           search_dirs: tuple[str, ...], structure: tuple[tuple[str, Any], ...]) -> BuiltPipeline:
    """The networks of ``model`` (built once per weights, device and structural settings)."""
    from .pipelines.build import build_pipeline

    return build_pipeline(model, weights=weights, embedder_weights=embedder_weights, device=device,
                          download=download, search_dirs=search_dirs, overrides=dict(structure),
                          embedder_cache=_EMBEDDERS)


def _pipeline(model: str, weights: str | Path | None, embedder_weights: str | Path | None, device: str | None,
              download: bool, search_dirs: Sequence[str | Path],
              overrides: dict[str, Any]) -> tuple[BuiltPipeline, RestorationPipeline]:
    """A pipeline on the cached networks with this call's sampler settings."""
    from .core.pipeline import RestorationPipeline, RestoreOptions

    sampler_part = {k: v for k, v in overrides.items() if _is_sampler_setting(k)}
    structure = tuple(sorted((k, v) for k, v in overrides.items() if not _is_sampler_setting(k)))
    built = _built(model, _key(weights), _key(embedder_weights), device, download,
                   tuple(str(d) for d in search_dirs), structure)
    if not sampler_part:
        return built, built.pipeline
    key = repr(sorted(sampler_part.items()))
    if key not in built.variants:  # kept, so a compiled network and its memory estimate are reused
        recipe = with_overrides(built.recipe, sampler_part)
        base = built.pipeline
        if not recipe.sampler:
            return built, base
        sampler = create_sampler(recipe.sampler, **dict(recipe.sampler_config))
        built.variants[key] = RestorationPipeline(embedder=base.embedder, denoiser=base.denoiser, sampler=sampler,
                                                  options=RestoreOptions(steps=recipe.steps))
    return built, built.variants[key]


def _embedder(name: str, weights: str | None, device: str | None, model: str | None,
              search_dirs: Sequence[str | Path] = ()) -> Any:
    from .core.device import pick_device
    from .pipelines.build import load_embedder

    ref = weights if weights is not None or name != "daclip" else DEFAULT_EMBEDDER_WEIGHTS
    if ref is not None and name == "daclip":  # any model reference: a restorer gives its own DA-CLIP
        from .model import daclip_of

        path = daclip_of(ref, search_dirs=search_dirs).path
        if path is None:
            path = resolve_weights(ref, search_dirs=search_dirs)  # a named file not on disk: says where to get it
    else:
        path = resolve_weights(ref, search_dirs=search_dirs) if ref is not None else None
    return load_embedder(name, path, pick_device(device), {"model": model} if model else {}, cache=_EMBEDDERS)


def restore(image: Any, model: str = "irsde-universal", *, weights: str | Path | None = None,
            embedder_weights: str | Path | None = None, sampler: str | None = None, steps: int | None = None,
            settings: Mapping[str, Any] | None = None, seed: int = 0, tile: int | None = None,
            tile_overlap: int = 32, precision: str = "auto", compile: bool = False,
            max_memory: int | None = None, device: str | None = None, download: bool = True,
            search_dirs: Sequence[str | Path] = (), progress: Progress | None = None) -> Any:
    """Restore one image (or a batch tensor) with a named model.

    Args:
        image: a path, PIL image, numpy array or tensor (see the module docstring).
        model: a pipeline (``irsde-universal``, ``irsde-universal-fast``, ``wild-ir``) or a backbone
            name (``daclip-kit ls pipelines`` / ``ls backbones``).
        weights: the network's file, native folder or weights name; default the model's
            (downloaded on first use unless ``download=False``).
        embedder_weights: the embedding provider's, likewise.
        sampler: the sampler's name instead of the model's (``daclip-kit ls samplers``).
        steps: network evaluations instead of the model's.
        settings: other recipe overrides (``settings={"sampler.order": 3}``).
        seed: the seed of the image's noise.
        tile: restore in tiles of this size (bounded memory).
        tile_overlap: pixels shared by neighbouring tiles.
        precision: ``fp32``, ``bf16``, ``fp16`` or ``auto`` (bf16 on CUDA, fp32 on the CPU); the
            diffusion state stays fp32.
        compile: run the networks through ``torch.compile`` (CUDA graphs on CUDA).
        max_memory: bytes the run may use (default: the device's free memory); larger images are
            tiled automatically.
        device: ``"cpu"``, ``"cuda"``; default CUDA when available.
        search_dirs: folders searched first for named weights (``--weights-dir``).
        progress: ``progress(done, total)`` after each network evaluation.

    Networks are loaded once per model, weights, device and network setting; calls that only
    change the sampler, its settings or the steps reuse them.

    Returns:
        The restored image, of the same kind as ``image``. A path or PIL image gives a PIL
        image of its kind (grayscale as the luma of the result, 16-bit grayscale, alpha kept, the
        ICC profile in ``info["icc_profile"]``); a 16-bit colour or 16-bit gray + alpha file, which
        Pillow cannot hold, gives a uint16 numpy array ``H x W x C`` (C = 3, 4 or 2) at full
        precision. What must still be reduced (e.g. CMYK read as RGB) is said in one warning.

    Example:
        >>> import daclip_kit  # doctest: +SKIP
        >>> restored = daclip_kit.restore("photo.png", model="irsde-universal-fast")  # doctest: +SKIP
        >>> restored.save("restored.png")  # doctest: +SKIP
    """
    from .core.pipeline import RestoreOptions, per_image_generators

    overrides = dict(settings or {})
    if sampler is not None:
        overrides["sampler"] = sampler
    if steps is not None:
        overrides["steps"] = steps
    built, pipe = _pipeline(model, weights, embedder_weights, device, download, search_dirs, overrides)
    lq, kind = to_image_tensor(image)
    options = RestoreOptions(steps=pipe.options.steps, tile=tile, tile_overlap=tile_overlap, precision=precision,
                             compile=compile, max_memory=max_memory)
    out = pipe(lq.to(built.device), generator=per_image_generators(seed, lq.shape[0]), options=options,
               progress=progress).image
    like = image_kind(image) if kind == "path" else pil_kind(image) if kind == "pil" else None
    return from_image_tensor(out.cpu(), kind, like)


def load(ref: str | Path = "irsde-universal", *, daclip: str | Path | None = None, device: str | None = None,
         download: bool = True, search_dirs: Sequence[str | Path] = (),
         settings: Mapping[str, Any] | None = None) -> BuiltPipeline:
    """The whole model ``ref`` names, built for inference: network, sampler and its own DA-CLIP.

    Args:
        ref: a pipeline or backbone name (``"irsde-universal"``, ``"nafnet-gopro-w64"``), or any model
            reference :func:`daclip_kit.model.resolve_model` takes: a weights name, a released file, a
            native or model folder, a training run or checkpoint folder, ``hf://OWNER/NAME[@REV][/SUB]``,
            a distilled student.
        daclip: another DA-CLIP to run with (checked against the model's own: width and words).
        device: ``"cpu"``, ``"cuda"``; default CUDA when available.
        download: fetch missing named weights into the cache.
        search_dirs: folders searched first for named weights (``--weights-dir``).
        settings: recipe overrides (``{"sampler": "mrs", "steps": 10}``).

    Returns:
        A :class:`~daclip_kit.pipelines.build.BuiltPipeline`: ``.pipeline(lq, generator=...)``
        restores ``(B, 3, H, W)`` images in [0, 1]; ``.unit`` describes the model.

    Example:
        >>> pipe = daclip_kit.load("runs/irsde/checkpoints/step-00001000")  # doctest: +SKIP
        >>> pipe.unit.daclip.path  # the DA-CLIP it was trained with  # doctest: +SKIP
    """
    from .pipelines.build import build_pipeline
    from .plugins import get_registry

    text = str(ref)
    named = not isinstance(ref, Path) and (text in get_registry("pipelines") or text in get_registry("backbones"))
    model = text if named else "irsde-universal"
    return build_pipeline(model, weights=None if named else ref, embedder_weights=daclip, device=device,
                          download=download, search_dirs=search_dirs, overrides=dict(settings or {}),
                          embedder_cache=_EMBEDDERS)


def network_about(model: str = "irsde-universal", *, weights: str | Path | None = None,
                  embedder_weights: str | Path | None = None, device: str | None = None, download: bool = True,
                  search_dirs: Sequence[str | Path] = ()) -> str | None:
    """What the network of ``model`` is when its registry name does not say it, else ``None``: for a
    ``spandrel`` checkpoint its architecture, purpose and license. Uses the networks
    :func:`restore` loads (cached, so asking after a restore loads nothing again).

    Example:
        >>> daclip_kit.network_about("spandrel", weights="SwinIR-denoise.pth")  # doctest: +SKIP
        'SwinIR (Restoration [...]) via spandrel; license permissive: ...'
    """
    built, _ = _pipeline(model, weights, embedder_weights, device, download, search_dirs, {})
    return built.about


def classify(image: Any, *, embedder: str = "daclip", weights: str | Path | None = None,
             labels: Sequence[str] | None = None, model: str | None = None, device: str | None = None,
             search_dirs: Sequence[str | Path] = (), report: bool = False) -> dict[str, Any] | list[dict[str, Any]]:
    """Degradation probabilities of an image: DA-CLIP's degradation embedding against the labels.

    Args:
        image: a path, PIL image, numpy array or tensor (a ``(B, 3, H, W)`` batch gives a list).
        embedder: ``"daclip"`` (default) or ``"clip"``.
        weights: the embedder's weights (default ``daclip-vit-b-32``, which must be on disk).
        labels: candidate texts (default: the model's own degradation words, recorded in its
            folder; the ten for the released models).
        model: the embedder's bundled config (``daclip_ViT-L-14`` for Wild-IR's DA-CLIP).
        device: where to run.
        search_dirs: folders searched first for named weights.
        report: return the unknown-degradation check too (see Returns).

    The embedder is built once per weights and device, and shared with :func:`restore`. An image
    that looks like none of a calibrated model's degradations is logged as one warning line.

    Returns:
        ``{label: probability}`` sorted from most to least likely (a list of those for a batch);
        with ``report=True`` ``{"probabilities": {...}, "unknown_degradation": bool or None,
        "ood_score": float, "ood_threshold": float or None, "ood_statistic": str}`` (``None``: the
        model is not calibrated for these labels; the score is that of the calibration's statistic,
        e.g. the kNN distance in the degradation-embedding space; :mod:`daclip_kit.core.ood`).
    """
    import torch

    from .core.ood import unknown_report, warning_line

    emb = _embedder(embedder, _key(weights), device, model, search_dirs)
    lq, kind = to_image_tensor(image)
    with torch.no_grad():
        result = emb.classify(lq, None if labels is None else list(labels))
    calibration = emb.ood_calibration
    rows = []
    for i, pairs in enumerate(result.top_k(len(result.labels))):
        embedding = result.embeddings[i] if result.embeddings is not None else None
        ood = unknown_report(result.probs[i].tolist(), result.labels, calibration, embedding)
        if ood["unknown_degradation"]:
            log.warning("%s", warning_line(str(image) if kind == "path" else f"image {i}", ood))
        rows.append({"probabilities": dict(pairs), **ood} if report else dict(pairs))
    return rows if kind == "batch" else rows[0]
