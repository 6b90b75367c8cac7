"""Captions of the clean images and the ``daclip_{train,val}.csv`` files.

Two ways to get captions:

* :func:`blip_captioner`: BLIP through ``transformers`` (``pip install 'daclip-kit[caption]'``),
  the captioner the official ``generate_captions.py`` used (via clip-interrogator's BLIP-large).
  The weights must be on disk or downloadable.
* :func:`read_captions_file`: a file the user supplies, keyed by GT file name.

:func:`write_dataset_csvs` then writes one row per LQ image of the universal layout, with the
caption of its GT image: ``filepath`` = LQ path, ``title`` = ``"<caption>: <degradation>"``.
"""

from __future__ import annotations

import csv
import json
import logging
import os
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path

from ..errors import DaclipKitError, InputError, WeightsNotFoundError
from ..io import read_utf8
from ..options import option
from .universal import (
    SPLITS,
    CaptionRow,
    csv_name,
    degradation_folders,
    scan_universal,
    split_title,
    write_captions_csv,
)

log = logging.getLogger(__name__)

DEFAULT_BLIP = "Salesforce/blip-image-captioning-large"


def read_captions_file(path: str | Path) -> dict[str, str]:
    """Read user captions: ``{key: caption}`` where a key is a GT file name, stem or path.

    Accepted formats:

    * ``.json``: an object ``{"0001.png": "a caption", ...}``;
    * ``.jsonl``: lines ``{"file": "0001.png", "caption": "..."}``;
    * anything else: tab-separated lines ``name<TAB>caption`` (an optional header
      ``filename<TAB>caption`` is skipped), or an official ``daclip_*.csv`` (``filepath<TAB>title``,
      the caption being the title before ``": "``).

    Raises:
        InputError: the file is missing or a line is malformed.
    """
    path = Path(path)
    if not path.is_file():
        raise InputError(f"Captions file {str(path)!r} does not exist.")
    text = read_utf8(path, "Captions file")
    if path.suffix.lower() == ".json":
        expected = 'expected one JSON object mapping file names to captions, e.g. {"0001.png": "a caption"}'
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise InputError(f"{path!s}:{exc.lineno}: not valid JSON ({exc.msg}); {expected}.") from None
        if not isinstance(data, dict):
            raise InputError(f"{str(path)!r}: {expected}.")
        return {str(k): str(v) for k, v in data.items()}
    if path.suffix.lower() == ".jsonl":
        expected = 'expected one JSON object per line, e.g. {"file": "0001.png", "caption": "a caption"}'
        out = {}
        for lineno, line in enumerate(text.splitlines(), 1):
            if line.strip():
                try:
                    rec = json.loads(line)
                except json.JSONDecodeError as exc:
                    raise InputError(f"{path!s}:{lineno}: not valid JSON ({exc.msg}); {expected}.") from None
                if not isinstance(rec, dict) or "file" not in rec or "caption" not in rec:
                    raise InputError(f"{path!s}:{lineno}: each line needs 'file' and 'caption'; {expected}.")
                out[str(rec["file"])] = str(rec["caption"])
        return out
    out = {}
    rows = list(csv.reader(text.splitlines(), delimiter="\t"))
    official = bool(rows) and [c.strip() for c in rows[0]] == ["filepath", "title"]
    for lineno, rec in enumerate(rows, 1):
        if not rec or (lineno == 1 and [c.strip().lower() for c in rec] in (["filepath", "title"],
                                                                             ["filename", "caption"])):
            continue
        if len(rec) != 2:
            raise InputError(f"{path!s}:{lineno}: expected 'name<TAB>caption', got {len(rec)} column(s).")
        out[rec[0]] = split_title(rec[1])[0] if official else rec[1]
    return out


class CaptionLookup:
    """Find the caption of a GT image in a user mapping by path, relative path, name or stem."""

    def __init__(self, mapping: Mapping[str, str]):
        self.by_key: dict[str, str] = {}
        for key, caption in mapping.items():
            p = Path(key.replace("\\", "/"))
            for k in (key, p.as_posix(), p.name, p.stem):
                self.by_key.setdefault(k, caption)

    def get(self, gt: Path) -> str | None:
        for k in (str(gt), gt.as_posix(), "/".join(gt.parts[-4:]), gt.name, gt.stem):
            if k in self.by_key:
                return self.by_key[k]
        return None


def blip_captioner(model: str = DEFAULT_BLIP, *, device: str = "cpu", batch_size: int = 8,
                   max_new_tokens: int = 32) -> Callable[[Sequence[Path]], list[str]]:
    """A function captioning image files with BLIP (``transformers``).

    Raises:
        DaclipKitError: ``transformers`` is not installed.
        WeightsNotFoundError: the weights are neither cached nor downloadable.
    """
    try:
        from transformers import BlipForConditionalGeneration, BlipProcessor
    except ImportError as exc:
        raise DaclipKitError(
            "BLIP captions need the 'transformers' package: pip install 'daclip-kit[caption]'. "
            f"Or pass {option('captions', 'FILE')} with your own captions."
        ) from exc
    offline = os.environ.get("HF_HUB_OFFLINE", "") not in ("", "0")
    try:
        processor = BlipProcessor.from_pretrained(model, local_files_only=offline)
        net = BlipForConditionalGeneration.from_pretrained(model, local_files_only=offline).to(device).eval()
    except OSError as exc:
        raise WeightsNotFoundError(
            f"BLIP weights {model!r} are not available ({exc}). Download them once with network access "
            "(e.g. `huggingface-cli download Salesforce/blip-image-captioning-large`), pass a local folder "
            f"with {option('blip_model', 'DIR', python='model=DIR')}, or pass {option('captions', 'FILE')}."
        ) from exc

    def caption(paths: Sequence[Path]) -> list[str]:
        import torch
        from PIL import Image

        out: list[str] = []
        for start in range(0, len(paths), batch_size):
            images = []
            for p in paths[start:start + batch_size]:
                with Image.open(p) as im:
                    images.append(im.convert("RGB"))
            inputs = processor(images=images, return_tensors="pt").to(device)
            with torch.inference_mode():
                ids = net.generate(**inputs, max_new_tokens=max_new_tokens)
            out.extend(t.strip() for t in processor.batch_decode(ids, skip_special_tokens=True))
        return out

    return caption


def write_dataset_csvs(root: str | Path, captions: Mapping[str, str] | Callable[[Sequence[Path]], list[str]], *,
                       splits: Iterable[str] = ("val", "train"), relative_to: str | Path | None = None,
                       out_dir: str | Path | None = None, root_as: str | Path | None = None) -> list[Path]:
    """Write ``daclip_<split>.csv`` for every split of a universal folder.

    Args:
        root: the universal folder.
        captions: a mapping keyed by GT name/stem/path (see :func:`read_captions_file`) or a
            captioner called on lists of GT paths (see :func:`blip_captioner`).
        splits: splits to write (those without a folder are skipped; val first, as the official script).
        relative_to: write ``filepath`` relative to this folder (default: absolute paths).
        out_dir: where the CSVs go (default: ``root``).
        root_as: name the images as if ``root`` were this folder (a set written elsewhere, to be
            moved there).

    Raises:
        InputError: no split exists, or GT images have no caption (the message lists them).
    """
    from ..degradations.composition import degradation_text, parse_labels

    root = Path(root)
    lookup = CaptionLookup(captions) if isinstance(captions, Mapping) else None
    written = []
    for split in splits:
        if split not in SPLITS and not (root / split).is_dir():
            raise InputError(f"Unknown split {split!r}; use one of {SPLITS}.")
        if not (root / split).is_dir():
            continue
        groups = scan_universal(root, split, degradation_folders(root, split))
        pairs = [(folder, p) for folder, group in groups.items() for p in group]
        gts = list(dict.fromkeys(p.gt for _, p in pairs))
        if lookup is not None:
            found = {gt: lookup.get(gt) for gt in gts}
        else:
            assert callable(captions)  # not a mapping: a captioner
            found = dict(zip(gts, captions(gts), strict=True))
        absent = [str(gt) for gt, c in found.items() if not c]
        if absent:
            raise InputError(f"{len(absent)} GT image(s) in {split} have no caption, e.g. {absent[:5]}. "
                             "Add them to the captions file (keys are GT file names).")
        texts = {gt: c for gt, c in found.items() if c}  # every GT has one
        rows = []
        for folder, p in pairs:
            lq = p.lq.resolve()
            if root_as is not None:
                lq = Path(root_as).resolve() / lq.relative_to(root.resolve())
            fp = os.path.relpath(lq, Path(relative_to).resolve()) if relative_to is not None else str(lq)
            rows.append(CaptionRow(fp, texts[p.gt], degradation_text(parse_labels(folder))))
        written.append(write_captions_csv(Path(out_dir or root) / csv_name(split), rows))
        log.info("wrote %d rows to %s", len(rows), written[-1])
    if not written:
        raise InputError(f"{str(root)!r} has none of the splits {list(splits)}; expected ROOT/<split>/<degradation>/.")
    return written
