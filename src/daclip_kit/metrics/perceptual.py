"""LPIPS (Zhang et al. 2018) with the official DA-CLIP settings: AlexNet trunk, version 0.1.

The network comes from the ``lpips`` package; its linear heads ship inside that wheel, and the
AlexNet trunk (torchvision's ``alexnet-owt-7be5be79.pth``) is loaded here from a local file, so
nothing is downloaded behind the user's back.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from pathlib import Path

import torch
from torch import nn

from ..checkpoint import load_strict, read_state_dict
from ..core.checks import check_image
from ..errors import ShapeError
from ..weights import as_search_dirs, resolve_weights

#: Registered weights of the AlexNet trunk (``daclip-kit weights list``).
WEIGHTS = "lpips-alexnet"
ALEXNET_FILE = "alexnet-owt-7be5be79.pth"

#: torchvision ``alexnet.features`` index -> LPIPS slice holding it.
_SLICE_OF_LAYER = {0: 1, 3: 2, 6: 3, 8: 4, 10: 5}


def alexnet_to_lpips_keys(state_dict: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Map torchvision AlexNet ``features.{i}.{weight,bias}`` to LPIPS ``slice{k}.{i}.*`` keys.

    Classifier keys are dropped (LPIPS uses the convolutional trunk only).
    """
    out = {}
    for key, value in state_dict.items():
        parts = key.split(".")
        if len(parts) == 3 and parts[0] == "features" and int(parts[1]) in _SLICE_OF_LAYER:
            out[f"slice{_SLICE_OF_LAYER[int(parts[1])]}.{parts[1]}.{parts[2]}"] = value
    return out


def load_lpips(weights_dir: str | Path | Sequence[str | Path] | None = None, *,
               device: str | torch.device = "cpu") -> nn.Module:
    """``lpips.LPIPS(net="alex", version="0.1")`` with the AlexNet trunk loaded from a local file.

    Raises:
        WeightsNotFoundError: ``alexnet-owt-7be5be79.pth`` is in none of the searched folders.
        CheckpointError: the file is not a torchvision AlexNet state dict.
    """
    path = resolve_weights(WEIGHTS, search_dirs=as_search_dirs(weights_dir))
    return _load(str(path), str(device))


@functools.lru_cache(maxsize=2)
def _load(path: str, device: str) -> nn.Module:
    import warnings

    import lpips as lpips_package

    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=UserWarning, module="torchvision")
        model = lpips_package.LPIPS(net="alex", version="0.1", pretrained=True, pnet_rand=True,
                                    verbose=False)
    trunk = alexnet_to_lpips_keys(read_state_dict(path, wrappers=(), strip=()))
    load_strict(model.net, trunk, source=path)
    return model.eval().requires_grad_(False).to(device)


def lpips(pred: torch.Tensor, ref: torch.Tensor, *, net: nn.Module | None = None,
          weights_dir: str | Path | None = None) -> torch.Tensor:
    """Per-image LPIPS distance (lower is better), as the official test script computes it.

    The float images are compared without rounding or cropping, mapped to [-1, 1] first.

    Args:
        pred: ``(B, 3, H, W)`` restored images, float RGB in [0, 1].
        ref: ``(B, 3, H, W)`` ground truth, float RGB in [0, 1].
        net: a network called as ``net(x, y)`` on [-1, 1] images returning ``(B, 1, 1, 1)``
            distances; default :func:`load_lpips` ``(weights_dir)``.
        weights_dir: folder holding ``alexnet-owt-7be5be79.pth`` (used when ``net`` is None).

    Returns:
        ``(B,)`` float64 distances.
    """
    check_image(pred, "pred")
    check_image(ref, "ref")
    if pred.shape != ref.shape:
        raise ShapeError(
            f"pred and ref must have the same shape, got {tuple(pred.shape)} and {tuple(ref.shape)}."
        )
    if net is None:
        net = load_lpips(weights_dir, device=pred.device)
    device = next(iter(net.parameters()), pred).device
    with torch.no_grad():
        out = net(pred.to(device) * 2 - 1, ref.to(device) * 2 - 1)
    return out.reshape(pred.shape[0], -1).mean(dim=1).to(torch.float64).cpu()
