"""What the web demo does, as plain functions (no Gradio): check an upload, classify it, restore it,
make the example photos.

Each function is a thin wrapper of the one-call API (:func:`daclip_kit.classify`,
:func:`daclip_kit.restore`), so the demo shows exactly what the library does and the models are
built once per setting and reused (the API caches them). The model comes through the one resolver
(:func:`daclip_kit.model.resolve_model`): ``--weights`` may be any model reference, its recorded
sampler (a distilled student's K steps) and its own DA-CLIP come with it, and the bars show that
DA-CLIP's words (:func:`model_weights`). The Gradio page in :mod:`daclip_kit.demo.app` only wires
these functions to widgets; the tests call them directly.

Images are ``(3, H, W)`` float RGB tensors in [0, 1] inside, PIL RGB images at the edges (what the
page shows and what :func:`run_restore` returns). Nothing here imports torch, PIL or Gradio at
module level.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple, cast

from ..errors import ConfigError, InputError, WeightsNotFoundError
from ..factory import create_degradation, create_sampler
from ..io import read_image, to_image_tensor, to_uint8, write_image
from ..model import REFERENCE_KINDS, ModelUnit, PairedDaclip, pair, provide, resolve_model
from ..pipelines.recipe import get_recipe, with_overrides
from ..plugins import get_registry
from ..weights.paths import default_cache_dir

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
        weights: the model used for whichever model is chosen instead of its own (``--weights``):
            any reference :func:`daclip_kit.model.resolve_model` takes (weights name, file, native
            or model folder, training run or checkpoint folder, ``hf://``, a distilled student);
            its recorded sampler and DA-CLIP come with it. ``None``: each model's released weights.
        embedder_weights: another DA-CLIP to run with (``--daclip-weights``, any reference; checked
            against the model's own). ``None``: the model's own DA-CLIP, else the recipe's.
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


def recipe_for(model: str, sampler: str | None = None, weights: str | Path | None = None, *,
               weights_dirs: Sequence[str | Path] = ()) -> PipelineSpec:
    """The recipe of ``model`` restored with ``sampler`` (``None``: its own, or the one recorded with
    ``weights``, e.g. a distilled student's K-step sampler, as ``restore`` does).

    Args:
        model: a pipeline or backbone name.
        sampler: a registered sampler instead of the model's.
        weights: the model's weights, any reference :func:`daclip_kit.model.resolve_model` takes
            (``--weights``); ``None``: the model's named weights, which record no sampler.
        weights_dirs: folders searched first for named weights (``--weights-dir``).

    Raises:
        UnknownComponentError: an unknown model or sampler, listing the registered ones.
        ConfigError: a sampler for a one-shot model; ``weights`` that are a DA-CLIP.
        WeightsNotFoundError: ``weights`` that do not exist or hold no model.
    """
    recipe = get_recipe(model)
    if weights is not None:
        from ..pipelines.build import trained_sampler

        unit = weights_unit(weights, weights_dirs)
        recipe = trained_sampler(recipe, unit.sampler, unit.network or weights)
    if sampler and recipe.sampler:
        get_registry("samplers").get(sampler)  # an unknown name lists the registered samplers
        recipe = with_overrides(recipe, {"sampler": sampler})
    return recipe


def step_range(model: str, sampler: str | None = None, weights: str | Path | None = None, *,
               weights_dirs: Sequence[str | Path] = ()) -> tuple[int, int] | None:
    """``(default, maximum)`` network evaluations of ``model`` with ``sampler`` (and the sampler
    recorded with ``weights``, :func:`recipe_for`): the recipe's steps (else the sampler's default)
    and the sampler's ``T``. ``None`` for a one-shot model."""
    return recipe_steps(recipe_for(model, sampler, weights, weights_dirs=weights_dirs))


def recipe_steps(recipe: PipelineSpec) -> tuple[int, int] | None:
    """``(default, maximum)`` network evaluations of a recipe (:func:`step_range`)."""
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


#: Models resolved by :func:`weights_unit`, by reference, ``--weights-dir`` folders and cache folder.
_UNITS: dict[tuple[str, tuple[str, ...], str], ModelUnit] = {}


def weights_unit(ref: str | Path, weights_dirs: Sequence[str | Path] = ()) -> ModelUnit:
    """The model ``ref`` names, as :func:`daclip_kit.model.resolve_model` finds it.

    A model found whole on disk is remembered for the life of the process (a run folder's or a Hub
    model's DA-CLIP is checked against its SHA-256 once, not on every click); one with files still to
    download is resolved again next time, so the downloaded files are found.

    Raises:
        WeightsNotFoundError: ``ref`` does not exist or holds no model (the message says what it expects).
        ConfigError: ``ref`` is a DA-CLIP alone, not a restoration network.
        UnknownComponentError: neither a path nor a registered weights name.
    """
    key = (str(ref), tuple(str(d) for d in weights_dirs), str(default_cache_dir()))
    unit = _UNITS.get(key)
    if unit is None:
        unit = resolve_model(ref, search_dirs=weights_dirs)
        if unit.is_daclip:
            raise ConfigError(f"{ref} is a DA-CLIP, not a restoration network; restart the demo with it as "
                              "--daclip-weights and a restorer as --weights.")
        if unit.network_spec is None and (unit.daclip is None or not (unit.daclip.spec or unit.daclip.missing)):
            _UNITS[key] = unit
    return unit


def model_unit(model: str, settings: DemoSettings) -> ModelUnit:
    """The network the demo runs for ``model``: ``--weights`` (any reference), else the model's
    named weights, resolved by :func:`weights_unit` (named weights not on disk stay to be provided).

    Raises:
        WeightsNotFoundError: the model has no released weights and none were given, or ``--weights``
            names nothing usable.
        UnknownComponentError: an unknown model.
    """
    recipe = get_recipe(model)
    ref = settings.weights if settings.weights is not None else recipe.weights
    if not ref:
        raise WeightsNotFoundError(f"{model!r} has no released weights; restart the demo with "
                                   "--weights FILE_OR_FOLDER.")
    return weights_unit(ref, settings.weights_dirs)


def model_daclip(model: str, settings: DemoSettings, unit: ModelUnit | None = None) -> PairedDaclip | None:
    """The DA-CLIP ``model`` runs with, as :func:`daclip_kit.restore` pairs it
    (:func:`daclip_kit.model.pair`): ``--daclip-weights`` (checked against the model's own), else the
    one the model was trained with, else the recipe's; ``None`` for a model without DA-CLIP. Its
    files may still be missing (:func:`model_weights` provides them).

    Raises:
        ConfigError: ``--daclip-weights`` contradicts the model's own DA-CLIP (width or words).
        WeightsNotFoundError, UnknownComponentError: as :func:`model_unit`.
    """
    recipe = get_recipe(model)
    if not recipe.embedder:
        return None
    unit = unit if unit is not None else model_unit(model, settings)
    default = recipe.embedder_weights if recipe.embedder == "daclip" else None
    return pair(unit, settings.embedder_weights, default, search_dirs=settings.weights_dirs)


def model_weights(model: str, settings: DemoSettings, *, network: bool = True
                  ) -> tuple[ModelUnit, PairedDaclip | None]:
    """``(network, DA-CLIP)`` of ``model`` on disk (:func:`model_unit`, :func:`model_daclip`):
    named files missing locally are downloaded together (unless ``--no-download``), or named in one
    error. With ``network=False`` only the DA-CLIP is provided (the bars need nothing else).

    Raises:
        WeightsNotFoundError: files are missing and cannot be downloaded; the message names each
            file, where it goes, and how to restart the demo with it.
        ConfigError, UnknownComponentError: as :func:`model_daclip`.
    """
    unit = model_unit(model, settings)
    daclip = model_daclip(model, settings, unit)
    wanted = unit if network else replace(unit, network_spec=None)
    roles = []
    if wanted.network_spec is not None:
        roles.append(("network", "--weights"))
    if daclip is not None and (daclip.spec is not None or daclip.missing):
        roles.append(("DA-CLIP", "--daclip-weights"))
    try:
        return provide(wanted, daclip, download=settings.download, search_dirs=settings.weights_dirs)
    except WeightsNotFoundError as exc:
        if not roles:
            raise
        which = " and ".join(role for role, _ in roles)
        flags = " ".join(f"{flag} FILE" for _, flag in roles)
        files = "the file" if len(roles) == 1 else "the files"
        raise WeightsNotFoundError(f"The {which} weights are missing: {exc} For this demo: restart it with "
                                   f"--weights-dir DIR (a folder holding {files}) or {flags}.") from None


def weights_summary(model: str, settings: DemoSettings) -> str:
    """What the page says about ``model``: the recipe's summary for its released weights; with
    ``--weights`` or ``--daclip-weights``, which weights and which DA-CLIP (and its words) run
    instead, e.g. ``"runs/irsde (training run folder, step 800) with its own DA-CLIP (4 words: noisy,
    hazy, low-light, jpeg-compressed)"``.

    Raises:
        the errors of :func:`model_daclip`.
    """
    recipe = get_recipe(model)
    if settings.weights is None and settings.embedder_weights is None:
        return recipe.summary
    unit = model_unit(model, settings)
    daclip = model_daclip(model, settings, unit)
    if settings.weights is None:
        text = f"{recipe.name} with its released network ({recipe.weights})"
    else:
        kind = REFERENCE_KINDS.get(unit.kind, unit.kind).split(" (")[0]
        step = unit.provenance.get("step")
        text = f"{settings.weights} ({kind}" + (f", step {step})" if step is not None else ")")
    if daclip is None:
        return text + " without DA-CLIP"
    own = settings.embedder_weights is None and unit.daclip is not None
    text += " with its own DA-CLIP" if own else f" with the DA-CLIP {settings.embedder_weights or daclip.source}"
    if daclip.words:
        text += f" ({len(daclip.words)} words: {', '.join(daclip.words)})"
    return text


def run_classify(image: Any, model: str = "irsde-universal", *, settings: DemoSettings | None = None
                 ) -> dict[str, float]:
    """DA-CLIP's degradation probabilities of an image (what the model thinks is wrong with it).

    Args:
        image: see :func:`load_input`.
        model: the named model whose DA-CLIP is asked (Wild-IR has its own ViT-L/14; a model given
            with ``--weights`` its own, the one it was trained with: :func:`model_daclip`).
        settings: weights and limits.

    Returns:
        ``{degradation: probability}`` over the DA-CLIP's own degradation words (the ten for the
        released models; every word of a DA-CLIP trained on others), most likely first, summing to
        1; ``{}`` for a model without DA-CLIP.

    Raises:
        InputError, WeightsNotFoundError, UnknownComponentError (clear one-line messages).
    """
    return classify_report(image, model, settings=settings)["probabilities"]


def classify_report(image: Any, model: str = "irsde-universal", *, settings: DemoSettings | None = None
                    ) -> dict[str, Any]:
    """:func:`run_classify` with the unknown-degradation check: ``daclip_kit.classify(...,
    report=True)``'s ``{"probabilities", "unknown_degradation", "ood_score", "ood_threshold",
    "ood_statistic"}`` (``{"probabilities": {}, "unknown_degradation": None, ...}`` for a model
    without DA-CLIP)."""
    settings = settings or DemoSettings()
    lq = load_input(image, settings)
    _unit, daclip = model_weights(model, settings, network=False)
    return _classify(lq, model, settings, daclip)


def _classify(lq, model: str, settings: DemoSettings, daclip: PairedDaclip | None) -> dict[str, Any]:
    """``classify``'s report with ``daclip``, the DA-CLIP ``model`` runs with (on disk: :func:`model_weights`)."""
    import daclip_kit

    from ..core.device import pick_device

    if daclip is None or daclip.path is None:
        return {"probabilities": {}, "unknown_degradation": None, "ood_score": None, "ood_threshold": None,
                "ood_statistic": None}
    return daclip_kit.classify(lq, weights=daclip.path, model=get_recipe(model).embedder_config.get("model"),
                               device=str(pick_device(settings.device)), search_dirs=settings.weights_dirs,
                               report=True)


def unknown_note(report: Mapping[str, Any]) -> str:
    """The sentence the demo shows for an image that looks like none of the model's degradations
    (``""`` otherwise)."""
    if not report.get("unknown_degradation"):
        return ""
    score, threshold = report["ood_score"], report["ood_threshold"]
    statistic = report.get("ood_statistic") or "max_prob"
    if statistic == "max_prob":
        why = f"top probability {score:.0%}, below its calibrated {threshold:.0%}"
    else:
        what = "k-NN distance" if statistic == "knn" else "Mahalanobis distance"
        why = (f"its degradation embedding lies {score:.2f} from the ones it knows ({what}), beyond its "
               f"calibrated {threshold:.2f}")
    return (f" This photo looks like none of the degradations this DA-CLIP knows ({why}): the guess and the "
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
    seed = _whole("seed", seed, minimum=0) or 0
    lq = load_input(image, settings)
    recipe = recipe_for(model, sampler, settings.weights, weights_dirs=settings.weights_dirs)
    _unit, daclip = model_weights(model, settings)  # every missing file named at once, before any work
    device = pick_device(settings.device)
    start = time.perf_counter()
    report = _classify(lq, model, settings, daclip)
    probabilities: dict[str, float] = report["probabilities"]
    # the references as given: restore resolves and pairs them as model_weights did
    refs = {"weights": settings.weights, "embedder_weights": settings.embedder_weights, "device": str(device),
            "download": settings.download, "search_dirs": settings.weights_dirs}
    out = daclip_kit.restore(lq, model=model, sampler=sampler if recipe.sampler else None,
                             steps=steps if recipe.sampler else None, seed=seed, tile=tile,
                             tile_overlap=tile_overlap(tile), progress=progress, **refs)
    seconds = time.perf_counter() - start
    restored = to_pil(out)
    message = _summary(lq, seconds, model, recipe, steps, seed, tile, device, probabilities) + unknown_note(report)
    message += quality_note(lq, out, daclip, settings)
    if settings.weights is not None or settings.embedder_weights is not None:
        message += f" Weights: {weights_summary(model, settings)}."
    about = daclip_kit.network_about(model, **refs)
    return RestoreResult(restored, probabilities, f"{message} Network: {about}." if about else message)


def quality_note(lq: torch.Tensor, restored: torch.Tensor, daclip: PairedDaclip | None, settings: DemoSettings) -> str:
    """``" Without ground truth: NIQE 6.12 -> 4.31 (lower is better), CLIP-IQA ..."``: how the input
    and the result look to the no-reference metrics (CLIP-IQA with the model's own DA-CLIP), or ``""``
    where none applies (an image too small for NIQE and no DA-CLIP)."""
    from ..metrics.no_reference import change_text, quality_change

    embedder = None
    if daclip is not None and daclip.path is not None:
        from ..api import _embedder

        embedder = _embedder("daclip", str(daclip.path), settings.device, None, settings.weights_dirs)
    before, after = (x if x.dim() == 4 else x[None] for x in (lq, restored))
    text = change_text(quality_change(before.cpu(), after.cpu(), embedder=embedder))
    return f" Without ground truth: {text}." if text else ""


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
        # a model with a sampler has a step range
        evaluations = steps if steps is not None else cast("tuple[int, int]", recipe_steps(recipe))[0]
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
        except Exception as exc:
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
