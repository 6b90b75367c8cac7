"""An offline mini mixed-degradation data set in the official layout (``daclip-kit data mini``).

Clean images are crops of the photos that ship inside installed packages (no download):
scikit-image (astronaut, chelsea, coffee, rocket, the stereo motorcycle's left view, and the grey
camera, coins, brick, grass and gravel), scikit-learn (china.jpg, flower.jpg) and matplotlib
(grace_hopper.jpg); the last two are the val photos. Photos of packages that are not installed are skipped; with none
installed, procedurally drawn scenes are used instead. The captions are hand-written templates
describing each photo (no BLIP needed).
"""

from __future__ import annotations

import logging
import math
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

from ..errors import ConfigError, InputError
from ..factory import create_degradation
from ..io import atomic_folder, clean_stale_temporaries, write_image
from ..types import DEGRADATIONS

log = logging.getLogger(__name__)


def _skimage(name: str, index: int | None = None) -> Callable:
    """A loader of ``skimage.data.<name>()`` (item ``index`` of what it returns, if given) as
    ``H x W x 3`` uint8: a grey photo gets three equal channels."""

    def load():
        import numpy as np
        import skimage.data

        arr = getattr(skimage.data, name)()
        if index is not None:
            arr = arr[index]
        return np.repeat(arr[..., None], 3, axis=-1) if arr.ndim == 2 else arr

    return load


def _sklearn(name: str) -> Callable:
    def load():
        from sklearn.datasets import load_sample_image

        return load_sample_image(name)

    return load


def _matplotlib(name: str) -> Callable:
    def load():
        import numpy as np
        from matplotlib import cbook
        from PIL import Image

        with Image.open(cbook.get_sample_data(name, asfileobj=False)) as im:
            return np.asarray(im.convert("RGB"))

    return load


#: ``(name, loader, caption of the clean photo)``; the last two are the validation photos.
PHOTOS: tuple[tuple[str, Callable, str], ...] = (
    ("astronaut", _skimage("astronaut"), "a woman in an orange space suit in front of an american flag"),
    ("chelsea", _skimage("chelsea"), "a close up of a tabby cat with green eyes"),
    ("coffee", _skimage("coffee"), "a cup of coffee on a saucer with a spoon"),
    ("rocket", _skimage("rocket"), "a rocket on a launch pad under a blue sky"),
    ("motorcycle", _skimage("stereo_motorcycle", 0), "a red motorcycle parked in a workshop"),
    ("camera", _skimage("camera"), "a black and white photo of a man with a camera on a tripod"),
    ("coins", _skimage("coins"), "a black and white photo of old coins on a table"),
    ("brick", _skimage("brick"), "a black and white close up of a brick wall"),
    ("grass", _skimage("grass"), "a black and white close up of grass"),
    ("gravel", _skimage("gravel"), "a black and white close up of gravel"),
    ("china", _sklearn("china.jpg"), "a chinese temple surrounded by trees"),
    ("flower", _sklearn("flower.jpg"), "a close up of a pink flower with a yellow center"),
    ("grace_hopper", _matplotlib("grace_hopper.jpg"), "a portrait of a woman in a navy uniform"),
)


def bundled_photos() -> list[tuple[str, torch.Tensor, str]]:
    """The available bundled photos as ``(name, (1,3,H,W) float [0,1], caption)``."""
    out = []
    for name, load, caption in PHOTOS:
        try:
            x = load_photo(load)
        except Exception as exc:
            log.info("photo %s unavailable: %s", name, exc)
            continue
        out.append((name, x, caption))
    return out


def load_photo(load: Callable[[], Any]) -> torch.Tensor:
    """The photo a :data:`PHOTOS` loader returns (``H x W x 3+`` uint8) as ``(1, 3, H, W)`` float
    in [0, 1]; the loader's errors (a package that is not installed) pass through."""
    arr = load()
    return torch.from_numpy(arr[..., :3].copy()).permute(2, 0, 1)[None].float() / 255.0


def synthetic_scene(generator: torch.Generator, size: int = 384) -> torch.Tensor:
    """A drawn outdoor scene ``(1,3,size,size)`` in [0,1]: sky, textured ground and a few objects."""
    from ..degradations.base import Draw, pixel_grid, smooth_field

    draw = Draw(generator)
    like = torch.zeros(1)
    y, x = pixel_grid(size, size, like)
    horizon = draw.uniform(0.35, 0.6) * size
    sky_top = torch.tensor([0.25, 0.45, 0.85]) + 0.1 * draw.rand(3, like=like)
    sky = sky_top.view(3, 1, 1) + (y / size * 0.4)[None]
    ground_col = torch.tensor([0.25, 0.45, 0.2]) + 0.2 * draw.rand(3, like=like)
    texture = smooth_field(draw, size, size, cells=24, like=like)[0]
    ground = ground_col.view(3, 1, 1) * (0.7 + 0.6 * texture)
    img = torch.where((y < horizon)[None], sky, ground)
    for _ in range(draw.integer(3, 6)):
        cy, cx = draw.uniform(0.2, 0.9) * size, draw.uniform(0.1, 0.9) * size
        r = draw.uniform(0.05, 0.15) * size
        colour = draw.rand(3, like=like).view(3, 1, 1)
        if draw.uniform(0, 1) < 0.5:
            inside = (y - cy) ** 2 + (x - cx) ** 2 <= r * r
        else:
            inside = ((y - cy).abs() <= r) & ((x - cx).abs() <= r * draw.uniform(0.5, 1.5))
        shade = 0.75 + 0.25 * (1 - (y - cy + r) / (2 * r)).clamp(0, 1)
        img = torch.where(inside[None], colour * shade[None], img)
    return img.clamp(0, 1)[None]


#: The default largest zoom of a crop: the photo's shorter side becomes 1–1.6 × the crop side.
ZOOM = 1.6


def random_crop(photo: torch.Tensor, size: int, draw, zoom: float = ZOOM) -> torch.Tensor:
    """Rescale ``photo`` so its shorter side is 1–``zoom`` × ``size`` (uniformly) and cut a random
    ``size`` square."""
    h, w = photo.shape[-2:]
    scale = size * draw.uniform(1.0, zoom) / min(h, w)
    nh, nw = max(size, round(h * scale)), max(size, round(w * scale))
    resized = F.interpolate(photo, size=(nh, nw), mode="bicubic" if scale > 1 else "area",
                            **({"align_corners": False} if scale > 1 else {})).clamp(0, 1)
    top, left = draw.integer(0, nh - size), draw.integer(0, nw - size)
    return resized[..., top:top + size, left:left + size]


def mini_stem(photo: str, split: str, index: int) -> str:
    """The file stem of a mini-set image: ``<photo>_<split>_<index:04d>`` (``flower_val_0048``)."""
    return f"{photo}_{split}_{index:04d}"


def source_photo(path: str | Path) -> str | None:
    """The bundled photo a mini-set image was cut from (``flower`` for ``.../flower_val_0048.png``),
    or ``None`` for a name :func:`mini_stem` did not make. Calibrations leave whole photos out with
    it (:func:`daclip_kit.core.ood.calibrate_embeddings`): the mini set cuts many crops of each photo."""
    match = re.fullmatch(r"(.+)_(?:train|val)_\d{4,}", Path(path).stem)
    return match.group(1) if match else None


def source_photos(paths: Sequence[str | Path]) -> list[str] | None:
    """The calibration groups of ``paths``: :func:`source_photo` where the name tells it, else the
    image alone (a group of one, e.g. a user's own pairs added to a mini set); ``None`` when no name
    tells a photo (every image is then its own group: nothing to group)."""
    photos = [source_photo(p) for p in paths]
    if all(p is None for p in photos):
        return None
    return [f"photo:{photo}" if photo is not None else f"image:{path}"
            for photo, path in zip(photos, paths, strict=True)]


def val_seed(seed: int) -> int:
    """The seed of the generator that draws the val split's crops and degradations."""
    return (int(seed) * 1_000_003 + 1) % 2**63


#: Suffix of the hidden folder a set is written into before it is moved into place.
PARTIAL = ".partial"
#: What a folder written by :func:`build_mini` holds; ``--overwrite`` replaces only such folders.
MINI_ENTRIES = frozenset({"train", "val", "daclip_train.csv", "daclip_val.csv"})


def _check_replaceable(out: Path, overwrite: bool) -> None:
    """Refuse an ``out`` that is a file, non-empty without ``overwrite``, or (with ``overwrite``)
    holds anything a mini data set does not: replacing it would lose those files."""
    if not out.exists():
        return
    if not out.is_dir():
        raise InputError(f"--out {str(out)!r} exists and is not a folder; choose another --out.")
    entries = sorted(p.name for p in out.iterdir())
    if not entries:
        return
    if not overwrite:
        raise InputError(f"{str(out)!r} is not an empty folder; choose another --out or pass --overwrite "
                         "(which replaces the whole mini data set).")
    foreign = [e for e in entries if e not in MINI_ENTRIES]
    if foreign:
        raise InputError(f"--overwrite replaces a whole mini data set, but {str(out)!r} also holds {foreign[0]!r}"
                         + (f" and {len(foreign) - 1} more" if len(foreign) > 1 else "")
                         + f" (a mini set holds only {', '.join(sorted(MINI_ENTRIES))}); nothing was changed. "
                         "Choose another --out or move those files away.")


@dataclass
class MiniReport:
    """What :func:`build_mini` wrote: ``counts[split][folder]`` pairs and the CSV paths."""

    root: Path
    counts: dict[str, dict[str, int]] = field(default_factory=dict)
    csvs: list[Path] = field(default_factory=list)
    photos: list[str] = field(default_factory=list)


def build_mini(out: str | Path, *, size: int = 256, per_type: int = 4, val_per_type: int = 2, composed: int = 4,
               types: Sequence[str] = DEGRADATIONS, seed: int = 0, overwrite: bool = False,
               synthetic: bool = False, zoom: float = ZOOM,
               progress: Callable[[int, int], None] | None = None) -> MiniReport:
    """Write a small mixed-degradation data set in the official universal layout.

    Args:
        out: folder to create (must be empty unless ``overwrite``).
        size: side of the square crops.
        per_type: training pairs per degradation type.
        val_per_type: validation pairs per degradation type.
        composed: composed (2–3 degradations) pairs per split; ``0`` for none.
        types: degradation types (registered names).
        seed: everything (crops, degradations) follows from it.
        overwrite: allow a non-empty ``out``.
        synthetic: use drawn scenes even when bundled photos are available.
        zoom: the training crops are cut from the photo resized so that its shorter side is 1 to
            ``zoom`` times ``size``: the default 1.6 gives nearly whole photos, a larger value
            closer views of their parts as well (more varied content). The val crops always use
            the default.
        progress: called as ``progress(pairs_written, pairs_total)`` after every pair.

    The val split has its own random generator: for a given ``seed``, ``size``, ``types``,
    ``val_per_type`` and ``composed`` it is the same files whatever the training options
    (``per_type``, ``zoom``), so accuracies measured on it are comparable.

    The set is written into a hidden sibling folder and moved onto ``out`` when complete: an
    interrupted run (an error, Ctrl-C or a kill) never leaves a half-written set or an LQ without
    its GT in ``out``, and ``overwrite`` replaces the old set as a whole (never mixing the two).
    The hidden folder of a run that was killed outright is removed by the next run.

    Returns:
        a :class:`MiniReport`; ``out/daclip_{train,val}.csv`` hold the template captions.

    Raises:
        InputError: ``out`` is a file, is not empty (without ``overwrite``), or holds files a mini
            set does not (with ``overwrite``; nothing is replaced).
        ConfigError: ``size`` below 16, a negative count or ``zoom`` below 1.
    """
    out = Path(out)
    if size < 16:
        raise ConfigError(f"--size must be at least 16 pixels, got {size}.")
    for flag, count in (("--per-type", per_type), ("--val-per-type", val_per_type), ("--composed", composed)):
        if count < 0:
            raise ConfigError(f"{flag} must be 0 or more, got {count}.")
    if not (math.isfinite(zoom) and zoom >= 1.0):
        raise ConfigError(f"--zoom must be a number >= 1 (1.6 by default; e.g. 4 for closer views too), got {zoom}.")
    _check_replaceable(out, overwrite)
    target = out.resolve()
    clean_stale_temporaries(target.parent, suffix=PARTIAL, folders=True)
    with atomic_folder(target, suffix=PARTIAL) as tmp:
        report = _write_mini(tmp, out, size=size, per_type=per_type, val_per_type=val_per_type, composed=composed,
                             types=types, seed=seed, synthetic=synthetic, zoom=zoom, progress=progress)
        _check_replaceable(out, overwrite)  # nothing appeared in the meantime
    return report


def _write_mini(out: Path, final: Path, *, size: int, per_type: int, val_per_type: int, composed: int,
                types: Sequence[str], seed: int, synthetic: bool, zoom: float,
                progress: Callable[[int, int], None] | None) -> MiniReport:
    """Write the mini set into the (new, empty) folder ``out``, to be moved onto ``final``; see
    :func:`build_mini`."""
    from ..degradations.base import Draw
    from ..degradations.composition import RandomComposition, folder_name
    from .captions import write_dataset_csvs

    g = torch.Generator().manual_seed(seed)
    photos = [] if synthetic else bundled_photos()
    if len(photos) < 2:
        if not synthetic:
            log.warning("fewer than two bundled photos found (install scikit-image, scikit-learn or matplotlib "
                        "for real photos); using drawn scenes")
        photos = [(f"scene{i}", synthetic_scene(g), "a drawing of a landscape with colored shapes")
                  for i in range(4)]
    n_val = max(1, min(2, len(photos) // 3))
    split_photos = {"train": photos[:-n_val], "val": photos[-n_val:]}
    captions: dict[str, str] = {}
    report = MiniReport(final, photos=[p[0] for p in photos])
    gens = {t: create_degradation(t) for t in types}
    mixer = None
    if composed and len(types) >= 2:
        mixer = RandomComposition(pool=tuple(types), count=(2, min(3, len(types))))

    n_composed = composed if mixer else 0
    total = sum(len(types) * count + n_composed for count in (per_type, val_per_type))
    written = 0
    for split, count in (("train", per_type), ("val", val_per_type)):
        if split == "val":
            # the val split draws from its own generator: the val set depends only on the seed, the
            # size, the types, val_per_type and composed, never on the training split's options
            g = torch.Generator().manual_seed(val_seed(seed))
        draw = Draw(g)
        pool = split_photos[split]
        report.counts[split] = {}
        jobs: list[tuple[str | None, int]] = [(t, i) for t in types for i in range(count)]
        jobs += [(None, i) for i in range(n_composed)]
        for k, (deg, _) in enumerate(jobs):
            name, photo, caption = pool[k % len(pool)]
            clean = random_crop(photo, size, draw, zoom if split == "train" else ZOOM)
            if deg is None:
                assert mixer is not None  # composed jobs are made only with a mixer
                lq, labels = mixer(clean, g)
                folder = folder_name(labels[0])
            else:
                lq, folder = gens[deg](clean, g), deg
            stem = mini_stem(name, split, k)
            write_image(out / split / folder / "GT" / f"{stem}.png", clean)
            write_image(out / split / folder / "LQ" / f"{stem}.png", lq)
            captions[f"{stem}.png"] = caption
            report.counts[split][folder] = report.counts[split].get(folder, 0) + 1
            written += 1
            if progress is not None:
                progress(written, total)
    # the CSVs name the LQ files where they will be once the folder is moved onto ``final``
    report.csvs = [final / csv.relative_to(out) for csv in write_dataset_csvs(out, captions, root_as=final)]
    return report
