"""Load the official AirNet checkpoints (``All.pth``, ``Denoise.pth``, ``Derain.pth``, ``Dehaze.pth``):
raw state dicts (no wrapper, no prefix) including the MoCo queue, whose length fixes ``batch_size``."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

from ...checkpoint import build_and_load, describe_source, read_state_dict
from ...config import from_dict
from ..common import config_mapping
from .arch import AirNet
from .config import AirNetConfig


def infer_batch_size(state_dict: Mapping[str, torch.Tensor]) -> int | None:
    """``batch_size`` from the queue ``E.E.queue`` ``[4 n_feats, K]`` (``K = batch_size * 4 n_feats``)."""
    queue = state_dict.get("E.E.queue")
    if queue is None or queue.ndim != 2 or queue.shape[1] % queue.shape[0]:
        return None
    return int(queue.shape[1] // queue.shape[0])


def load_official_airnet(checkpoint: str | Path | Mapping[str, Any], *,
                         config: Mapping[str, Any] | str | None = None) -> AirNet:
    """Build :class:`AirNet` for an official checkpoint and load it strictly (buffers included).

    Args:
        checkpoint: ``All.pth`` etc. (read with ``weights_only=True``), a safetensors file or a
            state dict; a ``module.`` prefix is removed.
        config: ``{"batch_size": N}`` (official ``opt``; also accepted as ``{"opt": {...}}``) or a
            registry name; by default ``batch_size`` is read from the queue length.

    Returns:
        The network in eval mode (BatchNorm uses the stored statistics), float32 on CPU.

    Raises:
        CheckpointError: unreadable file or mismatching keys (every key listed).

    Example:
        >>> from daclip_kit.compat import load_official  # doctest: +SKIP
        >>> net = load_official("airnet", "ckpt/All.pth")  # doctest: +SKIP
    """
    state_dict = read_state_dict(checkpoint)
    data = config_mapping(config)
    if isinstance(data.get("opt"), Mapping):
        data = {**data.pop("opt"), **data}
    if "batch_size" not in data:
        inferred = infer_batch_size(state_dict)
        if inferred is not None:
            data["batch_size"] = inferred
    cfg = from_dict(AirNetConfig, data, where="airnet")
    return build_and_load(
        lambda: AirNet(cfg), state_dict, source=describe_source(checkpoint), config=cfg,
        hint=lambda: ("AirNet's queue length is 256 * batch_size "
                      "(All.pth: 5, Denoise.pth: 3, Derain.pth/Dehaze.pth: 1)."),
    )
