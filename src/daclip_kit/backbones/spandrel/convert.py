"""Build a :class:`SpandrelBackbone` from a checkpoint of any architecture spandrel recognises.

The file is read by daclip-kit (``torch.load(weights_only=True)`` or safetensors: no code from the
checkpoint runs, unlike a pickle), then spandrel recognises the architecture from the keys and shapes
and loads the weights strictly. Native folders (``save_network``) hold the same keys under ``net.``.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ...checkpoint import describe_source, read_pretrained_weights, read_state_dict
from ...errors import CheckpointError, DaclipKitError
from .arch import SpandrelBackbone, check_descriptor, import_spandrel

#: Where training frameworks keep the weights inside a checkpoint (BasicSR, Lightning, ...).
WRAPPERS = ("params_ema", "params", "state_dict", "model", "net_g")
_PREFIX = "net."


def _weights(checkpoint: str | Path | Mapping[str, Any]) -> tuple[dict[str, Any], str | None]:
    """``(state dict in the architecture's own keys, architecture recorded in a native folder)``."""
    if isinstance(checkpoint, (str, Path)) and Path(checkpoint).is_dir():
        from ...pretrained import native_info

        state = read_pretrained_weights(checkpoint)
        if not all(k.startswith(_PREFIX) for k in state):
            raise CheckpointError(f"{checkpoint} does not hold a spandrel network (its keys do not start with "
                                  f"{_PREFIX!r}).")
        recorded = native_info(checkpoint).config.get("architecture")
        return {k[len(_PREFIX):]: v for k, v in state.items()}, recorded
    return read_state_dict(checkpoint, wrappers=WRAPPERS), None


def recognises(checkpoint: Mapping[str, Any]) -> bool:
    """Whether spandrel recognises one of its architectures in ``checkpoint`` (a state dict, possibly
    under a training framework's wrapper key); ``False`` when spandrel is not installed."""
    try:
        spandrel = import_spandrel()
        state = read_state_dict(checkpoint, wrappers=WRAPPERS)
    except DaclipKitError:  # no spandrel, or no tensors: nothing to recognise
        return False
    state = spandrel.canonicalize_state_dict(state)
    return any(support.detect(state) for support in spandrel.MAIN_REGISTRY.architectures("detection"))


def load_spandrel(checkpoint: str | Path | Mapping[str, Any], *, config: Any = None) -> SpandrelBackbone:
    """The network in ``checkpoint`` (a ``.pth``/``.safetensors`` file of any architecture spandrel
    recognises, a state dict, or a native folder), wrapped as a backbone, in eval mode on the CPU.

    Args:
        checkpoint: the weights.
        config: ignored except ``{"architecture": ID}``, which must match what is recognised.

    Raises:
        CheckpointError: no architecture of spandrel matches, the weights do not load, or the
            network is not an RGB-to-RGB model at the input size (super-resolution, inpainting).
        ConfigError: spandrel is not installed.
    """
    spandrel = import_spandrel()
    source = describe_source(checkpoint)
    state, recorded = _weights(checkpoint)
    try:
        descriptor = spandrel.MAIN_REGISTRY.load(spandrel.canonicalize_state_dict(state))
    except spandrel.UnsupportedModelError:
        known = ", ".join(s.architecture.id for s in spandrel.MAIN_REGISTRY.architectures())
        raise CheckpointError(f"{source}: spandrel recognises none of its architectures in this checkpoint "
                              f"(first keys: {list(state)[:4]}). It knows: {known}.") from None
    except (RuntimeError, KeyError, ValueError, AssertionError) as exc:
        raise CheckpointError(f"{source}: spandrel took it for one of its architectures but could not load it "
                              f"({exc.__class__.__name__}: {exc}).") from None
    wanted = recorded or (config.get("architecture") if isinstance(config, Mapping) else None)
    if wanted and wanted != descriptor.architecture.id:
        raise CheckpointError(f"{source} holds a {descriptor.architecture.id} network, not the recorded {wanted}.")
    check_descriptor(descriptor, source)
    return SpandrelBackbone(descriptor=descriptor).eval()
