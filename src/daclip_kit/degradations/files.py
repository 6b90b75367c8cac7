"""Degrading image files: the library behind ``daclip-kit degrade``.

:func:`degrade_files` writes ``OUT/<type>.png`` per type for one input (``OUT/<stem>/<type>.png``
for several), or compositions named ``<a>+<b>.png``. Every label set is drawn and every target
checked before anything is written, so a refused run writes nothing.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from ..errors import ConfigError, InputError, suggest
from ..factory import create_degradation
from ..io import list_images, read_image, write_image
from ..plugins import get_registry
from ..types import DEGRADATIONS
from .composition import RandomComposition, compose, folder_name, physical_order

#: Draws per requested composition before giving up on finding distinct ones.
DRAWS_PER_COMPOSITION = 50


@dataclass(frozen=True)
class Degraded:
    """One written file: its input, path and the degradations applied (in order)."""

    input: Path
    output: Path
    degradations: list[str]


def registered_types() -> list[str]:
    """Registered degradations, the ten official ones first (in the paper's order)."""
    registered = get_registry("degradations").names()
    return [t for t in DEGRADATIONS if t in registered] + [t for t in registered if t not in DEGRADATIONS]


def parse_type_options(items: Sequence[str]) -> dict[str, dict[str, str]]:
    """``["noisy.sigma=25"]`` -> ``{"noisy": {"sigma": "25"}}`` (typed when the generator is built).

    Raises:
        ConfigError: malformed item or unknown degradation (with a suggestion).
    """
    names = get_registry("degradations").names()
    out: dict[str, dict[str, str]] = {}
    for item in items:
        key, sep, value = item.partition("=")
        name, dot, field = key.rpartition(".")
        if not sep or not dot or not name or not field:
            raise ConfigError(f"--set {item!r} must look like TYPE.KEY=VALUE, e.g. noisy.sigma=25.")
        if name not in names:
            raise ConfigError(f"--set {item!r}: unknown degradation {name!r}.{suggest(name, names)}")
        out.setdefault(name, {})[field] = value
    return out


def distinct_compositions(mixer: RandomComposition, count: int, generator) -> list[list[str]]:
    """``count`` different label sets drawn by ``mixer``.

    Raises:
        ConfigError: fewer than ``count`` distinct sets turned up in a bounded number of draws.
    """
    seen: dict[tuple[str, ...], None] = {}
    if count <= 0:
        return []
    for _ in range(DRAWS_PER_COMPOSITION * count):
        seen.setdefault(tuple(mixer.sample_labels(generator)))
        if len(seen) == count:
            return [list(labels) for labels in seen]
    raise ConfigError(f"--num-composed {count}: only {len(seen)} different compositions of 2-3 of the "
                      f"{len(mixer.pool)} types turned up in {DRAWS_PER_COMPOSITION * count} draws; "
                      "lower --num-composed.")


def degrade_files(inputs: Sequence[str | Path], out: str | Path, *, types: Sequence[str] | None = None,
                  compose_types: bool = False, num_composed: int = 3, seed: int = 0,
                  options: Mapping[str, Mapping[str, str]] | None = None, max_side: int | None = None,
                  overwrite: bool = False) -> list[Degraded]:
    """Write synthetic degradations of image files.

    Args:
        inputs: image files or folders.
        out: the output folder.
        types: degradation names (default: every registered one).
        compose_types: apply ``types`` together in physical order (or, without ``types``,
            ``num_composed`` different random compositions of 2-3 types per input).
        num_composed: random compositions per input.
        seed: seed of every random choice.
        options: per-type generator settings (:func:`parse_type_options`).
        max_side: shrink inputs (area interpolation) so their longer side is at most this first.
        overwrite: replace existing outputs (inputs are never replaced).

    Returns:
        The written files, in order.

    Raises:
        UnknownComponentError, ConfigError, InputError: before anything is written.
    """
    import torch

    from ..ops.resize import fit_longest

    chosen = list(dict.fromkeys(types)) if types else registered_types()
    for t in chosen:
        get_registry("degradations").get(t)  # unknown name -> error with suggestion
    gens = {t: create_degradation(t, **dict((options or {}).get(t, {}))) for t in chosen}
    if compose_types and types and len(chosen) < 2:
        raise ConfigError("--compose needs at least two --types (or none, for random compositions).")

    files = list_images(inputs)
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise InputError(f"--out {str(out)!r} is a file; degrade writes one <type>.png per degradation into a "
                         "folder. Give a folder path (it is created if missing).")
    g = torch.Generator().manual_seed(seed)
    mixer = None
    if compose_types and not types:
        mixer = RandomComposition(pool=tuple(chosen), count=(2, min(3, len(chosen))), generators=gens)
    planned: list[tuple[Path, Path, list[str]]] = []
    resolved_inputs = {p.resolve() for p in files}
    for path in files:
        base = out if len(files) == 1 else out / path.stem
        if compose_types and types:
            label_sets = [physical_order(chosen)]
        elif compose_types:
            assert mixer is not None  # made above for random compositions
            label_sets = distinct_compositions(mixer, num_composed, g)
        else:
            label_sets = [[t] for t in chosen]
        planned.extend((path, base, labels) for labels in label_sets)
    for _, base, labels in planned:
        target = base / f"{folder_name(labels)}.png"
        if target.resolve() in resolved_inputs:
            raise InputError(f"Refusing to overwrite the input {str(target)!r}; choose another --out.")
        if target.exists() and not overwrite:
            raise InputError(f"{str(target)!r} exists; pass --overwrite or choose an empty --out.")
    written: list[Degraded] = []
    cache: dict[Path, torch.Tensor] = {}
    for path, base, labels in planned:
        if path not in cache:
            img = read_image(path)
            if max_side:
                img = fit_longest(img, max_side)
            cache = {path: img}
        img = cache[path]
        if len(labels) > 1:
            lq, labels = compose(img, labels, g, degradations=gens)
        else:
            lq = gens[labels[0]](img, generator=g)
        target = base / f"{folder_name(labels)}.png"
        write_image(target, lq)
        written.append(Degraded(path, target, list(labels)))
    return written
