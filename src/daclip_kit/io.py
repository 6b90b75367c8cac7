"""File I/O: atomic writes and image reading/writing as ``(B,3,H,W)`` float RGB in [0, 1]; a
written image can keep the kind of its input (grayscale, 16 bits, alpha: :func:`image_kind`).

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
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from .errors import InputError

log = logging.getLogger(__name__)

if TYPE_CHECKING:
    import numpy as np
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
                             "Choose another output folder or pass --overwrite.")


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
                         f"limit of {max_pixels / 1e6:.0f} MP; raise it with --max-pixels N if you mean it.")


def _png_is_16bit_rgb(path: Path) -> bool:
    """Whether a PNG's header says 16 bits per sample in colour (Pillow reads those at 8 bits)."""
    try:
        with path.open("rb") as fh:
            head = fh.read(26)
    except OSError:
        return False
    return head[:8] == b"\x89PNG\r\n\x1a\n" and len(head) == 26 and head[24] == 16 and head[25] in (2, 6)


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
        raise InputError(f"Cannot read {str(path)!r} as an image: {exc}") from None
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
    """Read an image file as a ``(1, 3, H, W)`` float32 RGB tensor in [0, 1].

    Grayscale is repeated to three channels and an alpha channel is dropped (composited over white
    is not done: restoration needs the raw colours). 16-bit grayscale keeps its precision; 16-bit
    RGB PNGs are read at 8 bits (Pillow's limit; a warning says so). Of an animated image (GIF)
    the first frame is read, with a warning.

    Raises:
        InputError: the file is missing, not a readable image, or larger than ``max_pixels``.
    """
    import numpy as np
    import torch
    from PIL import Image, ImageOps, UnidentifiedImageError

    path = Path(path)
    try:
        with _unlimited(Image), Image.open(path) as im:
            _check_pixels(path, im.size, max_pixels)
            frames = getattr(im, "n_frames", 1)
            if frames > 1:
                log.warning("%s has %d frames; restoring the first", path, frames)
            if im.format == "PNG" and _png_is_16bit_rgb(path):
                log.warning("%s is a 16-bit RGB PNG; Pillow reads it at 8 bits per channel", path)
            im.load()
            arr = _to_float_rgb(ImageOps.exif_transpose(im), np)
    except FileNotFoundError:
        raise InputError(f"Image {str(path)!r} does not exist.") from None
    except (UnidentifiedImageError, OSError, ValueError) as exc:
        raise InputError(f"Cannot read {str(path)!r} as an image: {exc}") from None
    return torch.from_numpy(arr).permute(2, 0, 1).unsqueeze(0).contiguous()


def _to_float_rgb(im, np):
    mode = im.mode
    if mode.startswith("I"):
        # 16-bit files open as "I;16*" or "I" (32-bit container); both are scaled by 2**16 - 1,
        # whatever the content, so a dark 16-bit image stays dark.
        a = np.clip(np.asarray(im, dtype=np.float64) / 65535.0, 0.0, 1.0).astype(np.float32)
        return np.repeat(a[..., None], 3, axis=2)
    if mode == "F":
        a = np.asarray(im, dtype=np.float32)
        return np.repeat(np.clip(a, 0, 1)[..., None], 3, axis=2)
    if mode != "RGB":
        im = im.convert("RGB")
    return np.asarray(im, dtype=np.float32) / 255.0


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
    bits per sample, and the alpha plane (``(H, W)`` uint8, EXIF-oriented like the pixels)."""

    gray: bool = False
    bits: int = 8
    alpha: npt.NDArray[np.uint8] | None = None  # (H, W)

    @property
    def mode(self) -> str:
        """The Pillow mode written: ``L``, ``I;16``, ``LA``, ``RGB`` or ``RGBA``."""
        if self.gray and self.bits == 16:
            return "I;16"
        return ("L" if self.gray else "RGB") + ("A" if self.alpha is not None else "")


#: Pillow modes read as grayscale; those of 16 bits (and 32-bit int / float) are written as I;16.
_GRAY_MODES = ("1", "L", "LA", "La", "I", "I;16", "I;16L", "I;16B", "I;16N", "F")


def image_kind(path: str | Path) -> ImageKind:
    """The kind of an image file, for :func:`write_image`'s ``like``: grayscale inputs (8-bit or
    16-bit) stay grayscale at their depth; an alpha channel (RGBA, LA, or a palette with
    transparency) is carried over unchanged. A 16-bit gray image with alpha keeps its alpha at 8
    bits (Pillow has no 16-bit gray+alpha mode); 16-bit RGB PNGs are read, and so written, at 8 bits.

    Raises:
        InputError: the file is missing or not a readable image.
    """
    from PIL import Image, UnidentifiedImageError

    path = Path(path)
    try:
        with _unlimited(Image), Image.open(path) as im:
            return pil_kind(im, exif=True)
    except FileNotFoundError:
        raise InputError(f"Image {str(path)!r} does not exist.") from None
    except (UnidentifiedImageError, OSError, ValueError) as exc:
        raise InputError(f"Cannot read {str(path)!r} as an image: {exc}") from None


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
    return ImageKind(gray=gray, bits=bits if gray else 8, alpha=alpha)


def _to_pil(image: torch.Tensor, kind: ImageKind):
    """``(3,H,W)``/``(1,3,H,W)`` float RGB in [0, 1] as a Pillow image of ``kind``: grayscale as
    the luma (ITU-R BT.601, as Pillow's ``convert("L")``) of the restored RGB, rounded to 8 or 16
    bits; the alpha plane appended unchanged."""
    import numpy as np
    from PIL import Image

    if not kind.gray:
        rgb = Image.fromarray(to_uint8(image))
        if kind.alpha is None:
            return rgb
        return Image.merge("RGBA", (*rgb.split(), Image.fromarray(kind.alpha)))
    x = image.detach().float().clamp(0, 1).to("cpu")
    x = x[0] if x.ndim == 4 else x
    luma = (0.299 * x[0] + 0.587 * x[1] + 0.114 * x[2]).numpy().astype(np.float64)
    if kind.bits == 16:
        return Image.fromarray(np.round(luma * 65535.0).astype(np.uint16))  # mode I;16
    gray = Image.fromarray(np.round(luma * 255.0).astype(np.uint8))
    if kind.alpha is None:
        return gray
    return Image.merge("LA", (gray, Image.fromarray(kind.alpha)))


def write_image(path: str | Path, image: torch.Tensor, *, exclusive: bool = False,
                like: ImageKind | None = None) -> Path:
    """Write a ``(3,H,W)`` or ``(1,3,H,W)`` float image in [0, 1] atomically.

    The format follows the suffix (PNG for ``.png``); values are clamped and rounded. By default
    the file is 8-bit RGB; ``like`` (:func:`image_kind` of the input) keeps the input's kind:
    grayscale as the luma of the restored RGB (``L``, or ``I;16`` for 16-bit inputs), alpha carried
    over unchanged. A format that cannot hold that kind (e.g. JPEG and alpha) gets 8-bit ``L``/RGB,
    with a warning. With ``exclusive`` an existing file is never replaced (:func:`atomic_path`).

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
    im = _to_pil(image, kind)
    with atomic_path(path, exclusive=exclusive) as tmp:
        try:
            im.save(tmp, format=fmt)
        except (OSError, KeyError, ValueError):
            if kind.mode == "RGB":
                raise
            plain = ImageKind(gray=kind.gray)
            log.warning("%s cannot hold a %s image; writing %s", fmt, kind.mode, plain.mode)
            _to_pil(image, plain).save(tmp, format=fmt)
    return path


def to_image_tensor(image) -> tuple[torch.Tensor, str]:
    """``(B, 3, H, W)`` float RGB in [0, 1] from a path, PIL image, numpy array or tensor, and the
    kind of the input for :func:`from_image_tensor`.

    Kinds: ``"path"``, ``"pil"``, ``"uint8"`` / ``"float"`` (numpy ``H x W x 3`` or ``H x W``),
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
        elif np.issubdtype(arr.dtype, np.floating):
            data, kind = np.clip(arr.astype(np.float32), 0, 1), "float"
        else:
            raise InputError(f"A numpy image must be uint8 or float in [0, 1], got {arr.dtype}.")
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
    as the input (a PIL image for a path; with ``like``, the input's :func:`image_kind` or
    :func:`pil_kind`: grayscale, 16 bits, alpha kept)."""
    if kind == "batch":
        return images
    if kind == "chw":
        return images[0]
    if kind in ("path", "pil"):
        return _to_pil(images[0], like or ImageKind())
    if kind == "uint8":
        return to_uint8(images[0])
    return images[0].detach().float().clamp(0, 1).permute(1, 2, 0).cpu().numpy()
