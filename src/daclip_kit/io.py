"""File I/O: atomic writes and image reading/writing as ``(B,3,H,W)`` float RGB in [0, 1].

Outputs are written to a temporary file in the target folder and moved into place with
:func:`os.replace`, so a crash never leaves a half-written file and an existing file is replaced
only when the new one is complete.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

from .errors import InputError

if TYPE_CHECKING:
    import torch

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp")


@contextlib.contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; on success move it onto ``path``.

    Example:
        >>> with atomic_path("out.json") as tmp:  # doctest: +SKIP
        ...     tmp.write_text("{}")
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        apply_default_mode(tmp_path)
        os.replace(tmp_path, path)
    finally:
        if tmp_path.exists():
            tmp_path.unlink()


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


def read_image(path: str | Path) -> torch.Tensor:
    """Read an image file as a ``(1, 3, H, W)`` float32 RGB tensor in [0, 1].

    Grayscale is repeated to three channels, an alpha channel is dropped (composited over white
    is not done: restoration needs the raw colours), and 16-bit images keep their precision.

    Raises:
        InputError: the file is missing or not a readable image.
    """
    import numpy as np
    import torch
    from PIL import Image, ImageOps, UnidentifiedImageError

    path = Path(path)
    try:
        with Image.open(path) as im:
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


def write_image(path: str | Path, image: torch.Tensor) -> Path:
    """Write a ``(3,H,W)`` or ``(1,3,H,W)`` float image in [0, 1] as an 8-bit file, atomically.

    The format follows the suffix (PNG for ``.png``); values are clamped and rounded.
    """
    from PIL import Image

    path = Path(path)
    fmt = Image.registered_extensions().get(path.suffix.lower())
    if fmt is None:
        raise InputError(f"Cannot write {str(path)!r}: unknown image suffix {path.suffix!r}; use .png.")
    im = Image.fromarray(to_uint8(image), mode="RGB")
    with atomic_path(path) as tmp:
        im.save(tmp, format=fmt)
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
        Image = None
    if Image is not None and isinstance(image, Image.Image):
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


def from_image_tensor(images: torch.Tensor, kind: str):
    """The inverse of :func:`to_image_tensor` for ``(B, 3, H, W)`` images in [0, 1]: the same kind
    as the input (a PIL image for a path)."""
    if kind == "batch":
        return images
    if kind == "chw":
        return images[0]
    arr = to_uint8(images[0]) if kind in ("path", "pil", "uint8") else \
        images[0].detach().float().clamp(0, 1).permute(1, 2, 0).cpu().numpy()
    if kind in ("path", "pil"):
        from PIL import Image

        return Image.fromarray(arr, mode="RGB")
    return arr
