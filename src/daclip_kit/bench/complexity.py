"""Model complexity for Table 8: parameter counts, multiply-accumulates and runtime.

Two MAC counts are reported for one forward pass at batch 1:

* :func:`macs_hooks` - forward hooks on every ``nn.Conv2d`` / ``nn.Linear`` (and transposed conv),
  counting ``output elements x (in_channels / groups) x kernel area`` (or ``x in_features``), bias
  excluded. This is what hook-based counters (thop, torchsummaryX) and hence the paper report.
* :func:`macs_flopcounter` - ``torch.utils.flop_counter.FlopCounterMode`` FLOPs divided by two; it
  also sees attention matmuls and other tensor products.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from typing import Any

import torch
from torch import nn

from ..types import Conditioning


def count_parameters(module: nn.Module) -> int:
    """Number of distinct parameter elements (shared/aliased parameters counted once)."""
    seen: set[int] = set()
    total = 0
    for p in module.parameters():
        if id(p) not in seen:
            seen.add(id(p))
            total += p.numel()
    return total


def count_used_parameters(call: Callable[[], Any], module: nn.Module) -> int:
    """Number of distinct parameter elements of ``module`` that ``call()``'s output depends on.

    The autograd graph of one run is walked back to its leaves, so parts of the module that the call
    does not touch (e.g. DA-CLIP's text tower when images are embedded) are not counted. Works on the
    meta device. Parameters' ``requires_grad`` flags are restored afterwards.
    """
    params = list(module.parameters())
    flags = [p.requires_grad for p in params]
    owned = {id(p) for p in params}
    try:
        for p in params:
            p.requires_grad_(True)
        with torch.enable_grad():
            out = call()
        roots = [t.grad_fn for t in _tensors(out) if t.grad_fn is not None]
        used: dict[int, int] = {}
        seen: set[int] = set()
        while roots:
            node = roots.pop()
            if id(node) in seen:
                continue
            seen.add(id(node))
            leaf = getattr(node, "variable", None)
            if leaf is not None and id(leaf) in owned:
                used[id(leaf)] = leaf.numel()
            roots.extend(fn for fn, _ in node.next_functions if fn is not None)
        return sum(used.values())
    finally:
        for p, flag in zip(params, flags, strict=True):
            p.requires_grad_(flag)


def _tensors(value: Any) -> list[torch.Tensor]:
    """Every tensor in a (possibly nested) output: tensors, dataclasses, mappings, sequences."""
    import dataclasses

    if isinstance(value, torch.Tensor):
        return [value]
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        value = [getattr(value, f.name) for f in dataclasses.fields(value)]
    elif isinstance(value, dict):
        value = list(value.values())
    if isinstance(value, (list, tuple)):
        return [t for v in value for t in _tensors(v)]
    return []


def _kernel_area(m: nn.modules.conv._ConvNd) -> int:
    area = 1
    for k in m.kernel_size:
        area *= k
    return area


def macs_hooks(call: Callable[[], Any], module: nn.Module) -> int:
    """Multiply-accumulates of ``call()`` counted by hooks on Conv/Linear modules of ``module``."""
    total = 0

    def hook(m: nn.Module, inputs: tuple, out: Any) -> None:
        nonlocal total
        if isinstance(m, nn.Linear):
            total += out.numel() * m.in_features
        elif isinstance(m, nn.modules.conv._ConvTransposeNd):
            # Each input element meets every kernel tap of its group's output channels.
            total += inputs[0].numel() * (m.out_channels // m.groups) * _kernel_area(m)
        elif isinstance(m, nn.modules.conv._ConvNd):  # the only other modules hooked
            total += out.numel() * (m.in_channels // m.groups) * _kernel_area(m)

    handles = [m.register_forward_hook(hook) for m in module.modules()
               if isinstance(m, (nn.Linear, nn.modules.conv._ConvNd))]
    try:
        with torch.no_grad():
            call()
    finally:
        for h in handles:
            h.remove()
    return total


def macs_flopcounter(call: Callable[[], Any]) -> int:
    """``FlopCounterMode`` FLOPs of ``call()`` divided by two (one MAC = two FLOPs)."""
    from torch.utils.flop_counter import FlopCounterMode

    counter = FlopCounterMode(display=False)
    with torch.no_grad(), counter:
        call()
    return counter.get_total_flops() // 2


def median_runtime(call: Callable[[], Any], *, repeats: int = 3, warmup: int = 1,
                   device: torch.device | str = "cpu") -> float:
    """Median wall time in seconds of ``call()`` over ``repeats`` runs after ``warmup`` runs.

    CUDA work is synchronised around each run.
    """
    dev = torch.device(device)

    def sync() -> None:
        if dev.type == "cuda":
            torch.cuda.synchronize(dev)

    times = []
    with torch.no_grad():
        for i in range(warmup + repeats):
            sync()
            t0 = time.perf_counter()
            call()
            sync()
            if i >= warmup:
                times.append(time.perf_counter() - t0)
    return statistics.median(times)


def forward_call(model: nn.Module, kind: str, size: int, device: torch.device | str) -> Callable[[], Any]:
    """A zero-argument callable running one forward of a backbone on a ``(1, 3, size, size)`` input.

    Denoisers get ``x_t = lq``, ``t = 1.0`` and all-zero conditioning of their ``context_dim`` for
    each role they accept; one-shot backbones get an empty or zero :class:`Conditioning`.
    """

    x = torch.rand(1, 3, size, size, generator=torch.Generator().manual_seed(0)).to(device)
    accepts = set(getattr(model, "accepts", ()) or ())
    dim = int(getattr(model, "context_dim", 0) or 0)
    ctx = torch.zeros(1, dim, device=device) if dim else None
    if kind == "denoiser":
        kwargs = {role: ctx for role in ("degradation", "content") if role in accepts and ctx is not None}
        return lambda: model(x, x, 1.0, **kwargs)
    cond = Conditioning(**{role: ctx for role in ("degradation", "content")
                           if role in accepts and ctx is not None})
    return lambda: model(x, cond)
