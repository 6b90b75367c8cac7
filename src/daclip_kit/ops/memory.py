"""Peak memory of a network call, measured without running it for real.

:func:`peak_activation_bytes` runs the call on the ``meta`` device (shapes only, no data, no
compute) under a dispatch mode that tracks every tensor the operators allocate and frees it when
Python drops it, so the result is the peak of live intermediate tensors: what a forward pass at
that size adds on top of the weights and the inputs. It takes milliseconds whatever the size,
which is what makes automatic tiling possible before anything runs out of memory.
"""

from __future__ import annotations

import weakref
from collections.abc import Mapping
from typing import Any

import torch
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_flatten

#: Bytes per element of the activations under each precision (weights stay as they are).
ACTIVATION_BYTES = {"fp32": 4, "bf16": 2, "fp16": 2}


class PeakMemoryMode(TorchDispatchMode):
    """Tracks the bytes of the storages operators return; :attr:`peak` is the largest live total.

    Inputs that exist before the mode is entered are not counted.
    """

    def __init__(self) -> None:
        super().__init__()
        self.live = 0
        self.peak = 0
        self._seen: set[int] = set()

    def _track(self, tensor: torch.Tensor) -> None:
        storage = tensor.untyped_storage()
        key = id(storage)
        if key in self._seen:
            return
        size = storage.nbytes()
        self._seen.add(key)
        self.live += size
        self.peak = max(self.peak, self.live)

        def release(key: int = key, size: int = size) -> None:
            self.live -= size
            self._seen.discard(key)

        weakref.finalize(storage, release)

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        for item in tree_flatten(out)[0]:
            if isinstance(item, torch.Tensor):
                self._track(item)
        return out


def meta_state(module: torch.nn.Module) -> dict[str, torch.Tensor]:
    """Parameters and buffers of ``module`` as data-less ``meta`` tensors (for ``functional_call``)."""
    tensors = {**dict(module.named_parameters()), **dict(module.named_buffers())}
    return {name: torch.empty_like(t, device="meta") for name, t in tensors.items()}


def peak_activation_bytes(module: torch.nn.Module, args: tuple, kwargs: Mapping[str, Any] | None = None,
                          state: Mapping[str, torch.Tensor] | None = None) -> int:
    """Peak bytes of the intermediate tensors of ``module(*args, **kwargs)``, measured on ``meta``.

    Args:
        module: the network (its weights are replaced by meta tensors for the measurement).
        args, kwargs: the call's inputs; tensors are moved to ``meta`` (only their shapes matter).
        state: :func:`meta_state` of ``module`` when already computed.
    """
    from torch.func import functional_call

    def to_meta(value: Any) -> Any:
        return torch.empty_like(value, device="meta") if isinstance(value, torch.Tensor) else value

    meta_args = tuple(to_meta(a) for a in args)
    meta_kwargs = {k: to_meta(v) for k, v in (kwargs or {}).items()}
    mode = PeakMemoryMode()
    with torch.no_grad(), mode:
        functional_call(module, dict(state or meta_state(module)), meta_args, meta_kwargs)
    return mode.peak


def available_bytes(device: torch.device) -> int:
    """Memory a run on ``device`` may use: free CUDA memory, or the system's available RAM."""
    if device.type == "cuda":
        free, _total = torch.cuda.mem_get_info(device)
        return int(free)
    try:
        with open("/proc/meminfo", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    import os

    return int(os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE"))

