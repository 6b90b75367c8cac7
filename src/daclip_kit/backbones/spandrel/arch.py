"""Any single-image restoration network that spandrel recognises, as a daclip-kit backbone.

spandrel (the loader behind chaiNNer and ComfyUI) reads a checkpoint's keys and shapes, decides
which of its architectures wrote it (NAFNet, SwinIR, SCUNet, HAT, DAT, ...) and builds that network
with the hyper-parameters the weights imply. :class:`SpandrelBackbone` wraps the network it builds so
that ``restore``, ``bench`` and the demo run it like a built-in one-shot backbone. Only networks that
keep the image size (scale 1) and map RGB to RGB qualify; super-resolution and inpainting models are
refused with the reason.
"""

from __future__ import annotations

import typing
from collections.abc import Mapping
from typing import Any

import torch
from torch import nn

from ...core.backbone import RestorationBackbone
from ...errors import CheckpointError, ConfigError, ShapeError, suggest
from ...types import Conditioning

INSTALL_HINT = "install it with: pip install 'daclip-kit[spandrel]'"
_EXTRA_ADDED = False  # spandrel_extra_arches' architectures are added to spandrel's registry once


def import_spandrel():
    """The ``spandrel`` module (with ``spandrel_extra_arches``' architectures added when that package
    is installed), or a :class:`ConfigError` saying how to install it."""
    try:
        import spandrel
    except ImportError as exc:
        raise ConfigError(f"The 'spandrel' backbone needs the spandrel package; {INSTALL_HINT}.") from exc
    global _EXTRA_ADDED
    if not _EXTRA_ADDED:
        try:
            import spandrel_extra_arches
        except ImportError:
            pass
        else:
            spandrel_extra_arches.install()
        _EXTRA_ADDED = True
    return spandrel


def find_architecture(arch_id: str):
    """spandrel's :class:`Architecture` object with id ``arch_id`` (``"NAFNet"``, ``"SwinIR"``, ...)."""
    registry = import_spandrel().MAIN_REGISTRY
    support = registry.get(arch_id)
    if support is None:
        known = [s.architecture.id for s in registry.architectures()]
        raise ConfigError(f"spandrel has no architecture {arch_id!r}.{suggest(arch_id, known)} "
                          f"Available: {', '.join(sorted(known))}.")
    return support.architecture


def license_note(descriptor: Any) -> str:
    """What is known of the license of a spandrel architecture's code."""
    if type(descriptor.architecture).__module__.startswith("spandrel_extra_arches"):
        return ("restrictive: a spandrel_extra_arches architecture (e.g. non-commercial); check its original "
                "repository's license before use")
    return "permissive: spandrel's core architectures are MIT, Apache-2.0 or public domain"


def check_descriptor(descriptor: Any, source: str) -> None:
    """Refuse what cannot restore at the input size from RGB to RGB, naming the reason.

    Raises:
        CheckpointError: an inpainting model, a model that rescales, other than 3 channels in or
            out, or one that needs square inputs.
    """
    spandrel = import_spandrel()
    arch = descriptor.architecture.id
    if not isinstance(descriptor, spandrel.ImageModelDescriptor):
        raise CheckpointError(f"{source} holds a {arch} {descriptor.purpose} model, which needs a mask besides the "
                              "image; daclip-kit restores single images only.")
    if descriptor.scale != 1:
        raise CheckpointError(f"{source} holds a {arch} model that upscales x{descriptor.scale}; daclip-kit "
                              "restores at the input size (scale 1). Use a super-resolution tool for it.")
    if (descriptor.input_channels, descriptor.output_channels) != (3, 3):
        raise CheckpointError(f"{source} holds a {arch} model with {descriptor.input_channels} input and "
                              f"{descriptor.output_channels} output channels; daclip-kit restores RGB images "
                              "(3 and 3).")
    if descriptor.size_requirements.square:
        raise CheckpointError(f"{source} holds a {arch} model that needs square inputs, which daclip-kit does "
                              "not pad to.")


class SpandrelBackbone(RestorationBackbone):
    """A network built by spandrel, run as a one-shot backbone (no conditioning).

    Build it from a checkpoint with :func:`daclip_kit.backbones.spandrel.convert.load_spandrel`
    (``restore --model spandrel --weights FILE``); constructing it from ``architecture`` and
    ``arch_config`` gives that architecture with random weights.

    Args:
        architecture: spandrel's architecture id (``"NAFNet"``, ``"SwinIR"``, ``"SCUNet"``, ...).
        arch_config: keyword arguments of that architecture's network class (random weights).
        descriptor: a spandrel ``ImageModelDescriptor`` to wrap instead (its weights kept).

    Attributes:
        net: the network spandrel built (keys ``net.*`` in the state dict).
        size_divisor: the architecture's ``multiple_of`` size requirement.
    """

    def __init__(self, architecture: str = "NAFNet", arch_config: Mapping[str, Any] | None = None, *,
                 descriptor: Any = None):
        super().__init__()
        if descriptor is None:
            arch = find_architecture(architecture)
            network_class = typing.get_args(type(arch).__orig_bases__[0])[0]
            try:
                network = network_class(**dict(arch_config or {}))
            except TypeError as exc:
                raise ConfigError(f"spandrel architecture {architecture!r} cannot be built with "
                                  f"{dict(arch_config or {})}: {exc}") from None
            descriptor = arch.load(network.state_dict())
            check_descriptor(descriptor, f"architecture {architecture!r}")
        self._descriptor = descriptor
        self._arch_config = dict(arch_config or {})
        self.net: nn.Module = descriptor.model
        self.size_divisor = int(descriptor.size_requirements.multiple_of)
        self.minimum_size = int(descriptor.size_requirements.minimum)

    @property
    def architecture(self) -> str:
        """spandrel's id of the architecture (``"SwinIR"``)."""
        return self._descriptor.architecture.id

    def export_config(self) -> dict[str, Any]:
        """What a native folder records: the architecture (its hyper-parameters are read from the weights)."""
        return {"architecture": self.architecture, **({"arch_config": self._arch_config} if self._arch_config else {})}

    def describe(self) -> str:
        """One line: architecture, purpose, tags and license, for status lines and notes."""
        d = self._descriptor
        tags = f" [{', '.join(d.tags)}]" if d.tags else ""
        return f"{self.architecture} ({d.purpose}{tags}) via spandrel; license {license_note(d)}"

    def forward(self, lq: torch.Tensor, cond: Conditioning | None = None) -> torch.Tensor:
        """Restore ``lq``.

        Shape:
            - lq: ``(B, 3, H, W)`` float RGB in [0, 1], H and W multiples of ``size_divisor`` and at
              least the architecture's minimum size.
            - output: ``(B, 3, H, W)``.
        """
        if min(lq.shape[-2:]) < self.minimum_size:
            raise ShapeError(f"{self.architecture} needs images of at least {self.minimum_size} px per side; "
                             f"got {tuple(lq.shape[-2:])}. Restore a larger image.")
        # spandrel's public call runs under inference_mode and clamps; its call function is the part
        # inside (plain model(x), or with a noise-level map for DnCNN and DRUNet)
        call = getattr(self._descriptor, "_call_fn", None) or (lambda model, image: model(image))
        if not lq.is_meta:
            return call(self.net, lq)
        # memory estimates trace on the meta device, and some architectures keep tensors cast to their
        # input as plain attributes (SwinIR's mean): put the real ones back afterwards
        kept = [(m, k, v) for m in self.net.modules() for k, v in vars(m).items() if isinstance(v, torch.Tensor)]
        try:
            return call(self.net, lq)
        finally:
            for module, key, value in kept:
                setattr(module, key, value)
