"""What the web demo does, as plain functions (no Gradio): check an upload, classify it, restore it,
make the example photos.

Each function is a thin wrapper of the one-call API (:func:`daclip_kit.classify`,
:func:`daclip_kit.restore`), so the demo shows exactly what the library does and the models are
built once per setting and reused (the API caches them). The Gradio page in
:mod:`daclip_kit.demo.app` only wires these functions to widgets; the tests call them directly.

Images are ``(3, H, W)`` float RGB tensors in [0, 1] inside, PIL RGB images at the edges (what the
page shows and what :func:`run_restore` returns). Nothing here imports torch, PIL or Gradio at
module level.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

from ..errors import ConfigError, InputError, WeightsNotFoundError
from ..factory import create_degradation, create_sampler
from ..io import read_image, to_image_tensor, to_uint8, write_image
from ..pipelines.recipe import DEFAULT_EMBEDDER_WEIGHTS, get_recipe, with_overrides
from ..plugins import get_registry
from ..weights import resolve_weights

if TYPE_CHECKING:
    import torch
    from PIL import Image

    from ..specs import PipelineSpec

log = logging.getLogger(__name__)

#: Default upload limits: 4 megapixels (2048 x 2048) and 20 MB per file.
DEFAULT_MAX_PIXELS = 2048 * 2048
DEFAULT_MAX_UPLOAD_MB = 20.0
#: Bytes in a megabyte, as Gradio counts them when it refuses an upload.
MB = 1024 * 1024

#: Smallest tile the page accepts, and the largest overlap of neighbouring tiles.
MIN_TILE = 32
MAX_TILE_OVERLAP = 32

#: Bundled example photos and the degradation each is given: ``(photo, degradation)``. The photos
#: ship inside scikit-image and scikit-learn (``daclip_kit.data.mini.PHOTOS``); missing packages
#: only drop their examples.
EXAMPLES: tuple[tuple[str, str], ...] = (
    ("astronaut", "noisy"),
    ("chelsea", "motion-blurry"),
    ("coffee", "low-light"),
    ("rocket", "hazy"),
    ("china", "rainy"),
    ("flower", "jpeg-compressed"),
)


@dataclass(frozen=True)
class DemoSettings:
    """How the demo finds its models and what it accepts (the ``daclip-kit demo`` options).

    Attributes:
        weights: the network's weights (file, native folder or weights name) used for whichever
            model is chosen instead of its own (``--weights``); ``None``: each model's released weights.
        embedder_weights: DA-CLIP's weights, likewise (``--daclip-weights``).
        weights_dirs: folders searched first for named weights (``--weights-dir``).
        download: fetch missing named weights into the cache on first use (``--no-download``
            turns it off; a missing file is then an error saying which file goes where).
        device: ``"cpu"``, ``"cuda"``, ``"cuda:N"`` or ``None`` (CUDA when available).
        max_pixels: largest accepted image, in pixels (width x height).
        max_upload_mb: largest accepted file, in megabytes of :data:`MB` bytes.
        model, sampler, steps, seed, tile: what the page shows first (``sampler``/``steps``
            ``None``: the model's own; ``tile`` ``None``: the whole image at once).
    """

    weights: str | Path | None = None
    embedder_weights: str | Path | None = None
    weights_dirs: tuple[Path, ...] = ()
    download: bool = True
    device: str | None = None
    max_pixels: int = DEFAULT_MAX_PIXELS
    max_upload_mb: float = DEFAULT_MAX_UPLOAD_MB
    model: str = "irsde-universal"
    sampler: str | None = None
    steps: int | None = None
    seed: int = 0
    tile: int | None = None

    def __post_init__(self) -> None:
        if self.max_pixels < 1:
            raise ConfigError(f"--max-pixels must be at least 1, got {self.max_pixels}.")
        if not self.max_upload_mb > 0:
            raise ConfigError(f"--max-upload-mb must be above 0, got {self.max_upload_mb}.")
        if self.steps is not None and self.steps < 1:
            raise ConfigError(f"--steps must be at least 1, got {self.steps}.")
        if self.tile is not None and self.tile < MIN_TILE:
            raise ConfigError(f"--tile must be at least {MIN_TILE}, got {self.tile}.")
        if self.seed < 0:
            raise ConfigError(f"--seed must be 0 or more, got {self.seed}.")


class RestoreResult(NamedTuple):
    """What :func:`run_restore` returns (unpacks as ``restored, probabilities, message``).

    Attributes:
        restored: the restored image, PIL RGB, of the input's size.
        probabilities: DA-CLIP's ``{degradation: probability}``, most likely first, summing to 1
            (empty for a model without DA-CLIP).
        message: one line for people: size, elapsed seconds, model, sampler, steps, seed, device.
    """

    restored: Image.Image
    probabilities: dict[str, float]
    message: str


# -- choices ------------------------------------------------------------------------------------


def model_choices(settings: DemoSettings | None = None) -> list[str]:
    """The named models the page offers: the registered pipelines (``daclip-kit ls pipelines``),
    plus ``settings.model`` when that is a backbone name."""
    names = list(get_registry("pipelines").names())
    if settings is not None and settings.model not in names:
        names.insert(0, settings.model)
    return names


def sampler_choices() -> list[str]:
    """The registered samplers (``daclip-kit ls samplers``: ``irsde``, ``mrs``, ``heun``, ...)."""
    return list(get_registry("samplers").names())


def recipe_for(model: str, sampler: str | None = None, weights: str | Path | None = None) -> PipelineSpec:
    """The recipe of ``model`` restored with ``sampler`` (``None``: its own, or the one stored with
    ``weights`` when that is a network folder written by ``daclip-kit train``, e.g. a distilled
    student's K-step sampler, as ``restore`` does).

    Raises:
        UnknownComponentError: an unknown model or sampler, listing the registered ones.
        ConfigError: a sampler for a one-shot model.
    """
    recipe = get_recipe(model)
    if weights is not None and Path(weights).is_dir():
        from ..pipelines.build import trained_sampler

        recipe = trained_sampler(recipe, Path(weights))
    if sampler and recipe.sampler:
        get_registry("samplers").get(sampler)  # an unknown name lists the registered samplers
        recipe = with_overrides(recipe, {"sampler": sampler})
    return recipe


def step_range(model: str, sampler: str | None = None, weights: str | Path | None = None) -> tuple[int, int] | None:
    """``(default, maximum)`` network evaluations of ``model`` with ``sampler`` (and the sampler
    stored with ``weights``, :func:`recipe_for`): the recipe's steps (else the sampler's default)
    and the sampler's ``T``. ``None`` for a one-shot model."""
    recipe = recipe_for(model, sampler, weights)
    if not recipe.sampler:
        return None
    instance = create_sampler(recipe.sampler, **dict(recipe.sampler_config))
    default = len(instance.timesteps(recipe.steps))
    top = getattr(getattr(instance, "config", None), "T", None) or default
    return default, max(int(top), default)


# -- input checks -------------------------------------------------------------------------------


def _pixels(count: int) -> str:
    return f"{count / 1e6:.1f} megapixels" if count >= 100_000 else f"{count} pixels"


def _too_many_pixels(width: int, height: int, settings: DemoSettings) -> InputError | None:
    if width * height <= settings.max_pixels:
        return None
    return InputError(f"The image is {width}x{height} ({_pixels(width * height)}), above this demo's limit of "
                      f"{_pixels(settings.max_pixels)}; downscale it, or restart the demo with a larger --max-pixels.")


def load_input(image: Any, settings: DemoSettings | None = None) -> torch.Tensor:
    """Check an upload against the limits and read it as a ``(3, H, W)`` float RGB tensor in [0, 1].

    Args:
        image: a file path (what the page uploads), a PIL image, a numpy array (``H x W x 3`` or
            ``H x W``, uint8 or float in [0, 1]) or a ``(3, H, W)`` tensor; ``None`` is an error.
        settings: the limits (``max_pixels``, ``max_upload_mb``); default :class:`DemoSettings`.

    Raises:
        InputError: no image, a file or image above the limits, or an unreadable file; the
            message says what to do.
    """
    settings = settings or DemoSettings()
    if image is None or (isinstance(image, str) and not image.strip()):
        raise InputError("No image: upload a photo or pick one of the examples.")
    if isinstance(image, (str, Path)):
        path = Path(image)
        if not path.is_file():
            raise InputError(f"Image {str(path)!r} does not exist; upload it again.")
        size_mb = path.stat().st_size / MB
        if size_mb > settings.max_upload_mb:
            raise InputError(f"The file is {size_mb:.1f} MB, above this demo's limit of {settings.max_upload_mb:g} "
                             "MB; upload a smaller file, or restart the demo with a larger --max-upload-mb.")
        from PIL import Image, UnidentifiedImageError

        try:
            with Image.open(path) as im:  # reads the header only: the size is known before decoding
                width, height = im.size
        except Image.DecompressionBombError:
            raise InputError("The image is far too large to decode safely; downscale it first.") from None
        except (UnidentifiedImageError, OSError) as exc:
            raise InputError(f"Cannot read the upload as an image ({exc}); use PNG, JPEG, WebP or TIFF.") from None
        problem = _too_many_pixels(width, height, settings)
        if problem:
            raise problem
        return read_image(path)[0]
    tensor, _kind = to_image_tensor(image)
    if tensor.shape[0] != 1:
        raise InputError(f"The demo restores one image at a time, got a batch of {tensor.shape[0]}.")
    problem = _too_many_pixels(tensor.shape[-1], tensor.shape[-2], settings)
    if problem:
        raise problem
    return tensor[0]


def to_pil(image: torch.Tensor) -> Image.Image:
    """A ``(3, H, W)`` or ``(1, 3, H, W)`` float image in [0, 1] as a PIL RGB image (rounded)."""
    from PIL import Image


    return Image.fromarray(to_uint8(image), mode="RGB")


# -- models -------------------------------------------------------------------------------------


def _resolve(ref: str | Path, settings: DemoSettings, role: str, flag: str) -> Path:
    """``restore``'s weights rule: an explicit path as it is, a name from ``--weights-dir``, the
    cache, or a download; a missing file says which file goes where and which option to use."""
    try:
        return resolve_weights(ref, download=settings.download, search_dirs=settings.weights_dirs)
    except WeightsNotFoundError as exc:
        raise WeightsNotFoundError(f"The {role} weights are missing. {exc} For this demo: restart it with "
                                   f"--weights-dir DIR (a folder holding the file) or {flag} FILE.") from None


def network_file(model: str, settings: DemoSettings) -> Path:
    """The network weights of ``model``, resolved as ``daclip-kit restore`` does: ``--weights``,
    else the model's named weights from ``--weights-dir``, the cache or a download (unless
    ``--no-download``).

    Raises:
        WeightsNotFoundError: the file is missing; the message says which file goes where.
        UnknownComponentError: an unknown model.
    """
    recipe = recipe_for(model)
    ref = settings.weights if settings.weights is not None else recipe.weights
    if not ref:
        raise WeightsNotFoundError(f"{model!r} has no released weights; restart the demo with "
                                   "--weights FILE_OR_FOLDER.")
    return _resolve(ref, settings, "network", "--weights")


def embedder_file(model: str, settings: DemoSettings) -> tuple[Path | None, str | None]:
    """``(DA-CLIP weights, DA-CLIP config name)`` of ``model`` (``--daclip-weights``, else the
    model's named weights, found like :func:`network_file`); ``(None, None)`` for a model
    without DA-CLIP.

    Raises:
        WeightsNotFoundError: the file is missing; the message says which file goes where.
        UnknownComponentError: an unknown model.
    """
    recipe = recipe_for(model)
    if not recipe.embedder:
        return None, None
    ref = settings.embedder_weights if settings.embedder_weights is not None else (
        recipe.embedder_weights or DEFAULT_EMBEDDER_WEIGHTS)
    return _resolve(ref, settings, "DA-CLIP", "--daclip-weights"), recipe.embedder_config.get("model")


def run_classify(image: Any, model: str = "irsde-universal", *, settings: DemoSettings | None = None
                 ) -> dict[str, float]:
    """DA-CLIP's degradation probabilities of an image (what the model thinks is wrong with it).

    Args:
        image: see :func:`load_input`.
        model: the named model whose DA-CLIP is asked (Wild-IR has its own ViT-L/14).
        settings: weights and limits.

    Returns:
        ``{degradation: probability}`` over the DA-CLIP's own degradation words (the ten for the
        released models), most likely first, summing to 1; ``{}`` for a model without DA-CLIP.

    Raises:
        InputError, WeightsNotFoundError, UnknownComponentError (clear one-line messages).
    """
    return classify_report(image, model, settings=settings)["probabilities"]


def classify_report(image: Any, model: str = "irsde-universal", *, settings: DemoSettings | None = None
                    ) -> dict[str, Any]:
    """:func:`run_classify` with the unknown-degradation check: ``daclip_kit.classify(...,
    report=True)``'s ``{"probabilities", "unknown_degradation", "ood_score", "ood_threshold"}``
    (``{"probabilities": {}, "unknown_degradation": None, ...}`` for a model without DA-CLIP)."""
    settings = settings or DemoSettings()
    return _classify(load_input(image, settings), model, settings)


def _classify(lq, model: str, settings: DemoSettings) -> dict[str, Any]:
    import daclip_kit

    from ..core.device import pick_device

    emb, emb_model = embedder_file(model, settings)
    if emb is None:
        return {"probabilities": {}, "unknown_degradation": None, "ood_score": None, "ood_threshold": None}
    return daclip_kit.classify(lq, weights=emb, model=emb_model, device=str(pick_device(settings.device)),
                               report=True)


def unknown_note(report: Mapping[str, Any]) -> str:
    """The sentence the demo shows for an image that looks like none of the model's degradations
    (``""`` otherwise)."""
    if not report.get("unknown_degradation"):
        return ""
    return (f" This photo looks like none of the degradations this DA-CLIP knows (top probability "
            f"{report['ood_score']:.0%}, below its calibrated {report['ood_threshold']:.0%}): the guess and the "
            "restoration may be unreliable.")


def run_restore(image: Any, model: str = "irsde-universal", sampler: str | None = None, steps: int | None = None,
                seed: int = 0, tile: int | None = None, *, settings: DemoSettings | None = None,
                progress: Callable[[int, int], None] | None = None) -> RestoreResult:
    """Classify and restore one image with a named model: what the demo's Restore button does.

    Args:
        image: a file path, PIL image, numpy array or ``(3, H, W)`` tensor (see :func:`load_input`).
        model: a pipeline (``irsde-universal``, ``irsde-universal-fast``, ``wild-ir``, ...).
        sampler: a registered sampler (``irsde``, ``mrs``, ``heun``); ``None``: the model's.
        steps: network evaluations, at least 1; ``None``: the model's default.
        seed: seed of the sampler's noise (same seed, same result).
        tile: restore in tiles of this size, at least :data:`MIN_TILE` (bounded memory; neighbours
            overlap by :func:`tile_overlap`); ``None`` or ``0``: the whole image at once.
        settings: weights, device and limits; default :class:`DemoSettings`.
        progress: ``progress(done, total)`` after each network evaluation.

    Returns:
        :class:`RestoreResult` ``(restored PIL image of the input's size, {degradation:
        probability}, message)``.

    Raises:
        InputError: no image or one above the limits; ConfigError: bad steps, seed or tile;
        WeightsNotFoundError: a missing weights file (which file goes where);
        UnknownComponentError: an unknown model or sampler. Every message is one readable line.
    """
    import daclip_kit

    from ..core.device import pick_device

    settings = settings or DemoSettings()
    steps = _whole("steps", steps, minimum=1)
    tile = _whole("tile", tile, minimum=0) or None
    if tile is not None and tile < MIN_TILE:
        raise ConfigError(f"tile must be 0 (the whole image at once) or at least {MIN_TILE}, got {tile}.")
    seed = _whole("seed", seed, minimum=0)
    if seed is None:
        seed = 0
    lq = load_input(image, settings)
    recipe = recipe_for(model, sampler, settings.weights)
    net = network_file(model, settings)
    emb, emb_model = embedder_file(model, settings)
    device = pick_device(settings.device)
    start = time.perf_counter()
    report = _classify(lq, model, settings)
    probabilities: dict[str, float] = report["probabilities"]
    out = daclip_kit.restore(lq, model=model, weights=net, embedder_weights=emb,
                             sampler=sampler if recipe.sampler else None, steps=steps if recipe.sampler else None,
                             seed=seed, tile=tile, tile_overlap=tile_overlap(tile), device=str(device),
                             download=settings.download,
                             progress=progress)
    seconds = time.perf_counter() - start
    restored = to_pil(out)
    message = _summary(lq, seconds, model, recipe, steps, seed, tile, device, probabilities) + unknown_note(report)
    about = daclip_kit.network_about(model, weights=net, embedder_weights=emb, device=str(device),
                                     download=settings.download)
    return RestoreResult(restored, probabilities, f"{message} Network: {about}." if about else message)


def tile_overlap(tile: int | None) -> int:
    """Overlap of neighbouring tiles: a quarter of the tile, at most :data:`MAX_TILE_OVERLAP` pixels."""
    return 0 if tile is None else min(MAX_TILE_OVERLAP, tile // 4)


def _whole(name: str, value: Any, *, minimum: int) -> int | None:
    """A whole number from a widget (``2``, ``2.0``, ``"2"``) or ``None``; a clear error otherwise."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise ConfigError(f"{name} must be a whole number, got {value!r}.") from None
    if number != int(number):
        raise ConfigError(f"{name} must be a whole number, got {value!r}.")
    if number < minimum:
        raise ConfigError(f"{name} must be at least {minimum}, got {int(number)}.")
    return int(number)


def _summary(lq, seconds: float, model: str, recipe, steps: int | None, seed: int, tile: int | None, device,
             probabilities: Mapping[str, float]) -> str:
    height, width = lq.shape[-2:]
    parts = [f"Restored {width}x{height} in {seconds:.1f} s with {model}"]
    if recipe.sampler:
        evaluations = steps if steps is not None else step_range(model, recipe.sampler)[0]
        parts.append(f" ({recipe.sampler}, {evaluations} steps, seed {seed}")
        parts.append(f", tiles of {tile}" if tile else "")
        parts.append(")")
    parts.append(f" on {device}.")
    if probabilities:
        label, p = next(iter(probabilities.items()))
        parts.append(f" DA-CLIP sees: {label} ({p:.0%}).")
    return "".join(parts)


# -- examples -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Example:
    """One example of the page: a bundled photo degraded by a daclip-kit degradation.

    Attributes:
        path: the degraded PNG.
        photo: the photo's name (``"astronaut"``).
        degradation: the degradation applied (one of the ten words).
    """

    path: Path
    photo: str
    degradation: str

    @property
    def label(self) -> str:
        """``"astronaut, noisy"``."""
        return f"{self.photo}, {self.degradation}"


def make_examples(folder: str | Path, *, longest: int = 320, seed: int = 0,
                  pairs: tuple[tuple[str, str], ...] = EXAMPLES) -> list[Example]:
    """Write the example photos into ``folder`` (``<photo>-<degradation>.png``), at start-up.

    The clean photos ship inside installed packages (scikit-image, scikit-learn); each is scaled
    so its longer side is ``longest`` pixels and degraded with ``daclip_kit.create_degradation``.
    With none of those packages installed, a drawn scene stands in for each photo.

    Args:
        folder: where to write (created).
        longest: the longer side of each example, in pixels.
        seed: seed of the degradations (the same seed writes the same files).
        pairs: ``(photo, degradation)`` pairs; photos from ``daclip_kit.data.mini.PHOTOS``.

    Returns:
        the examples written, in the order of ``pairs`` (unavailable photos left out).
    """
    import torch

    from ..data.mini import PHOTOS, load_photo, synthetic_scene
    from ..ops.resize import fit_longest

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    loaders = {name: load for name, load, _caption in PHOTOS}
    out: list[Example] = []
    for i, (photo, degradation) in enumerate(pairs):
        if photo not in loaders:
            raise ConfigError(f"Unknown example photo {photo!r}; use one of {', '.join(loaders)}.")
        try:
            clean = load_photo(loaders[photo])
        except Exception as exc:  # noqa: BLE001 - a missing optional package only drops its example
            log.info("example photo %s unavailable: %s", photo, exc)
            continue
        clean = fit_longest(clean, longest).clamp(0, 1)
        lq = create_degradation(degradation)(clean, generator=torch.Generator().manual_seed(seed + i))
        out.append(Example(write_image(folder / f"{photo}-{degradation}.png", lq), photo, degradation))
    if not out:
        for i, (_photo, degradation) in enumerate(pairs[:3]):
            scene = fit_longest(synthetic_scene(torch.Generator().manual_seed(seed + i)), longest).clamp(0, 1)
            lq = create_degradation(degradation)(scene, generator=torch.Generator().manual_seed(seed + i))
            out.append(Example(write_image(folder / f"scene{i}-{degradation}.png", lq), f"scene {i}", degradation))
    return out
