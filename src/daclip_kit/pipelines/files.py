"""Restoring image files: the library behind ``daclip-kit restore``.

* :func:`plan_restore` lists the inputs and reads every header (missing files, files that are not
  images, images above the pixel limit) before any model is loaded: all the bad inputs are named in
  one error (:class:`BadInputs`), or left out with ``skip_bad``. :func:`plan_outputs` decides every
  output path and checks it before any computation: one input and ``-o name.png`` writes that file,
  otherwise ``OUT/<stem>.png``; clashes, inputs as outputs, existing files and unwritable folders
  are one-line errors (``resume`` skips finished outputs).
* :func:`restore_files` streams the inputs: images are decoded in DataLoader workers with a
  bounded prefetch, restored in same-size batches (:func:`~daclip_kit.pipelines.engine.restore_images`)
  and written by a background thread, so memory does not grow with the number of inputs and
  decoding and writing overlap the network. Each output keeps its input's kind (gray or RGB,
  8 or 16 bits, alpha, ICC profile; :func:`write_like_input`) and is claimed exclusively (two runs into one folder
  never replace each other's files). Under ``torchrun`` each process restores its share.
"""

from __future__ import annotations

import functools
import logging
import os
from collections import defaultdict
from collections.abc import Callable, Hashable, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from ..errors import InputError
from ..io import (
    IMAGE_SUFFIXES,
    MAX_PIXELS,
    clean_stale_temporaries,
    image_kind,
    image_size,
    list_images,
    read_image,
    write_image,
)

if TYPE_CHECKING:
    import torch
    from torch.utils.data import Dataset

log = logging.getLogger(__name__)

#: Images decoded ahead of the network per worker; writes waiting for the writer thread.
PREFETCH = 2
MAX_PENDING_WRITES = 4


@dataclass(frozen=True)
class Job:
    """One input and where its restoration goes."""

    input: Path
    output: Path
    size: tuple[int, int]  # (width, height)


def output_is_file(output: Path, n_inputs: int) -> bool:
    """Whether ``-o output`` names a file: one input and an image suffix (``out.png``)."""
    return n_inputs == 1 and output.suffix.lower() in IMAGE_SUFFIXES


def _check_writable(folder: Path) -> None:
    existing = folder
    while not existing.exists():
        if existing.parent == existing:
            break
        existing = existing.parent
    if existing.exists() and not existing.is_dir():
        raise InputError(f"Output {str(existing)!r} is a file, not a folder; choose a folder (or, for one input, "
                         "a file name ending in .png).")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise InputError(f"Cannot write into {str(existing)!r} (permission denied); choose another --output.")


@dataclass(frozen=True)
class BadInput:
    """An input that cannot be restored, and why (one line that names the file)."""

    input: Path
    reason: str


#: The fix :class:`BadInputs` names by default (the ``restore`` command names its ``--skip-bad``).
SKIP_BAD_FIX = "Fix or remove them, or pass skip_bad=True to restore the others."


class BadInputs(InputError):
    """Inputs that cannot be restored, all of them, found before anything was written: ``bad``
    holds each with its reason, ``total`` is the number of inputs."""

    def __init__(self, bad: Sequence[BadInput], total: int, fix: str = SKIP_BAD_FIX):
        self.bad = list(bad)
        self.total = total
        head = f"{len(self.bad)} of {total} input(s) cannot be restored; nothing was written:"
        super().__init__("\n".join([head, *(f"  {b.reason}" for b in self.bad), fix]))


class UnreadableInput(InputError):
    """An input whose header read but whose pixels do not decode (a truncated file), found while
    restoring; ``input`` is the file."""

    def __init__(self, bad: BadInput):
        self.input = bad.input
        super().__init__(bad.reason)


def check_inputs(items: Iterable[str | Path], *, max_pixels: int | None = MAX_PIXELS
                 ) -> tuple[list[Path], dict[Path, tuple[int, int]], list[BadInput]]:
    """List ``items`` (image files or folders of images: :func:`~daclip_kit.io.list_images`) and
    read every image's header (readability, size, pixel limit) without decoding it.

    Returns:
        The readable inputs in order, their ``(width, height)`` by path, and every bad input
        (a missing path, a folder without images, a file that is not an image or is too large),
        each with its reason.
    """
    good: list[Path] = []
    sizes: dict[Path, tuple[int, int]] = {}
    bad: list[BadInput] = []
    for item in items:
        try:
            listed = list_images([item])
        except InputError as exc:
            bad.append(BadInput(Path(item), str(exc)))
            continue
        for path in listed:
            try:
                sizes[path] = image_size(path, max_pixels=max_pixels)
            except InputError as exc:
                bad.append(BadInput(path, str(exc)))
                continue
            good.append(path)
    return good, sizes, bad


@dataclass(frozen=True)
class Plan:
    """What :func:`plan_restore` decided: the readable inputs in order, the jobs to run, those done
    before (``resume``) and the inputs left out (``skip_bad``); ``total`` counts every input, bad
    ones included."""

    inputs: list[Path]
    jobs: list[Job]
    done: list[Job]
    bad: list[BadInput]
    total: int


def plan_restore(items: Iterable[str | Path], output: str | Path, *, overwrite: bool = False, resume: bool = False,
                 max_pixels: int | None = MAX_PIXELS, skip_bad: bool = False, fix: str = SKIP_BAD_FIX) -> Plan:
    """:func:`check_inputs` then :func:`plan_outputs` for the readable inputs, before any model is loaded.

    Args:
        items: image files or folders of images.
        skip_bad: leave the bad inputs out (in ``Plan.bad``) instead of refusing.
        fix: the last line of :class:`BadInputs` (what to do about the bad inputs).

    Raises:
        BadInputs: every bad input, one line each, without ``skip_bad``.
        InputError: the output checks of :func:`plan_outputs`.
    """
    items = list(items)
    good, sizes, bad = check_inputs(items, max_pixels=max_pixels)
    total = len(good) + len(bad)
    if bad and not (skip_bad and good):
        raise BadInputs(bad, total, fix if good else "None of the inputs can be restored; fix them or give others.")
    jobs, done = _plan(good, [sizes[p] for p in good], output, overwrite=overwrite, resume=resume, n_inputs=total)
    return Plan(good, jobs, done, bad, total)


def plan_outputs(inputs: Sequence[Path], output: str | Path, *, overwrite: bool = False, resume: bool = False,
                 max_pixels: int | None = MAX_PIXELS) -> tuple[list[Job], list[Job]]:
    """The jobs to run and the ones already done (``resume``), checked before any computation.

    Every input's header is read (size, readability, pixel limit) without decoding it.

    Raises:
        BadInputs: unreadable inputs (all of them, one line each).
        InputError: clashing outputs, an input as output, existing outputs (without ``overwrite``
            or ``resume``), or an output folder that cannot be written.
    """
    good, sizes, bad = check_inputs(inputs, max_pixels=max_pixels)
    if bad:
        raise BadInputs(bad, len(good) + len(bad))
    return _plan(good, [sizes[p] for p in good], output, overwrite=overwrite, resume=resume, n_inputs=len(good))


def _plan(inputs: Sequence[Path], sizes: Sequence[tuple[int, int]], output: str | Path, *, overwrite: bool,
          resume: bool, n_inputs: int) -> tuple[list[Job], list[Job]]:
    output = Path(output)
    if output_is_file(output, n_inputs):
        outs = [output for _ in inputs]  # one input (none when it was left out as bad)
        folder = output.parent
    else:
        if output.suffix.lower() in IMAGE_SUFFIXES and n_inputs > 1:
            raise InputError(f"-o {str(output)!r} looks like a file name but there are {n_inputs} inputs; "
                             "give a folder.")
        outs = [output / f"{p.stem}.png" for p in inputs]
        folder = output
    _check_writable(folder)
    by_name: dict[Path, list[Path]] = defaultdict(list)
    for src, dst in zip(inputs, outs, strict=True):
        by_name[dst].append(src)
    clashes = {dst: srcs for dst, srcs in by_name.items() if len(srcs) > 1}
    if clashes:
        dst, srcs = next(iter(clashes.items()))
        raise InputError(f"Inputs {', '.join(map(str, srcs))} would all be written to {dst}; "
                         "rename them or restore them into separate folders.")
    resolved_inputs = {p.resolve() for p in inputs}
    for dst in outs:
        if dst.resolve() in resolved_inputs:
            raise InputError(f"Output {dst} is one of the inputs; choose another --output "
                             "(inputs are never overwritten).")
    jobs = [Job(src, dst, size) for src, dst, size in zip(inputs, outs, sizes, strict=True)]
    done = [j for j in jobs if j.output.exists()]
    if done and not (overwrite or resume):
        shown = ", ".join(str(j.output) for j in done[:5]) + (f" and {len(done) - 5} more" if len(done) > 5 else "")
        raise InputError(f"Output files exist: {shown}. Pass --resume to skip them or --overwrite to replace them.")
    if resume and not overwrite:
        finished = set(done)
        jobs = [j for j in jobs if j not in finished]
    else:
        done = []
    return jobs, done


class _Decoded:
    """``(index, image)`` of a job list, decoded in DataLoader workers; a failure is returned
    as its message (one line) instead of a worker traceback."""

    def __init__(self, jobs: Sequence[Job], max_pixels: int | None):
        self.jobs = list(jobs)
        self.max_pixels = max_pixels

    def __len__(self) -> int:
        return len(self.jobs)

    def __getitem__(self, index: int):

        try:
            return index, read_image(self.jobs[index].input, max_pixels=self.max_pixels), ""
        except InputError as exc:
            return index, None, str(exc)


def decoded_images(jobs: Sequence[Job], *, workers: int = 0, max_pixels: int | None = MAX_PIXELS,
                   on_bad: Callable[[BadInput], None] | None = None) -> Iterator[tuple[int, torch.Tensor]]:
    """``(job index, (1, 3, H, W) image)`` in job order, decoded by ``workers`` processes ahead of
    use (``PREFETCH`` each; ``0``: in this process, one at a time). With ``on_bad``, an image that
    cannot be decoded is passed to it and left out; without, it ends the run.

    Raises:
        UnreadableInput: an image that cannot be decoded, named in one line (without ``on_bad``).
    """
    from torch.utils.data import DataLoader

    dataset = cast("Dataset[Any]", _Decoded(jobs, max_pixels))  # a map-style dataset by its methods
    loader = DataLoader(dataset, batch_size=None, shuffle=False, num_workers=workers,
                        prefetch_factor=PREFETCH if workers else None, persistent_workers=False)
    for index, image, error in loader:
        if error:
            bad = BadInput(jobs[int(index)].input, error)
            if on_bad is None:
                raise UnreadableInput(bad)
            on_bad(bad)
            continue
        yield int(index), image


def write_like_input(path: Path, image, source: Path, *, exclusive: bool) -> Path:
    """Write ``image`` to ``path`` in the kind of the input file ``source`` (gray or RGB, 8 or 16
    bits, alpha and ICC profile carried over: :func:`~daclip_kit.io.image_kind`); what cannot be
    kept is said in one warning naming ``source``."""
    return write_image(path, image, exclusive=exclusive, like=image_kind(source))


class Writer:
    """Writes PNGs on a background thread, each in its input's kind (:func:`write_like_input`), at
    most :data:`MAX_PENDING_WRITES` waiting; errors surface on the next :meth:`submit` or at
    :meth:`close`."""

    def __init__(self, *, exclusive: bool):
        self.exclusive = exclusive
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="daclip-kit-writer")
        self._pending: list[Future] = []

    def submit(self, path: Path, image, source: Path, *, written: Callable[[], None] | None = None) -> None:
        """Queue one write; ``written()`` is called (on the writer thread) once the file is in place."""
        self._drain(MAX_PENDING_WRITES - 1)
        future = self._pool.submit(write_like_input, path, image, source, exclusive=self.exclusive)
        if written is not None:
            future.add_done_callback(lambda f: f.exception() is None and written())
        self._pending.append(future)

    def _drain(self, keep: int) -> None:
        while len(self._pending) > keep:
            self._pending.pop(0).result()

    def close(self) -> None:
        try:
            self._drain(0)
        finally:
            self._pool.shutdown(wait=True)


@dataclass(frozen=True)
class FileResult:
    """One written output."""

    input: Path
    output: Path
    size: tuple[int, int]  # (width, height) of the restored image
    seconds: float


def restore_files(pipeline, jobs: Sequence[Job], *, options=None, batch_size: int = 1, seed: int = 0,
                  device=None, workers: int = 0, overwrite: bool = False, max_pixels: int | None = MAX_PIXELS,
                  progress: Callable[[float, float], None] | None = None,
                  on_written: Callable[[FileResult], None] | None = None,
                  noise: Mapping[Path, Any] | None = None,
                  on_bad: Callable[[BadInput], None] | None = None) -> list[FileResult]:
    """Restore ``jobs`` (from :func:`plan_outputs`) with ``pipeline`` and write the outputs.

    Args:
        pipeline: a :class:`~daclip_kit.core.pipeline.RestorationPipeline`.
        jobs: this process's jobs (see :func:`daclip_kit.core.distributed.shard`).
        options: :class:`~daclip_kit.core.pipeline.RestoreOptions`.
        batch_size: images of one size per network call.
        seed: every image's noise seed.
        device: where batches go (default: the network's device).
        workers: decoding processes (0: decode in this process).
        overwrite: replace existing outputs; otherwise outputs are claimed exclusively.
        max_pixels: refuse larger images.
        progress: ``progress(done, total)`` in image-evaluations.
        on_written: called with each :class:`FileResult` as soon as its file is in place (from
            the writer thread; writes finish in batch completion order). When the run stops early
            (an error, Ctrl-C), the files already written have all been reported.
        noise: each input's start noise by input path (``restore --noise``; see
            :func:`~daclip_kit.pipelines.engine.restore_images`).
        on_bad: called with each input whose pixels do not decode (its header did: a truncated
            file), which is then left out; without it, such an input ends the run
            (:class:`UnreadableInput`).

    Returns:
        The written files, in input order.
    """
    from .engine import restore_images

    for folder in {j.output.parent for j in jobs}:
        clean_stale_temporaries(folder)
    writer = Writer(exclusive=not overwrite)
    results: list[FileResult] = []
    try:
        images = decoded_images(jobs, workers=workers, max_pixels=max_pixels, on_bad=on_bad)
        by_job: dict[Hashable, torch.Tensor] | None = (
            None if noise is None else {i: noise[j.input] for i, j in enumerate(jobs)})
        for item in restore_images(pipeline, images, options=options, batch_size=batch_size, seed=seed,
                                   device=device, total=len(jobs), progress=progress, noise=by_job):
            job = jobs[cast(int, item.key)]  # the job's index (decoded_images)
            height, width = item.image.shape[-2:]
            result = FileResult(job.input, job.output, (int(width), int(height)), item.seconds)
            writer.submit(job.output, item.image, job.input,
                          written=None if on_written is None else functools.partial(on_written, result))
            results.append(result)
    finally:
        writer.close()
    order = {j.input: i for i, j in enumerate(jobs)}
    return sorted(results, key=lambda r: order[r.input])
