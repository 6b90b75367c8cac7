"""How networks run: precision (autocast), torch.compile with size buckets.

The networks run under autocast at the chosen precision while the sampler's arithmetic and the
diffusion state stay float32 (the network output is cast back before the solver step), so a
low-precision run changes the network's numbers only. ``auto`` picks bf16 on CUDA devices that
support it (fp16 otherwise) and fp32 on the CPU, where bf16 is rarely faster.

Compiled networks (``torch.compile``, CUDA graphs via ``mode="reduce-overhead"`` on CUDA) see
static shapes: inputs are padded to multiples of a size bucket (default 64) so images of nearby
sizes share one compiled graph instead of compiling again.
"""

from __future__ import annotations

import contextlib
import logging
import math
from typing import cast

import torch

from ..errors import ConfigError

log = logging.getLogger(__name__)

PRECISIONS: tuple[str, ...] = ("fp32", "bf16", "fp16", "auto")
DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16}
#: Spatial multiple compiled networks are padded to, unless the options say otherwise.
DEFAULT_BUCKET = 64


def resolve_precision(precision: str, device: torch.device) -> str:
    """``fp32``, ``bf16`` or ``fp16`` for ``precision`` on ``device`` (``auto`` decided here).

    Raises:
        ConfigError: an unknown name, or ``fp16`` on a device without fp16 autocast.
    """
    if precision not in PRECISIONS:
        raise ConfigError(f"precision={precision!r} must be one of {', '.join(PRECISIONS)}.")
    if precision == "auto":
        if device.type == "cuda":
            return "bf16" if torch.cuda.is_bf16_supported() else "fp16"
        return "fp32"
    if precision == "fp16" and device.type == "cpu" and not _cpu_fp16_autocast():
        raise ConfigError("precision='fp16' has no CPU autocast in this torch; use bf16 or fp32 on the CPU.")
    return precision


def _cpu_fp16_autocast() -> bool:
    try:
        with torch.autocast("cpu", dtype=torch.float16):
            return True
    except RuntimeError:
        return False


def autocast(precision: str, device: torch.device) -> contextlib.AbstractContextManager:
    """Autocast to ``precision`` (resolved) on ``device``; nothing for fp32."""
    if precision == "fp32":
        return contextlib.nullcontext()
    return torch.autocast(device_type=device.type, dtype=DTYPES[precision])


def bucket_divisor(network: torch.nn.Module, bucket: int | None) -> int:
    """The multiple ``network``'s inputs are padded to: its ``size_divisor`` (1 when it has
    none), raised to a multiple of ``bucket`` when given (lcm), so static-shape compiled graphs are
    reused across nearby sizes."""
    divisor = max(1, int(getattr(network, "size_divisor", 1) or 1))
    if not bucket:
        return divisor
    return divisor * bucket // math.gcd(divisor, bucket)


class TensorTime(torch.nn.Module):
    """Calls a denoiser with the time as a ``(1,)`` tensor instead of a Python float, so a
    compiled graph is not specialised (and recompiled) for every sampling step."""

    def __init__(self, module: torch.nn.Module):
        super().__init__()
        self.module = module
        for name in ("size_divisor", "pad_mode", "accepts", "context_dim"):
            if hasattr(module, name):
                setattr(self, name, getattr(module, name))

    def forward(self, x_t, lq, t, **context):
        if not isinstance(t, torch.Tensor):
            t = torch.full((1,), float(t), device=x_t.device)
        return self.module(x_t, lq, t, **context)


class CompiledCache:
    """``torch.compile``d versions of networks, made once per (network, device type).

    Compilation happens lazily on the first call of each input shape. A compiled network answers
    the original's attributes (``size_divisor``, ``accepts``, ...).
    """

    def __init__(self) -> None:
        self._compiled: dict[tuple[int, str], torch.nn.Module] = {}

    def get(self, module: torch.nn.Module, device: torch.device, *, denoiser: bool) -> torch.nn.Module:
        """The compiled ``module``; denoisers get their time as a tensor (:class:`TensorTime`)."""
        key = (id(module), device.type)
        if key not in self._compiled:
            mode = "reduce-overhead" if device.type == "cuda" else "default"
            log.info("compiling %s for %s (mode %s)", type(module).__name__, device.type, mode)
            compiled = cast(torch.nn.Module, torch.compile(module, mode=mode, dynamic=False))  # an OptimizedModule
            self._compiled[key] = TensorTime(compiled) if denoiser else compiled  # attributes read through
        return self._compiled[key]
