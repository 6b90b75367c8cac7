"""File I/O: atomic writes and image reading/writing as ``(B,3,H,W)`` float RGB in [0, 1]; a
written image can keep the kind of its input (grayscale or colour, 8 or 16 bits, alpha, ICC profile:
:func:`image_kind`), PNG and TIFF alike.

Outputs are written to a temporary file in the target folder (``.<name>.<pid>@<host>.<random>.tmp``)
and then put in place: with ``exclusive=True`` by a hard link that fails when the name exists, so
two runs writing into one folder never replace each other's files; otherwise with
:func:`os.replace`. A crash never leaves a half-written file; :func:`clean_stale_temporaries`
removes the temporaries of processes of this machine that died. The host in the name keeps nodes
that write into one shared folder (multi-node ``torchrun``) from judging each other's process ids:
another machine's temporaries are left alone until they are a day old.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import shutil
import socket
import tempfile
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .errors import InputError
from .options import option

log = logging.getLogger(__name__)

if TYPE_CHECKING:
    import numpy.typing as npt
    import torch

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp", ".gif")
#: Images with more pixels than this are refused unless the caller raises the limit (``--max-pixels``).
MAX_PIXELS = 120_000_000
#: Temporaries are named ``.<name>.<pid>@<host>.<random><suffix>`` so a later run can tell a dead
#: writer's; names without ``@<host>`` (older versions) count as another machine's.
_TMP_NAME = r"^\.(?P<name>.+)\.(?P<pid>\d+)(?:@(?P<host>[A-Za-z0-9_-]+))?\.[^.]+{suffix}$"
#: Another machine's temporary *files* older than this (seconds since their last write) are
#: removed: no single output is written for a day. Its folders are never removed automatically.
FOREIGN_TEMPORARY_AGE = 24 * 3600


def this_host() -> str:
    """This machine's name as it appears in temporary names (characters other than letters,
    digits, ``_`` and ``-`` become ``_``)."""
    return re.sub(r"[^A-Za-z0-9_-]", "_", socket.gethostname()) or "localhost"


def temporary_prefix(name: str) -> str:
    """The start of this process's temporary names for ``name``: ``.<name>.<pid>@<host>.``."""
    return f".{name}.{os.getpid()}@{this_host()}."


class OutputExistsError(InputError, FileExistsError):
    """An output file already exists (written by an earlier or a concurrent run)."""


@contextlib.contextmanager
def atomic_path(path: str | Path, *, exclusive: bool = False) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; on success put it at ``path``.

    Args:
        path: the final file.
        exclusive: claim ``path`` without replacing: a hard link that fails when ``path``
            exists (:class:`OutputExistsError`), so concurrent writers never lose a file.

    Raises:
        OutputExistsError: ``exclusive`` and ``path`` exists.
        InputError: the folder cannot be created or written (one line, naming it).

    Example:
        >>> with atomic_path("out.json") as tmp:  # doctest: +SKIP
        ...     tmp.write_text("{}")
    """
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=temporary_prefix(path.name), suffix=".tmp", dir=path.parent)
    except OSError as exc:
        raise InputError(f"Cannot write into {str(path.parent)!r}: {exc.strerror or exc}.") from None
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        apply_default_mode(tmp_path)
        if exclusive:
            try:
                os.link(tmp_path, path)
            except FileExistsError:
                raise _written_meanwhile(path) from None
            except OSError:  # file systems without hard links: exclusive create, then copy in
                _claim_by_create(tmp_path, path)
        else:
            os.replace(tmp_path, path)
    finally:
        if tmp_path.exists():
            tmp_path.unlink()


def _claim_by_create(tmp_path: Path, path: Path) -> None:
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
    except FileExistsError:
        raise _written_meanwhile(path) from None
    with os.fdopen(fd, "wb") as out, tmp_path.open("rb") as src:
        out.write(src.read())


def _written_meanwhile(path: Path) -> OutputExistsError:
    return OutputExistsError(f"{str(path)!r} was written meanwhile (another run?); it is kept. "
                             f"Choose another output folder or pass {option('overwrite')}.")


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _is_stale(entry: Path, match: re.Match, *, folder: bool, now: float) -> bool:
    """Whether the temporary ``entry`` was left by a writer that is gone: a dead process of this
    machine, or (files only) another machine's file untouched for :data:`FOREIGN_TEMPORARY_AGE`."""
    pid = int(match["pid"])
    if match["host"] == this_host():
        return pid != os.getpid() and not _pid_alive(pid)
    if folder:
        return False
    try:
        return now - entry.stat().st_mtime > FOREIGN_TEMPORARY_AGE
    except OSError:
        return False


def clean_stale_temporaries(folder: str | Path, *, suffix: str = ".tmp", folders: bool = False) -> list[Path]:
    """Remove the temporaries ``.<name>.<pid>@<host>.<random><suffix>`` in ``folder`` whose writer
    is gone (left by a run that was killed): files, or with ``folders`` folders (e.g. the
    ``.partial`` data sets being written) and nothing else; returns what was removed.

    Process ids are judged only for this machine's temporaries. In a folder that several machines
    write into, another machine's temporary file is removed only once nothing has written it for
    :data:`FOREIGN_TEMPORARY_AGE` seconds (a day), and its temporary folders never."""
    folder = Path(folder)
    removed: list[Path] = []
    if not folder.is_dir():
        return removed
    pattern = re.compile(_TMP_NAME.format(suffix=re.escape(suffix)))
    now = time.time()
    for entry in folder.iterdir():
        match = pattern.match(entry.name)
        right_kind = not entry.is_symlink() and (entry.is_dir() if folders else entry.is_file())
        if not match or not right_kind or not _is_stale(entry, match, folder=folders, now=now):
            continue
        with contextlib.suppress(OSError):
            if folders:
                shutil.rmtree(entry)
            else:
                entry.unlink()
            removed.append(entry)
    if removed:
        log.info("removed %d temporar%s of runs that were killed in %s", len(removed),
                 "y" if len(removed) == 1 else "ies", folder)
    return removed


@contextlib.contextmanager
def atomic_folder(target: Path, *, suffix: str = "") -> Iterator[Path]:
    """Yield a new hidden sibling folder of ``target`` (``.<name>.<pid>@<host>.<random><suffix>``) to
    write into. When the block ends without an error it replaces ``target`` as a whole, with
    ordinary permissions (:func:`replace_folder`); otherwise it is removed. The folder of a run
    that was killed outright is left for :func:`clean_stale_temporaries`."""
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=temporary_prefix(target.name), suffix=suffix, dir=target.parent))
    try:
        yield tmp
        apply_default_mode(tmp)
        replace_folder(tmp, target)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)


def replace_folder(new: Path, target: Path) -> None:
    """Move the finished folder ``new`` onto ``target`` (a sibling); an existing ``target`` is
    replaced as a whole, and put back if the move fails."""
    if not target.exists():
        os.replace(new, target)
        return
    backup = Path(tempfile.mkdtemp(prefix=f".{target.name}.old.", dir=target.parent))
    os.replace(target, backup / target.name)
    try:
        os.replace(new, target)
    except BaseException:
        os.replace(backup / target.name, target)
        raise
    finally:
        shutil.rmtree(backup, ignore_errors=True)


def apply_default_mode(path: Path) -> None:
    """Give a temporary file (or folder) the permissions a plain ``open()`` (``mkdir``) would:
    ``tempfile`` creates them private to the owner."""
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(path, (0o777 if path.is_dir() else 0o666) & ~umask)


def atomic_write_bytes(path: str | Path, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically."""
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)


def atomic_write_text(path: str | Path, text: str) -> None:
    """Write ``text`` (UTF-8) to ``path`` atomically."""
    atomic_write_bytes(path, text.encode("utf-8"))


def read_utf8(path: str | Path, what: str, error: type[Exception] = InputError, fix: str = "") -> str:
    """The text of ``path``; a file that is not UTF-8 raises ``error`` in one line naming ``what``
    (e.g. ``"Captions file"``) and, when given, the ``fix``."""
    path = Path(path)
    try:
        return path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        hint = f"; {fix}" if fix else ""
        raise error(f"{what} {str(path)!r} is not UTF-8 text ({exc.reason} at byte {exc.start}){hint}.") from None


def list_images(inputs: Iterable[str | Path], *, recursive: bool = False) -> list[Path]:
    """Expand files and folders into a sorted list of image files.

    Raises:
        InputError: an input does not exist, or a folder holds no image.
    """
    found: list[Path] = []
    for item in inputs:
        p = Path(item)
        if p.is_dir():
            pattern = "**/*" if recursive else "*"
            imgs = sorted(q for q in p.glob(pattern) if q.is_file() and q.suffix.lower() in IMAGE_SUFFIXES)
            if not imgs:
                raise InputError(f"Folder {str(p)!r} contains no images ({', '.join(IMAGE_SUFFIXES)}).")
            found.extend(imgs)
        elif p.is_file():
            found.append(p)
        else:
            raise InputError(f"Input {str(p)!r} does not exist. Give image files or folders of images.")
    return found


def _check_pixels(path: Path, size: tuple[int, int], max_pixels: int | None) -> None:
    if max_pixels is not None and size[0] * size[1] > max_pixels:
        raise InputError(f"{str(path)!r} is {size[0]}x{size[1]} ({size[0] * size[1] / 1e6:.0f} MP), above the "
                         f"limit of {max_pixels / 1e6:.0f} MP; if you mean it, raise the limit "
                         "(`restore --max-pixels N`, `demo --max-pixels N`).")


def _is_tiff(path: Path) -> bool:
    """Whether a file starts like a TIFF (or BigTIFF), whatever its suffix."""
    try:
        with path.open("rb") as fh:
            head = fh.read(4)
    except OSError:
        return False
    return head in (b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+")


def _tiff_size(path: Path) -> tuple[int, int] | None:
    """``(width, height)`` of a TIFF's first page as displayed (its Orientation tag applied), from
    tifffile; ``None`` when tifffile cannot read it."""
    try:
        import tifffile

        with tifffile.TiffFile(path) as tif:
            page: Any = tif.pages[0]
            size = (int(page.imagewidth), int(page.imagelength))
            orientation = int(page.tags[274].value) if 274 in page.tags else 1
    except Exception:  # tifffile's errors have no common base; Pillow's error is the one reported
        return None
    return (size[1], size[0]) if orientation in _ORIENTATIONS_SWAPPING_SIDES else size


#: EXIF orientations that turn the stored image by 90 degrees (width and height swap on display).
_ORIENTATIONS_SWAPPING_SIDES = (5, 6, 7, 8)


def _exif_orientation(im) -> int:
    try:
        return int(im.getexif().get(0x0112, 1))
    except Exception:  # a broken EXIF block: read_image's exif_transpose ignores it too
        return 1


def image_size(path: str | Path, *, max_pixels: int | None = MAX_PIXELS) -> tuple[int, int]:
    """``(width, height)`` of an image file as it is displayed and read (EXIF orientation applied),
    from its header (nothing is decoded).

    Raises:
        InputError: missing, unreadable or larger than ``max_pixels``.
    """
    from PIL import Image, UnidentifiedImageError

    path = Path(path)
    try:
        with _unlimited(Image), Image.open(path) as im:
            size = im.size
            if _exif_orientation(im) in _ORIENTATIONS_SWAPPING_SIDES:
                size = (size[1], size[0])
    except FileNotFoundError:
        raise InputError(f"Image {str(path)!r} does not exist.") from None
    except (UnidentifiedImageError, OSError, ValueError) as exc:
        tiff = _tiff_size(path) if _is_tiff(path) else None  # e.g. float RGB, which only tifffile reads
        if tiff is None:
            raise InputError(f"Cannot read {str(path)!r} as an image: {exc}") from None
        size = tiff
    _check_pixels(path, size, max_pixels)
    return size


@contextlib.contextmanager
def _unlimited(image_module) -> Iterator[None]:
    """Pillow's own decompression-bomb check off: :data:`MAX_PIXELS` (a clear error) replaces it."""
    before = image_module.MAX_IMAGE_PIXELS
    image_module.MAX_IMAGE_PIXELS = None
    try:
        yield
    finally:
        image_module.MAX_IMAGE_PIXELS = before


def read_image(path: str | Path, *, max_pixels: int | None = MAX_PIXELS) -> torch.Tensor:
    """Read an image file as a ``(1, 3, H, W)`` float32 RGB tensor in [0, 1], EXIF orientation
    applied.

    Every bit is kept: 16-bit samples (grayscale, RGB, RGBA, in PNG and TIFF) are scaled by
    ``1 / 65535``, 8-bit ones by ``1 / 255``, float TIFFs are clipped to [0, 1]. Grayscale is
    repeated to three channels and an alpha channel is dropped (compositing is not done:
    restoration needs the raw colours; :func:`image_kind` keeps it for the output). TIFFs are read
    with tifffile (Pillow where tifffile cannot decode one, e.g. JPEG-compressed). Of an animated
    or multi-page image the first frame is read, with a warning.

    Raises:
        InputError: the file is missing, not a readable image, or larger than ``max_pixels``.
    """
    import numpy as np
    import torch

    path = Path(path)
    decoded = _decode(path, max_pixels=max_pixels, pixels=True)
    if decoded.frames > 1:
        log.warning("%s has %d frames; restoring the first", path, decoded.frames)
    arr = _float_rgb(decoded.color, np)
    return torch.from_numpy(arr).permute(2, 0, 1).unsqueeze(0).contiguous()


@dataclass
class _Decoded:
    """An image file as far as it was decoded: its kind, and (``pixels``) its samples."""

    gray: bool
    bits: int  # 8 or 16: the depth an output of this kind keeps
    has_alpha: bool = False
    color: Any = None  # (H, W) or (H, W, 3): uint8, uint16 or float32, EXIF-oriented; None: not decoded
    alpha: Any = None  # (H, W) at the colour's depth (uint8 or uint16)
    icc: bytes | None = None
    frames: int = 1
    reduced: list[str] = field(default_factory=list)  # what an output cannot keep of the file


def _decode(path: Path, *, max_pixels: int | None, pixels: bool) -> _Decoded:
    """The kind of the image file ``path`` with its alpha plane, and with ``pixels`` its colour
    samples; TIFFs through tifffile first, everything else (and TIFFs tifffile cannot decode)
    through Pillow.

    Raises:
        InputError: missing, unreadable or larger than ``max_pixels``.
    """
    from PIL import Image, UnidentifiedImageError

    try:
        if _is_tiff(path):
            decoded = _decode_tiff(path, max_pixels=max_pixels, pixels=pixels)
            if decoded is not None:
                return decoded
        with _unlimited(Image), Image.open(path) as im:
            _check_pixels(path, im.size, max_pixels)
            return _decode_pil(path, im, pixels=pixels)
    except FileNotFoundError:
        raise InputError(f"Image {str(path)!r} does not exist.") from None
    except (UnidentifiedImageError, OSError, ValueError) as exc:
        raise InputError(f"Cannot read {str(path)!r} as an image: {exc}") from None


#: PNG colour types Pillow reads at 8 bits when they hold 16: gray + alpha (4), RGB (2), RGBA (6).
_DEEP_PNG_COLOUR_TYPES = (2, 4, 6)
#: Pillow modes a file is read in without losing anything (others are converted, with a note).
_PLAIN_MODES = ("1", "L", "LA", "P", "PA", "RGB", "RGBA", "RGBX", "YCbCr", "I;16", "I;16L", "I;16B", "I;16N")


def _deep_png_type(path: Path, im) -> int | None:
    """The PNG colour type (2 RGB, 4 gray + alpha, 6 RGBA) of a 16-bit PNG Pillow would read at
    8 bits, from its header (read with pypng); None for any other file."""
    if im.format != "PNG":
        return None
    import png

    try:
        with path.open("rb") as fh:
            reader = png.Reader(file=fh)
            reader.preamble()
    except png.Error as exc:
        raise ValueError(str(exc)) from None
    deep = reader.bitdepth == 16 and reader.color_type in _DEEP_PNG_COLOUR_TYPES
    return int(reader.color_type) if deep else None


def _read_deep_png(path: Path, np) -> Any:
    """The samples of a 16-bit PNG as ``(H, W, C)`` uint16 (stored orientation), decoded by pypng
    as stored (a ``tRNS`` colour is not turned into alpha, as Pillow does not either)."""
    import png

    try:
        with path.open("rb") as fh:
            width, height, rows, info = png.Reader(file=fh).read()
            samples = np.empty((height, width * info["planes"]), dtype=np.uint16)
            for i, row in enumerate(rows):
                samples[i] = np.frombuffer(row, dtype=np.uint16)
    except png.Error as exc:
        raise ValueError(str(exc)) from None
    return samples.reshape(height, width, info["planes"])


def _orient(arr, orientation: int, np) -> Any:
    """``arr`` (H, W, ...) turned as the EXIF/TIFF orientation says (as Pillow's ``exif_transpose``)."""
    if orientation == 2:
        return arr[:, ::-1]
    if orientation == 3:
        return arr[::-1, ::-1]
    if orientation == 4:
        return arr[::-1]
    if orientation == 5:
        return np.swapaxes(arr, 0, 1)
    if orientation == 6:
        return np.rot90(arr, -1)
    if orientation == 7:
        return np.swapaxes(arr, 0, 1)[::-1, ::-1]
    if orientation == 8:
        return np.rot90(arr, 1)
    return arr


def _decode_pil(path: Path, im, *, pixels: bool) -> _Decoded:
    import numpy as np
    from PIL import ImageOps

    icc = im.info.get("icc_profile") or None
    frames = getattr(im, "n_frames", 1)
    deep = _deep_png_type(path, im)
    if deep is not None:
        decoded = _Decoded(gray=deep == 4, bits=16, has_alpha=deep != 2, icc=icc, frames=frames)
        if pixels or decoded.has_alpha:
            samples = _orient(_read_deep_png(path, np), _exif_orientation(im), np)
            decoded.color = (samples[..., 0] if decoded.gray else samples[..., :3]) if pixels else None
            decoded.alpha = samples[..., -1] if decoded.has_alpha else None
        return decoded
    mode = im.mode
    gray = mode in _GRAY_MODES
    decoded = _Decoded(gray=gray, bits=16 if gray and (mode.startswith("I") or mode == "F") else 8,
                       has_alpha="A" in mode or (mode == "P" and im.has_transparency_data), icc=icc, frames=frames)
    decoded.reduced += _mode_notes(im)
    if not (pixels or decoded.has_alpha):
        return decoded
    im.load()
    oriented = ImageOps.exif_transpose(im)
    if decoded.has_alpha:
        plane = oriented.getchannel("A") if "A" in oriented.mode else oriented.convert("RGBA").getchannel("A")
        decoded.alpha = np.asarray(plane, dtype=np.uint8)
    if pixels:
        decoded.color = _pil_samples(oriented, gray, np)
    return decoded


def _mode_notes(im) -> list[str]:
    """What reading the Pillow image ``im`` reduces, for an output's warning."""
    mode = im.mode
    if mode == "F":
        return ["32-bit float samples kept at 16 bits (clipped to [0, 1])"]
    if mode == "I":  # 32-bit integers (16-bit PNGs open as I in older Pillow versions)
        return [] if im.format == "PNG" else ["32-bit integer samples kept at 16 bits (clipped to 65535)"]
    if mode in _PLAIN_MODES:
        return []
    return [f"{mode} converted to {'grayscale' if mode in _GRAY_MODES else 'RGB'}"]


def _pil_samples(im, gray: bool, np) -> Any:
    """The colour samples of a Pillow image: (H, W) uint8/uint16/float32 for grayscale modes
    (16- and 32-bit integers as uint16, clipped), else (H, W, 3) uint8."""
    mode = im.mode
    if gray and mode.startswith("I"):
        return np.clip(np.asarray(im, dtype=np.float64), 0, 65535).astype(np.uint16)
    if gray and mode == "F":
        return np.asarray(im, dtype=np.float32)
    if gray:
        return np.asarray(im if mode == "L" else im.convert("L"), dtype=np.uint8)
    return np.asarray(im if mode == "RGB" else im.convert("RGB"), dtype=np.uint8)


def _float_rgb(color, np) -> Any:
    """``(H, W, 3)`` float32 in [0, 1] of decoded samples: 16 bits / 65535, 8 bits / 255, floats clipped."""
    if color.dtype == np.uint16:
        a = (color.astype(np.float64) / 65535.0).astype(np.float32)
    elif color.dtype == np.uint8:
        a = color.astype(np.float32) / 255.0
    else:
        a = np.clip(color.astype(np.float32), 0.0, 1.0)
    return np.ascontiguousarray(np.repeat(a[..., None], 3, axis=2) if a.ndim == 2 else a)


def _to_float_rgb(im, np) -> Any:
    """A Pillow image as ``(H, W, 3)`` float32 RGB in [0, 1] (as :func:`read_image` reads files)."""
    return _float_rgb(_pil_samples(im, im.mode in _GRAY_MODES, np), np)


#: TIFF sample types tifffile's path reads (others go through Pillow).
_TIFF_DTYPES = ("uint8", "uint16", "float16", "float32", "float64")


def _decode_tiff(path: Path, *, max_pixels: int | None, pixels: bool) -> _Decoded | None:
    """A gray or RGB TIFF (with alpha, 8 or 16 bits or float) through tifffile; ``None`` for what
    it does not read here (palette, CMYK, other sample types, compressions that need
    imagecodecs): Pillow reads those."""
    import numpy as np

    try:
        import tifffile

        tif = tifffile.TiffFile(path)
    except Exception:  # not installed, or a TIFF tifffile refuses: Pillow tries
        return None
    with tif:
        try:
            page: Any = tif.pages[0]
            colour = {1: 1, 2: 3}.get(int(page.photometric))
            dtype = np.dtype(page.dtype)
            samples = int(page.samplesperpixel)
            size = (int(page.imagewidth), int(page.imagelength))
            orientation = int(page.tags[274].value) if 274 in page.tags else 1
            icc = bytes(page.tags[34675].value) if 34675 in page.tags else None
            frames = len(tif.pages)
            axes = str(page.axes)
        except Exception:
            return None
        if colour is None or dtype.name not in _TIFF_DTYPES or samples < colour:
            return None
        _check_pixels(path, size, max_pixels)
        floating = dtype.kind == "f"
        decoded = _Decoded(gray=colour == 1, bits=8 if dtype == np.uint8 else 16, has_alpha=samples > colour,
                           icc=icc or None, frames=frames)
        if floating:
            decoded.reduced.append(f"{dtype.itemsize * 8}-bit float samples kept at 16 bits (clipped to [0, 1])")
        if samples > colour + 1:
            decoded.reduced.append(f"{samples - colour - 1} extra sample(s) after the alpha channel dropped")
        if not (pixels or decoded.has_alpha):
            return decoded
        try:
            arr = page.asarray()
        except Exception:  # e.g. a compression that needs imagecodecs
            return None
    arr = np.moveaxis(arr, axes.index("S"), -1) if "S" in axes else arr[..., None]
    if arr.ndim != 3:  # a depth axis or the like
        return None
    arr = _orient(arr, orientation, np)
    if floating:
        arr = arr.astype(np.float32)
    decoded.color = (arr[..., 0] if decoded.gray else arr[..., :3]) if pixels else None
    if decoded.has_alpha:
        plane = arr[..., colour]
        decoded.alpha = np.round(np.clip(plane, 0, 1) * 65535).astype(np.uint16) if floating else plane
    return decoded


def to_uint8(image: torch.Tensor):
    """``(3,H,W)`` or ``(1,3,H,W)`` float [0,1] -> ``(H,W,3)`` uint8 numpy, clamped and rounded."""
    import numpy as np

    x = image.detach()
    if x.ndim == 4:
        if x.shape[0] != 1:
            raise ValueError(f"expected one image, got a batch of {x.shape[0]}")
        x = x[0]
    arr = x.float().clamp(0, 1).mul(255).round().to("cpu").permute(1, 2, 0).numpy()
    return arr.astype(np.uint8)


@dataclass(frozen=True, eq=False)
class ImageKind:
    """What an output keeps of its input file (:func:`image_kind`): grayscale or colour, 8 or 16
    bits per sample, the alpha plane (``(H, W)``, uint8 or uint16 at the image's depth,
    EXIF-oriented like the pixels) and the ICC profile; ``source`` (the input, named in warnings)
    and ``reduced`` (what reading it already could not keep, e.g. CMYK) for the one warning
    :func:`write_image` gives."""

    gray: bool = False
    bits: int = 8
    alpha: npt.NDArray[Any] | None = None  # (H, W)
    icc: bytes | None = None
    source: str = ""
    reduced: tuple[str, ...] = ()

    @property
    def mode(self) -> str:
        """The mode written: Pillow's ``L``, ``I;16``, ``LA``, ``RGB``, ``RGBA``, or for the 16-bit
        kinds Pillow has no mode for ``LA;16``, ``RGB;16``, ``RGBA;16``."""
        base = ("L" if self.gray else "RGB") + ("A" if self.alpha is not None else "")
        if self.bits != 16:
            return base
        return "I;16" if base == "L" else f"{base};16"

    @property
    def fits_pillow(self) -> bool:
        """Whether a Pillow image can hold this kind (8 bits, or 16-bit grayscale without alpha)."""
        return self.bits != 16 or self.mode == "I;16"


#: Pillow modes read as grayscale; those of 16 bits (and 32-bit int / float) are written at 16 bits.
_GRAY_MODES = ("1", "L", "LA", "La", "I", "I;16", "I;16L", "I;16B", "I;16N", "F")


def image_kind(path: str | Path) -> ImageKind:
    """The kind of an image file, for :func:`write_image`'s ``like``: gray, RGB, gray + alpha and
    RGBA at 8 or 16 bits (PNG or TIFF) keep their channels and depth; an alpha channel (also a
    palette's transparency) is carried over unchanged, at its depth; the ICC profile is kept.
    What cannot be kept is in ``reduced`` (CMYK and other modes read as RGB, float or 32-bit
    samples kept at 16 bits). Only the alpha plane is decoded, and only when there is one.

    Raises:
        InputError: the file is missing or not a readable image.
    """
    path = Path(path)
    decoded = _decode(path, max_pixels=None, pixels=False)
    return ImageKind(gray=decoded.gray, bits=decoded.bits, alpha=decoded.alpha, icc=decoded.icc, source=str(path),
                     reduced=tuple(decoded.reduced))


def pil_kind(im, *, exif: bool = False) -> ImageKind:
    """The :class:`ImageKind` of an open Pillow image (see :func:`image_kind`); ``exif`` turns the
    alpha plane as the EXIF orientation says (as :func:`read_image` turns files; a Pillow image
    given directly is restored as it is)."""
    from PIL import ImageOps

    gray = im.mode in _GRAY_MODES
    bits = 16 if im.mode.startswith("I") or im.mode == "F" else 8
    alpha = None
    if "A" in im.mode or (im.mode == "P" and im.has_transparency_data):
        import numpy as np

        im.load()
        oriented = ImageOps.exif_transpose(im) if exif else im
        plane = oriented.getchannel("A") if "A" in oriented.mode else oriented.convert("RGBA").getchannel("A")
        alpha = np.asarray(plane, dtype=np.uint8)
    return ImageKind(gray=gray, bits=bits if gray else 8, alpha=alpha, icc=im.info.get("icc_profile") or None,
                     source="the image", reduced=tuple(_mode_notes(im)))


def _samples_of(image: torch.Tensor, kind: ImageKind, bits: int) -> Any:
    """``(3,H,W)``/``(1,3,H,W)`` float RGB in [0, 1] as ``bits``-bit samples of ``kind``: ``(H, W)``
    (grayscale), ``(H, W, 2)`` (gray + alpha), ``(H, W, 3)`` or ``(H, W, 4)``; grayscale is the luma
    (ITU-R BT.601, as Pillow's ``convert("L")``) of the restored RGB; values are rounded to
    ``2**bits - 1`` levels; the alpha plane is appended unchanged (8-bit alpha in a 16-bit image
    times 257, 16-bit alpha in an 8-bit image rounded)."""
    import numpy as np

    x = image.detach().float().clamp(0, 1).to("cpu")
    x = x[0] if x.ndim == 4 else x
    dtype, scale = (np.uint16, 65535.0) if bits == 16 else (np.uint8, 255.0)
    if kind.gray:
        luma = (0.299 * x[0] + 0.587 * x[1] + 0.114 * x[2]).numpy().astype(np.float64)
        out = np.round(luma * scale).astype(dtype)
    elif bits == 8:
        out = to_uint8(x)
    else:
        out = np.round(x.permute(1, 2, 0).numpy().astype(np.float64) * scale).astype(dtype)
    if kind.alpha is None:
        return out
    alpha = np.asarray(kind.alpha)
    if alpha.dtype == np.uint8 and bits == 16:
        alpha = alpha.astype(np.uint16) * 257
    elif alpha.dtype != dtype:
        alpha = np.round(alpha.astype(np.float64) * (scale / (65535.0 if alpha.dtype == np.uint16 else 255.0)))
    planes = [out] if out.ndim == 2 else [out[..., i] for i in range(3)]
    return np.stack([*planes, alpha.astype(dtype)], axis=2)


def _pil_image(samples, icc: bytes | None):
    """A Pillow image of 8-bit samples (``L``, ``LA``, ``RGB``, ``RGBA``) or 16-bit grayscale (``I;16``)."""
    from PIL import Image

    im = Image.fromarray(samples)
    if icc:
        im.info["icc_profile"] = icc
    return im


def _usable_icc(kind: ImageKind, notes: list[str]) -> bytes | None:
    """``kind``'s ICC profile when it describes the output's colours (a ``GRAY`` profile for
    grayscale, ``RGB`` for colour); a profile of another space (a CMYK JPEG's) is dropped, noted."""
    if not kind.icc:
        return None
    space = kind.icc[16:20].decode("latin-1").strip() if len(kind.icc) >= 20 else ""
    wanted = "GRAY" if kind.gray else "RGB"
    if space != wanted:
        notes.append(f"its {space or 'unreadable'} ICC profile dropped (the output is {wanted})")
        return None
    return kind.icc


def _to_pil(image: torch.Tensor, kind: ImageKind):
    """``(3,H,W)``/``(1,3,H,W)`` float RGB in [0, 1] as a Pillow image of ``kind`` (one that
    :attr:`ImageKind.fits_pillow`; see :func:`_samples_of`), its ICC profile in ``info``."""
    return _pil_image(_samples_of(image, kind, kind.bits), _usable_icc(kind, []))


def _write_deep_png(tmp: Path, samples, icc: bytes | None) -> None:
    """``samples`` (``(H, W)`` or ``(H, W, C)`` uint16; C: 2 gray + alpha, 3 RGB, 4 RGBA) as a 16-bit
    PNG written by pypng (Pillow writes no 16-bit colour PNG), the ICC profile as an ``iCCP``
    chunk before the image data."""
    import io
    import zlib

    import numpy as np
    import png

    samples = samples[..., None] if samples.ndim == 2 else samples
    height, width, channels = samples.shape
    packed = np.ascontiguousarray(samples, dtype=">u2").view(np.uint8).reshape(height, width * channels * 2)
    writer = png.Writer(width, height, greyscale=channels < 3, alpha=channels in (2, 4), bitdepth=16,
                        compression=6)
    rows = (row.tobytes() for row in packed)  # big-endian samples, as pypng's write_packed takes them
    if not icc:
        with tmp.open("wb") as fh:
            writer.write_packed(fh, rows)
        return
    buffer = io.BytesIO()
    writer.write_packed(buffer, rows)
    chunks = list(png.Reader(bytes=buffer.getvalue()).chunks())
    first_idat = next(i for i, (tag, _) in enumerate(chunks) if tag == b"IDAT")
    chunks.insert(first_idat, (b"iCCP", b"ICC Profile\x00\x00" + zlib.compress(icc)))
    with tmp.open("wb") as fh:
        png.write_chunks(fh, chunks)


def _write_tiff(tmp: Path, samples, *, gray: bool, icc: bytes | None) -> None:
    """``samples`` (from :func:`_samples_of`) as a deflate-compressed TIFF, alpha as an unassociated
    extra sample, the ICC profile in tag 34675."""
    import tifffile

    alpha = samples.ndim == 3 and samples.shape[2] in (2, 4)
    with tmp.open("wb") as fh:
        tifffile.imwrite(fh, samples, photometric="minisblack" if gray else "rgb",
                         planarconfig="contig" if samples.ndim == 3 else None,
                         extrasamples=("unassalpha",) if alpha else None, iccprofile=icc, compression="zlib",
                         metadata=None)


#: Formats Pillow writes an ICC profile into.
_ICC_FORMATS = ("PNG", "JPEG", "WEBP", "TIFF")


def _save_pillow(tmp: Path, fmt: str, image: torch.Tensor, kind: ImageKind, icc: bytes | None,
                 notes: list[str]) -> None:
    if kind.bits == 16 and not (fmt == "PNG" and kind.fits_pillow):
        notes.append(f"16 bits per sample written at 8 ({fmt} cannot hold 16)")
        kind = replace(kind, bits=8)
    options = {"icc_profile": icc} if icc and fmt in _ICC_FORMATS else {}
    if icc and not options:
        notes.append(f"ICC profile dropped ({fmt} cannot hold one)")
    if fmt == "GIF" and not kind.gray:
        notes.append("colours reduced to a 256-colour palette (GIF)")
    try:
        _pil_image(_samples_of(image, kind, kind.bits), None).save(tmp, format=fmt, **options)
    except (OSError, KeyError, ValueError):
        plain = ImageKind(gray=kind.gray)
        if kind.mode == plain.mode:
            raise
        notes.append(f"{fmt} cannot hold a {kind.mode} image; writing {plain.mode}")
        _pil_image(_samples_of(image, plain, 8), None).save(tmp, format=fmt, **options)


def write_image(path: str | Path, image: torch.Tensor, *, exclusive: bool = False,
                like: ImageKind | None = None) -> Path:
    """Write a ``(3,H,W)`` or ``(1,3,H,W)`` float image in [0, 1] atomically.

    The format follows the suffix (PNG for ``.png``, TIFF for ``.tif``/``.tiff``); values are
    clamped and rounded. By default the file is 8-bit RGB; ``like`` (:func:`image_kind` of the
    input) keeps the input's kind: channels (grayscale as the luma of the restored RGB), depth
    (16 bits rounded to 65535 levels), the alpha plane unchanged and the ICC profile. PNG and TIFF
    hold every such kind; another format gets what it can hold (JPEG: 8-bit ``L``/RGB). Whatever
    is reduced (there, or already in reading: ``like.reduced``) is said in one warning naming the
    input. With ``exclusive`` an existing file is never replaced (:func:`atomic_path`).

    Raises:
        InputError: unknown suffix, non-finite values, an alpha plane of another size, or the
            folder cannot be written.
        OutputExistsError: ``exclusive`` and the file exists.
    """
    import torch
    from PIL import Image

    path = Path(path)
    fmt = Image.registered_extensions().get(path.suffix.lower())
    if fmt is None:
        raise InputError(f"Cannot write {str(path)!r}: unknown image suffix {path.suffix!r}; use .png.")
    if not bool(torch.isfinite(image).all()):
        raise InputError(f"Not writing {str(path)!r}: the image holds NaN or infinite values.")
    kind = like or ImageKind()
    if kind.alpha is not None and tuple(kind.alpha.shape) != tuple(image.shape[-2:]):
        raise InputError(f"Not writing {str(path)!r}: its alpha plane is {kind.alpha.shape[1]}x{kind.alpha.shape[0]} "
                         f"but the image is {image.shape[-1]}x{image.shape[-2]}.")
    notes = list(kind.reduced)
    icc = _usable_icc(kind, notes)
    with atomic_path(path, exclusive=exclusive) as tmp:
        if fmt == "TIFF":
            _write_tiff(tmp, _samples_of(image, kind, kind.bits), gray=kind.gray, icc=icc)
        elif fmt == "PNG" and not kind.fits_pillow:
            _write_deep_png(tmp, _samples_of(image, kind, 16), icc)
        else:
            _save_pillow(tmp, fmt, image, kind, icc, notes)
    if notes:
        log.warning("%s: %s", f"{kind.source} -> {path}" if kind.source else path, "; ".join(notes))
    return path


def to_image_tensor(image) -> tuple[torch.Tensor, str]:
    """``(B, 3, H, W)`` float RGB in [0, 1] from a path, PIL image, numpy array or tensor, and the
    kind of the input for :func:`from_image_tensor`.

    Kinds: ``"path"``, ``"pil"``, ``"uint8"`` / ``"uint16"`` / ``"float"`` (numpy ``H x W x 3`` or ``H x W``),
    ``"chw"`` (tensor ``(3, H, W)``), ``"batch"`` (tensor ``(B, 3, H, W)``).

    Raises:
        InputError: an unsupported type, shape or dtype.
    """
    import numpy as np
    import torch

    if isinstance(image, (str, Path)):
        return read_image(image), "path"
    try:
        from PIL import Image
    except ImportError:  # pragma: no cover - pillow is a dependency
        is_pil = False
    else:
        is_pil = isinstance(image, Image.Image)
    if is_pil:
        arr = _to_float_rgb(image, np)
        return torch.from_numpy(arr).permute(2, 0, 1).unsqueeze(0).contiguous(), "pil"
    if isinstance(image, np.ndarray):
        arr = image
        if arr.ndim == 2:
            arr = np.repeat(arr[..., None], 3, axis=2)
        if arr.ndim != 3 or arr.shape[2] not in (3, 4):
            raise InputError(f"A numpy image must be H x W x 3 (or H x W), got shape {image.shape}.")
        arr = arr[..., :3]
        if arr.dtype == np.uint8:
            data, kind = arr.astype(np.float32) / 255.0, "uint8"
        elif arr.dtype == np.uint16:
            data, kind = (arr.astype(np.float64) / 65535.0).astype(np.float32), "uint16"
        elif np.issubdtype(arr.dtype, np.floating):
            data, kind = np.clip(arr.astype(np.float32), 0, 1), "float"
        else:
            raise InputError(f"A numpy image must be uint8, uint16 or float in [0, 1], got {arr.dtype}.")
        return torch.from_numpy(np.ascontiguousarray(data)).permute(2, 0, 1).unsqueeze(0), kind
    if isinstance(image, torch.Tensor):
        if image.ndim == 3 and image.shape[0] == 3:
            return image.unsqueeze(0).float(), "chw"
        if image.ndim == 4 and image.shape[1] == 3:
            return image.float(), "batch"
        raise InputError(f"A tensor image must be (3, H, W) or (B, 3, H, W) float in [0, 1], got {tuple(image.shape)}.")
    raise InputError(f"Cannot restore a {type(image).__name__}: give a file path, PIL image, numpy array or tensor.")


def from_image_tensor(images: torch.Tensor, kind: str, like: ImageKind | None = None):
    """The inverse of :func:`to_image_tensor` for ``(B, 3, H, W)`` images in [0, 1]: the same kind
    as the input. For a path or PIL image, with ``like`` (the input's :func:`image_kind` or
    :func:`pil_kind`): a PIL image of its mode (grayscale, 16-bit grayscale, alpha kept; the ICC
    profile in ``info["icc_profile"]``), or for the 16-bit kinds Pillow cannot hold (RGB, RGBA,
    gray + alpha) a uint16 numpy array ``H x W x C`` (3, 4 or 2 channels). What the input held but
    the result cannot (``like.reduced``) is said in one warning."""
    import numpy as np

    if kind == "batch":
        return images
    if kind == "chw":
        return images[0]
    if kind in ("path", "pil"):
        like = like or ImageKind()
        notes = list(like.reduced)
        icc = _usable_icc(like, notes)
        if notes:
            log.warning("%s: %s", like.source or "image", "; ".join(notes))
        if not like.fits_pillow:
            return _samples_of(images[0], like, 16)
        return _pil_image(_samples_of(images[0], like, like.bits), icc)
    if kind == "uint8":
        return to_uint8(images[0])
    if kind == "uint16":
        x = images[0].detach().float().clamp(0, 1).permute(1, 2, 0).cpu().numpy().astype(np.float64)
        return np.round(x * 65535.0).astype(np.uint16)
    return images[0].detach().float().clamp(0, 1).permute(1, 2, 0).cpu().numpy()
