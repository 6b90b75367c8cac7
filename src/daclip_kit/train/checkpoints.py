"""Run folders and checkpoints.

A run folder holds::

    OUT/config.toml, config.json      the resolved run config
    OUT/metrics.jsonl                 one JSON record per log step
    OUT/tensorboard/                  TensorBoard event files (``logging.tensorboard``)
    OUT/val-images/step-00001000/     LQ | output | GT images of a validation (``logging.val_images``)
    OUT/checkpoints/step-00001000/
        <model>/                      native folders (config.json + model.safetensors)
        trainer_state.pt              optimizer, scaler, step, epoch, random states
    OUT/checkpoints/best.json         the best validation so far: step, metric, value, checkpoint
    OUT/checkpoints/best              a relative link to that step's checkpoint folder

Each checkpoint folder is written under a temporary name and renamed into place, so it is
complete or absent, with the permissions of an ordinary folder (the umask). ``trainer_state.pt``
holds tensors and plain Python values only and loads with ``torch.load(weights_only=True)``.

A folder with no complete checkpoint yet (a start that failed, or a run stopped before its first
save) holds nothing worth keeping: a new start reuses it. While a run trains, ``OUT/.lock`` is
locked so a second run cannot write into the same folder.

The best checkpoint (:func:`mark_best`) is named by ``best.json`` and the link ``best``, so
``OUT/checkpoints/best`` is a checkpoint folder reference like ``step-N`` (``--resume``,
``--weights``, ``init_from``); pruning (``keep``) never removes it.
"""

from __future__ import annotations

import json
import logging
import math
import os
import re
import shutil
import tempfile
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import IO, Any

from ..errors import CheckpointError, InputError
from ..io import apply_default_mode, atomic_write_text, read_utf8
from ..options import option

log = logging.getLogger(__name__)

CHECKPOINTS = "checkpoints"
STATE_NAME = "trainer_state.pt"
CONFIG_TOML = "config.toml"
CONFIG_JSON = "config.json"
METRICS = "metrics.jsonl"
LOCK = ".lock"
TENSORBOARD = "tensorboard"
VAL_IMAGES = "val-images"
#: ``checkpoints/best`` (a link) and ``checkpoints/best.json``: the best checkpoint by validation.
BEST = "best"
BEST_JSON = "best.json"
#: The files a run writes in its folder (besides ``checkpoints/``).
RUN_FILES = (CONFIG_TOML, CONFIG_JSON, METRICS, LOCK)
#: The folders a run writes in its folder besides ``checkpoints/`` (removed with the run's files).
RUN_FOLDERS = (TENSORBOARD, VAL_IMAGES)
_STEP = re.compile(r"^step-(\d+)$")


def step_of(checkpoint: str | Path) -> int | None:
    """The step of a checkpoint folder named ``step-N``, else ``None``."""
    match = _STEP.match(Path(checkpoint).name)
    return int(match.group(1)) if match else None


def step_dir(out_dir: str | Path, step: int) -> Path:
    """``OUT/checkpoints/step-NNNNNNNN``."""
    return Path(out_dir) / CHECKPOINTS / f"step-{step:08d}"


def list_checkpoints(out_dir: str | Path, complete: Callable[[Path], bool] | None = None) -> list[Path]:
    """Complete checkpoint folders of a run, oldest first: ``step-N`` folders holding
    ``trainer_state.pt``, or those for which ``complete(folder)`` is true."""
    base = Path(out_dir) / CHECKPOINTS
    if not base.is_dir():
        return []
    if complete is None:
        def complete(p: Path) -> bool:
            return (p / STATE_NAME).is_file()
    found = [(int(m.group(1)), p) for p in base.iterdir() if (m := _STEP.match(p.name)) and complete(p)]
    return [p for _, p in sorted(found)]


def find_checkpoint(path: str | Path) -> Path:
    """The checkpoint to resume from: ``path`` itself when it holds ``trainer_state.pt``, else the
    newest checkpoint of the run folder ``path``.

    Raises:
        CheckpointError: nothing to resume from.
    """
    path = Path(path)
    if (path / STATE_NAME).is_file():
        return path
    found = list_checkpoints(path)
    if not found:
        raise CheckpointError(
            f"{str(path)!r} is neither a checkpoint folder (with {STATE_NAME}) nor a run folder with "
            f"{CHECKPOINTS}/step-*/; pass the --out folder of an earlier `daclip-kit train` run."
        )
    return found[-1]


def newest_model_folder(path: str | Path, names: tuple[str, ...]) -> Path | None:
    """The model folder to start from in ``path``: ``path`` itself when it is a native model folder,
    else ``path/<name>`` of a checkpoint folder, else that of the newest checkpoint of the run
    folder ``path`` that has one (the first of ``names`` found, e.g. ``("network-ema", "network")``);
    ``None`` when there is none."""
    from ..pretrained import is_native_folder

    path = Path(path)
    if is_native_folder(path):
        return path

    def model_in(checkpoint: Path) -> Path | None:
        return next((checkpoint / n for n in names if is_native_folder(checkpoint / n)), None)

    if (found := model_in(path)) is not None:
        return found
    complete = list_checkpoints(path, complete=lambda p: model_in(p) is not None)
    return model_in(complete[-1]) if complete else None


def run_dir_of(checkpoint: Path) -> Path:
    """The run folder that holds ``checkpoint`` (``OUT`` of ``OUT/checkpoints/step-N``)."""
    return checkpoint.parent.parent if checkpoint.parent.name == CHECKPOINTS else checkpoint


def check_out_dir(out_dir: str | Path, *, resume_in_place: bool, overwrite: bool) -> str:
    """Whether a run may use ``out_dir``; reads only. Returns ``"new"`` (absent or empty),
    ``"stale"`` (only the files of a run that saved no checkpoint: reused), ``"resume"`` or
    ``"overwrite"``.

    Raises:
        InputError: ``out_dir`` is a file, or holds checkpoints or other files and neither
            resuming that run nor ``overwrite`` was asked for.
    """
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise InputError(f"{str(out)!r} is a file; choose another output folder.")
    if resume_in_place:
        return "resume"
    if not out.is_dir() or not any(out.iterdir()):
        return "new"
    if overwrite:
        return "overwrite"
    others = [p.name for p in out.iterdir() if p.name not in (*RUN_FILES, *RUN_FOLDERS, CHECKPOINTS)]
    if not others and not list_checkpoints(out):
        return "stale"
    raise InputError(f"Output folder {str(out)!r} is not empty. Pass {option('resume', str(out))} to continue that "
                     f"run, {option('overwrite')} to start over in it, or choose another output folder "
                     f"({option('out', 'DIR')}).")


def prepare_out_dir(out_dir: str | Path, plan: str) -> Path:
    """Create the run folder for :func:`check_out_dir`'s ``plan``: for ``"overwrite"`` and
    ``"stale"`` the files an earlier run wrote (checkpoints, configs, metrics, TensorBoard files,
    validation images) are removed first; anything else in the folder is left alone."""
    out = Path(out_dir)
    if plan in ("overwrite", "stale") and out.is_dir():
        if plan == "stale":
            log.warning("%s holds an earlier start that saved no checkpoint; replacing its files", out)
        for folder in (CHECKPOINTS, *RUN_FOLDERS):
            shutil.rmtree(out / folder, ignore_errors=True)
        for name in (CONFIG_TOML, CONFIG_JSON, METRICS):
            (out / name).unlink(missing_ok=True)
    out.mkdir(parents=True, exist_ok=True)
    return out


class RunLock:
    """An exclusive lock on ``OUT/.lock`` for the time a run writes into ``OUT`` (POSIX
    ``flock``; elsewhere nothing is locked)."""

    def __init__(self, out_dir: str | Path):
        self.path = Path(out_dir) / LOCK
        self._fh: IO[str] | None = None

    def acquire(self) -> RunLock:
        """Raises:
            InputError: another run holds the lock.
        """
        try:
            import fcntl
        except ImportError:  # pragma: no cover - not POSIX
            return self
        fh = self.path.open("a+")
        try:
            fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            fh.close()
            raise InputError(f"Another training run is writing into {str(self.path.parent)!r}; wait for it to "
                             "finish or choose another --out.") from None
        self._fh = fh
        return self

    def release(self) -> None:
        if self._fh is not None:
            self._fh.close()
            self._fh = None


def save_checkpoint(out_dir: str | Path, step: int, models: Mapping[str, Callable[[Path], Any]],
                    state: Mapping[str, Any], *, keep: int = 0, protect: int | None = None) -> Path:
    """Write ``OUT/checkpoints/step-N`` atomically.

    Args:
        models: ``{folder name: writer}``; each writer saves a native model folder at the path it
            is given (e.g. ``lambda d: save_pretrained(net, d, net.export_config())``).
        state: the trainer state (tensors and plain values only).
        keep: then delete all but the newest ``keep`` checkpoints (``0`` keeps all) and the one
            of step ``protect`` (the best one, :func:`mark_best`).

    Returns:
        the checkpoint folder.
    """
    import torch

    final = step_dir(out_dir, step)
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{final.name}.", dir=final.parent))
    apply_default_mode(tmp)  # mkdtemp makes it private to the owner
    try:
        for name, write in models.items():
            write(tmp / name)
        torch.save(dict(state), tmp / STATE_NAME)
        if final.exists():
            shutil.rmtree(final)
        os.replace(tmp, final)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    if keep:
        for old in list_checkpoints(out_dir)[:-keep]:
            if protect is None or step_of(old) != protect:
                shutil.rmtree(old, ignore_errors=True)
    return final


def load_state(checkpoint: str | Path) -> dict[str, Any]:
    """Read ``trainer_state.pt`` (``weights_only=True``).

    Raises:
        CheckpointError: missing or unreadable file.
    """
    import torch

    path = Path(checkpoint) / STATE_NAME
    if not path.is_file():
        raise CheckpointError(f"{str(path)!r} does not exist; is {str(checkpoint)!r} a training checkpoint?")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # any failure means the state cannot be used
        raise CheckpointError(f"Cannot read {str(path)!r}: {exc}") from exc


def stored_config_text(checkpoint: str | Path) -> tuple[str, str] | None:
    """``(TOML text, where it came from)`` of the config a checkpoint was trained with: its run
    folder's ``config.toml``, else the copy in ``trainer_state.pt``; ``None`` if neither exists."""
    checkpoint = Path(checkpoint)
    path = run_dir_of(checkpoint) / CONFIG_TOML
    if path.is_file():
        return read_utf8(path, "Run config", CheckpointError, f"restore the run's {CONFIG_TOML}"), str(path)
    text = load_state(checkpoint).get("config")
    return (text, str(checkpoint / STATE_NAME)) if isinstance(text, str) else None


def better(value: float, best: float | None, mode: str) -> bool:
    """Whether the validation metric ``value`` beats ``best`` (``None``: nothing yet) in direction
    ``mode`` (``"max"``: higher is better, ``"min"``: lower); a tie or a non-finite value does not."""
    if not math.isfinite(value):
        return False
    return best is None or (value > best if mode == "max" else value < best)


def mark_best(out_dir: str | Path, record: Mapping[str, Any]) -> Path:
    """Name the checkpoint of ``record["step"]`` the best: ``OUT/checkpoints/best.json`` (``record``:
    ``step``, ``metric``, ``value``, ``mode``, with ``checkpoint``, the folder's name, added) and the
    relative link ``OUT/checkpoints/best`` -> ``step-N``, each replaced atomically. Where links
    cannot be made (Windows without the privilege) only ``best.json`` is written, with a warning.

    Returns:
        the best checkpoint folder (``step-N``).

    Raises:
        CheckpointError: that checkpoint does not exist.
    """
    folder = step_dir(out_dir, int(record["step"]))
    if not (folder / STATE_NAME).is_file():
        raise CheckpointError(f"Cannot mark {str(folder)!r} as the best checkpoint: it does not exist.")
    base = folder.parent
    atomic_write_text(base / BEST_JSON, json.dumps({**record, "checkpoint": folder.name}, indent=2) + "\n")
    link = base / BEST
    tmp = base / f".{BEST}.{os.getpid()}.tmp"
    try:
        tmp.unlink(missing_ok=True)
        os.symlink(folder.name, tmp, target_is_directory=True)
        os.replace(tmp, link)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        log.warning("could not link %s -> %s (%s); %s names the best checkpoint", link, folder.name, exc,
                    base / BEST_JSON)
    return folder


def read_best(out_dir: str | Path) -> dict[str, Any] | None:
    """The record :func:`mark_best` wrote in the run folder ``out_dir`` (``None``: none, or unreadable)."""
    path = Path(out_dir) / CHECKPOINTS / BEST_JSON
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def clear_best(out_dir: str | Path) -> None:
    """Remove ``best.json`` and the ``best`` link of the run folder ``out_dir``."""
    base = Path(out_dir) / CHECKPOINTS
    for path in (base / BEST_JSON, base / BEST):
        if path.is_symlink() or path.is_file():
            path.unlink()
