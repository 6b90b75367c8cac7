"""Composed degradations: several generators applied to one image in a physically sensible order.

The order follows the path of light from the scene to the file:

1. scene illumination: ``shadowed``
2. atmosphere and weather between scene and camera: ``hazy``, ``rainy``, ``snowy``
3. the lens: ``raindrop`` (drops on the glass)
4. the exposure: ``motion-blurry`` (camera shake integrates everything in front of the sensor),
   then ``low-light`` (under-exposure and its sensor noise)
5. the sensor: ``noisy``
6. storage: ``jpeg-compressed``
7. editing: ``uncompleted`` (holes cut into the final image)

Degradations from plugins that are not in :data:`PHYSICAL_ORDER` run just before the sensor
noise. The annotation of a composed image is the list of its labels in that order; as text it is
``", ".join(labels)`` (:func:`degradation_text`) and as a folder name ``"+".join(labels)``
(:func:`folder_name`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch

from ..errors import ConfigError
from ..factory import create_degradation
from ..types import DEGRADATIONS
from .base import Draw

#: Official labels in the order they are applied when composed.
PHYSICAL_ORDER: tuple[str, ...] = (
    "shadowed",
    "hazy",
    "rainy",
    "snowy",
    "raindrop",
    "motion-blurry",
    "low-light",
    "noisy",
    "jpeg-compressed",
    "uncompleted",
)

#: Pairs that are not sampled together by :class:`RandomComposition` (one weather at a time).
EXCLUSIVE_PAIRS: tuple[tuple[str, str], ...] = (("rainy", "snowy"),)

_UNKNOWN_RANK = PHYSICAL_ORDER.index("noisy") - 0.5


def physical_order(labels: Sequence[str]) -> list[str]:
    """``labels`` sorted into the order in which they are applied (duplicates removed)."""
    rank = {name: i for i, name in enumerate(PHYSICAL_ORDER)}
    unique = list(dict.fromkeys(labels))
    return sorted(unique, key=lambda n: (rank.get(n, _UNKNOWN_RANK), unique.index(n)))


def degradation_text(labels: Sequence[str]) -> str:
    """The degradation text of a (composed) image: ``"hazy, noisy"``."""
    return ", ".join(labels)


def folder_name(labels: Sequence[str]) -> str:
    """The universal-layout folder of a (composed) image: ``"hazy+noisy"``."""
    return "+".join(labels)


def parse_labels(text: str) -> list[str]:
    """Inverse of :func:`folder_name` and :func:`degradation_text`."""
    sep = "+" if "+" in text else ","
    return [t.strip() for t in text.split(sep) if t.strip()]


def _default_factory(name: str) -> Callable:

    return create_degradation(name)


def compose(images: torch.Tensor, labels: Sequence[str], generator: torch.Generator | None = None, *,
            degradations: Mapping[str, Callable] | None = None) -> tuple[torch.Tensor, list[str]]:
    """Apply the degradations ``labels`` to every image, in :func:`physical_order`.

    Args:
        images: ``(B,3,H,W)`` float in [0, 1].
        labels: registered degradation names, any order.
        generator: source of all randomness (a fixed seed gives a fixed result).
        degradations: generators to use by name (default: ``create_degradation(name)``).

    Returns:
        ``(degraded (B,3,H,W) in [0,1], ordered labels)``.
    """
    if not labels:
        raise ConfigError("compose() needs at least one degradation label.")
    ordered = physical_order(labels)
    out = images
    for name in ordered:
        deg = (degradations or {}).get(name) or _default_factory(name)
        out = deg(out, generator=generator)
    return out, ordered


@dataclass
class RandomComposition:
    """Draw 2–3 distinct degradations per image and apply them in physical order.

    Attributes:
        count: ``(min, max)`` number of degradations per image.
        pool: labels to draw from.
        exclusive: pairs never drawn together.
        configs: per-label keyword configs for the generators.
        generators: ready generators by label (used instead of building them from ``configs``).

    Example:
        >>> import torch
        >>> from daclip_kit.degradations.composition import RandomComposition
        >>> out, labels = RandomComposition()(torch.rand(2, 3, 64, 64), torch.Generator().manual_seed(0))
        >>> out.shape, len(labels)
        (torch.Size([2, 3, 64, 64]), 2)
    """

    count: tuple[int, int] = (2, 3)
    pool: tuple[str, ...] = DEGRADATIONS
    exclusive: tuple[tuple[str, str], ...] = EXCLUSIVE_PAIRS
    configs: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    generators: Mapping[str, Callable] = field(default_factory=dict)

    def __post_init__(self) -> None:
        lo, hi = self.count
        if not 1 <= lo <= hi <= len(self.pool):
            raise ConfigError(f"count {self.count} must satisfy 1 <= min <= max <= {len(self.pool)} (pool size).")
        self._built: dict[str, Callable] = dict(self.generators)

    def generator_for(self, name: str) -> Callable:
        if name not in self._built:
            self._built[name] = create_degradation(name, **dict(self.configs.get(name, {})))
        return self._built[name]

    def sample_labels(self, generator: torch.Generator) -> list[str]:
        """One draw of labels (in physical order) respecting :attr:`exclusive`."""
        draw = Draw(generator)
        k = draw.integer(*self.count)
        chosen: list[str] = []
        candidates = list(self.pool)
        while len(chosen) < k and candidates:
            pick = candidates.pop(draw.integer(0, len(candidates) - 1))
            clash = any({pick, c} == set(pair) for c in chosen for pair in self.exclusive)
            if not clash:
                chosen.append(pick)
        return physical_order(chosen)

    def __call__(self, images: torch.Tensor, generator: torch.Generator | None = None
                 ) -> tuple[torch.Tensor, list[list[str]]]:
        """Degrade each image with its own random composition.

        Returns:
            ``(degraded (B,3,H,W) in [0,1], labels per image)``.
        """
        if generator is None:
            generator = torch.Generator()
            generator.seed()
        outs, all_labels = [], []
        for i in range(images.shape[0]):
            labels = self.sample_labels(generator)
            out, labels = compose(images[i:i + 1], labels, generator,
                                  degradations={n: self.generator_for(n) for n in labels})
            outs.append(out)
            all_labels.append(labels)
        return torch.cat(outs) if outs else images.clone(), all_labels
