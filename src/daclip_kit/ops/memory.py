"""Peak memory of a network call, measured without running it for real.

:func:`peak_activation_bytes` runs the call on the ``meta`` device (shapes only, no data, no
compute) under a dispatch mode that tracks every tensor the operators allocate and frees it when
Python drops it, so the result is the peak of live intermediate tensors: what a forward pass at
that size adds on top of the weights and the inputs. It takes milliseconds whatever the size,
which is what makes automatic tiling possible before anything runs out of memory.

Attention is counted as the kernel that will run allocates it. On ``meta``,
``scaled_dot_product_attention`` decomposes into matmul + softmax and materialises the
``N x N`` score matrix, which the fused kernels never hold: the flash and memory-efficient CUDA
kernels, cuDNN attention and the CPU flash kernel keep only the output and a float32
log-sum-exp of ``(B, heads, N)`` (saved for the backward pass). :class:`FusedAttention` asks
PyTorch which kernel the real call would take (:func:`sdpa_backend`, on the run's device and
compute dtype with the call's head sizes) and, for a fused one, stands in for it with a
shape-only function that allocates just that (and ``dq, dk, dv`` in the backward pass). When
PyTorch would take the math fallback (an unsupported dtype, head size or mask, or
``dropout_p > 0``), the decomposition is traced as it is, ``N x N`` matrix included, because the
math kernel holds it too. The kernels' own small work buffers (tiles of a few hundred rows per
thread or block) are not counted. An attention call made inside another torch function
(``nn.MultiheadAttention``'s functional path, used by open_clip's towers) is traced as its
decomposition, matrix included: an over-estimate, small for CLIP's 50-257 tokens.
"""

from __future__ import annotations

import functools
import weakref
from collections.abc import Callable, Mapping
from typing import Any

import torch
import torch.nn.functional as F
from torch.overrides import TorchFunctionMode
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_flatten

#: Bytes per element of the activations under each precision (weights stay as they are).
ACTIVATION_BYTES = {"fp32": 4, "bf16": 2, "fp16": 2}
#: The compute dtype of each precision (autocast's for bf16/fp16).
COMPUTE_DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}
#: ``torch._fused_sdp_choice`` codes of the kernels that never hold the ``N x N`` matrix
#: (flash, memory-efficient, cuDNN); 0 is the math fallback.
FUSED_BACKENDS = {1: "flash", 2: "memory-efficient", 3: "cudnn"}


class PeakMemoryMode(TorchDispatchMode):
    """Tracks the bytes of the storages operators return; :attr:`peak` is the largest live total.

    Tensors that exist before the mode is entered are not counted when passed as ``existing``
    (the weights and inputs of the call): views of them (``w.t()``, ``x.view(...)``) share their
    storage and allocate nothing.
    """

    def __init__(self, existing: Any = ()) -> None:
        super().__init__()
        self.live = 0
        self.peak = 0
        self._seen: set[int] = set()
        self._existing = [t.untyped_storage() for t in tree_flatten(existing)[0] if isinstance(t, torch.Tensor)]
        self._existing_ids = {id(st) for st in self._existing}  # the list keeps the ids valid

    def _track(self, tensor: torch.Tensor) -> None:
        storage = tensor.untyped_storage()
        key = id(storage)
        if key in self._seen or key in self._existing_ids:
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


@functools.lru_cache(maxsize=256)
def sdpa_backend(device: str, dtype: torch.dtype, q_shape: tuple[int, ...], k_shape: tuple[int, ...],
                 v_shape: tuple[int, ...], is_causal: bool = False, requires_grad: bool = False) -> str:
    """The kernel ``scaled_dot_product_attention`` takes on ``device`` for these shapes:
    ``"flash"``, ``"memory-efficient"``, ``"cudnn"`` or ``"math"``.

    PyTorch's own dispatcher decides (``torch._fused_sdp_choice``), asked with small real tensors
    of the same batch, heads and head sizes (the choice does not depend on the sequence length
    for unmasked attention). ``"math"`` when it cannot be asked (e.g. the device is missing).
    """
    def probe(shape: tuple[int, ...]) -> torch.Tensor:
        small = (*shape[:-2], min(shape[-2], 16), shape[-1])
        return torch.zeros(small, device=device, dtype=dtype).requires_grad_(requires_grad)

    try:
        choice = int(torch._fused_sdp_choice(probe(q_shape), probe(k_shape), probe(v_shape), None, 0.0, is_causal))
    except (RuntimeError, AttributeError, TypeError):
        return "math"
    return FUSED_BACKENDS.get(choice, "math")


class _FusedAttentionStandIn(torch.autograd.Function):
    """Shape-only ``scaled_dot_product_attention`` allocating what a fused kernel does: the output
    and a float32 log-sum-exp (saved for backward); ``dq, dk, dv`` in backward."""

    @staticmethod
    def forward(ctx, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        out = q.new_empty((*q.shape[:-1], v.shape[-1]))
        lse = q.new_empty(q.shape[:-1], dtype=torch.float32)
        ctx.save_for_backward(q, k, v, out, lse)
        return out

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        q, k, v, _out, _lse = ctx.saved_tensors
        return torch.empty_like(q), torch.empty_like(k), torch.empty_like(v)


class FusedAttention(TorchFunctionMode):
    """During a ``meta`` trace, count ``scaled_dot_product_attention`` as the kernel PyTorch would
    run on ``device`` in ``dtype`` does (see the module docstring).

    Attributes:
        calls: ``{backend: count}`` of the attention calls seen (which kernels were modelled).
    """

    def __init__(self, device: torch.device | str, dtype: torch.dtype):
        super().__init__()
        self.device, self.dtype = str(torch.device(device)), dtype
        self.calls: dict[str, int] = {}

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        if func is F.scaled_dot_product_attention:
            backend = self._backend(*args, **kwargs)
            self.calls[backend] = self.calls.get(backend, 0) + 1
            if backend != "math":
                return _FusedAttentionStandIn.apply(*args[:3])
        return func(*args, **kwargs)

    def _backend(self, query, key, value, attn_mask=None, dropout_p=0.0, is_causal=False, scale=None,
                 enable_gqa=False) -> str:
        if attn_mask is not None or dropout_p or enable_gqa or query.ndim != 4:
            return "math"  # traced as is: the N x N matrix counts
        grad = torch.is_grad_enabled() and any(t.requires_grad for t in (query, key, value))
        return sdpa_backend(self.device, self.dtype, tuple(query.shape), tuple(key.shape), tuple(value.shape),
                            bool(is_causal), grad)


def meta_state(module: torch.nn.Module, *, trainable: bool = False) -> dict[str, torch.Tensor]:
    """Parameters and buffers of ``module`` as data-less ``meta`` tensors (for ``functional_call``);
    with ``trainable`` the parameters that require gradients keep requiring them.

    Each tensor appears once, under its first name: a module reachable under two names (DA-CLIP's
    ``visual`` is ``clip.visual``) is then swapped once and restored correctly, which is why the
    traces call ``functional_call`` with ``tie_weights=False``."""
    params = {name: torch.empty_like(p, device="meta").requires_grad_(trainable and p.requires_grad)
              for name, p in module.named_parameters()}
    return {**params, **{name: torch.empty_like(t, device="meta") for name, t in module.named_buffers()}}


def _to_meta(value: Any) -> Any:
    return torch.empty_like(value, device="meta") if isinstance(value, torch.Tensor) else value


def peak_activation_bytes(module: torch.nn.Module, args: tuple, kwargs: Mapping[str, Any] | None = None,
                          state: Mapping[str, torch.Tensor] | None = None, *,
                          device: torch.device | str = "cpu", dtype: torch.dtype = torch.float32) -> int:
    """Peak bytes of the intermediate tensors of ``module(*args, **kwargs)``, measured on ``meta``.

    Args:
        module: the network (its weights are replaced by meta tensors for the measurement).
        args, kwargs: the call's inputs; tensors are moved to ``meta`` (only their shapes matter).
        state: :func:`meta_state` of ``module`` when already computed.
        device, dtype: where and in which compute dtype the real call runs; they decide which
            attention kernel is modelled (:class:`FusedAttention`). The trace itself runs in the
            inputs' dtype.
    """
    from torch.func import functional_call

    meta_args = tuple(_to_meta(a) for a in args)
    meta_kwargs = {k: _to_meta(v) for k, v in (kwargs or {}).items()}
    state = dict(state or meta_state(module))  # made before the mode: the weights are not counted
    mode = PeakMemoryMode(existing=(state, meta_args, meta_kwargs))
    with torch.no_grad(), FusedAttention(device, dtype), mode:
        functional_call(module, state, meta_args, meta_kwargs, tie_weights=False)
    return mode.peak


def peak_step_bytes(module: torch.nn.Module, args: tuple, kwargs: Mapping[str, Any] | None = None, *,
                    loss: Callable[[Any], torch.Tensor] | None = None, device: torch.device | str = "cpu",
                    dtype: torch.dtype = torch.float32) -> tuple[int, int]:
    """Peak bytes of one training step's forward and backward of ``module(*args, **kwargs)`` on
    ``meta``: ``(forward peak, forward + backward peak)``.

    The module's parameters that require gradients are traced as trainable, so the tensors
    autograd saves for the backward pass stay live until it frees them, and the parameter
    gradients it allocates count in the second number. Activation checkpointing
    (``torch.utils.checkpoint``) in the module is traced as it runs: inputs saved, blocks
    recomputed in the backward pass.

    Args:
        loss: the scalar loss of the output (default: the sum of the means of every floating
            tensor in it).
        device, dtype: see :func:`peak_activation_bytes`.
    """
    from torch.func import functional_call

    meta_args = tuple(_to_meta(a) for a in args)
    meta_kwargs = {k: _to_meta(v) for k, v in (kwargs or {}).items()}
    state = meta_state(module, trainable=True)
    mode = PeakMemoryMode(existing=(state, meta_args, meta_kwargs))
    step = _Step(module, mode, loss)
    state = {f"module.{name}": t for name, t in state.items()}
    with torch.enable_grad(), FusedAttention(device, dtype), mode:
        functional_call(step, state, meta_args, meta_kwargs, tie_weights=False)
    return step.forward_peak, mode.peak


class _Step(torch.nn.Module):
    """Forward and backward in one call, so the backward pass (and the recomputation of
    checkpointed blocks in it) sees the meta weights ``functional_call`` put in place."""

    def __init__(self, module: torch.nn.Module, mode: PeakMemoryMode, loss: Callable[[Any], torch.Tensor] | None):
        super().__init__()
        self.module, self.mode, self.loss = module, mode, loss
        self.forward_peak = 0

    def forward(self, *args: Any, **kwargs: Any) -> None:
        out = self.module(*args, **kwargs)
        self.forward_peak = self.mode.peak
        scalar = self.loss(out) if self.loss is not None else _mean_of_outputs(out)
        if scalar.requires_grad:
            scalar.backward()


def _mean_of_outputs(out: Any) -> torch.Tensor:
    parts = [t.float().mean() for t in tree_flatten(out)[0] if isinstance(t, torch.Tensor) and t.is_floating_point()]
    return torch.stack(parts).sum()


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

