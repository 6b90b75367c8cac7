"""Write a wrapped network as an ONNX, TorchScript or ``torch.export`` (``.pt2``) file.

ONNX: the TorchScript-based exporter (``torch.onnx.export(..., dynamo=False)``, opset 17) with
dynamic batch/height/width axes is tried first; it exports these networks in seconds. Networks
it cannot express (AirNet's ``torchvision::deform_conv2d``) go through the ``torch.export``-based
exporter (``dynamo=True``, onnxscript), which handles all of them but takes minutes on a loaded
CPU. Both give the same graphs within float32 rounding. Every file is written beside its target
and moved into place only when complete.
"""

from __future__ import annotations

import contextlib
import io
import json
import logging
import os
import sys
import warnings
from collections.abc import Sequence
from pathlib import Path

import torch

from ..errors import ExportError
from ..io import atomic_path
from .metadata import EXTRA_FILE, flatten

log = logging.getLogger(__name__)

FORMATS = ("onnx", "torchscript", "exported")
SUFFIXES = {"onnx": ".onnx", "torchscript": ".pt", "exported": ".pt2"}
ONNX_OPSET = 17
ONNX_EXPORTERS = ("auto", "torchscript", "dynamo")


@contextlib.contextmanager
def _stdout_silenced():
    """Discard what C++ code writes to file descriptor 1: the TorchScript exporter prints the
    whole graph there when an operator has no ONNX form (``setup_onnx_logging`` tests a function
    for truth, so its log is always on), although the fallback then succeeds."""
    sys.stdout.flush()
    saved = os.dup(1)
    try:
        with open(os.devnull, "wb") as devnull:
            os.dup2(devnull.fileno(), 1)
            yield
    finally:
        sys.stdout.flush()
        os.dup2(saved, 1)
        os.close(saved)


def _onnx_torchscript(graph, args, names, outputs, dynamic, path: Path) -> None:
    axes = {n: {i: f"{n}_{a}" if a not in ("batch", "height", "width") else a for i, a in spec.items()}
            for n, spec in dynamic.items()}
    with warnings.catch_warnings(), _stdout_silenced():
        warnings.simplefilter("ignore")
        torch.onnx.export(graph, args, str(path), input_names=list(names), output_names=list(outputs),
                          dynamic_axes=axes, opset_version=ONNX_OPSET, dynamo=False, do_constant_folding=True)


def _export_shapes(names, dynamic, n_fixed: int | None) -> tuple:
    """``dynamic_shapes`` for ``torch.export``: the first ``n_fixed`` inputs are positional
    parameters, the rest one ``*embeddings`` tuple (``None``: no ``*embeddings``)."""
    specs = [dict.fromkeys(dynamic[n], torch.export.Dim.DYNAMIC) for n in names]
    if n_fixed is None or n_fixed == len(specs):  # an empty *embeddings is no argument at all
        return tuple(specs)
    return (*specs[:n_fixed], tuple(specs[n_fixed:]))


def _onnx_dynamo(graph, args, names, outputs, dynamic, path: Path, n_fixed: int | None) -> None:
    shapes = _export_shapes(names, dynamic, n_fixed)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        program = torch.onnx.export(graph, args, input_names=list(names), output_names=list(outputs),
                                    dynamic_shapes=shapes, dynamo=True, verbose=False)
    assert program is not None  # the dynamo exporter returns its program
    program.save(str(path))


def write_onnx(graph: torch.nn.Module, args: tuple, names: Sequence[str], outputs: Sequence[str],
               dynamic: dict[str, dict[int, str]], meta: dict, path: Path, *, n_fixed: int | None,
               exporter: str = "auto") -> str:
    """Export ``graph`` called on ``args`` to ONNX at ``path`` with ``meta`` in its
    ``metadata_props``; returns the exporter used (``torchscript`` or ``dynamo``)."""
    try:
        import onnx
    except ImportError:
        raise ExportError("ONNX export needs the onnx package; install it with: "
                          "pip install 'daclip-kit[export]'") from None

    order = {"auto": ("torchscript", "dynamo"), "torchscript": ("torchscript",), "dynamo": ("dynamo",)}[exporter]
    with atomic_path(path) as tmp:
        for i, name in enumerate(order):
            try:
                if name == "torchscript":
                    _onnx_torchscript(graph, args, names, outputs, dynamic, tmp)
                else:
                    _onnx_dynamo(graph, args, names, outputs, dynamic, tmp, n_fixed)
                used = name
                break
            except Exception as exc:
                if i + 1 == len(order):
                    raise ExportError(f"ONNX export failed with the {name} exporter: "
                                      f"{str(exc).splitlines()[0][:300]}") from exc
                log.info("the %s ONNX exporter failed (%s); trying %s", name,
                         str(exc).splitlines()[0][:200], order[i + 1])
        model = onnx.load(str(tmp))
        props = flatten({**meta, "exporter": f"torch.onnx ({used})"})
        del model.metadata_props[:]
        for key, value in props.items():
            entry = model.metadata_props.add()
            entry.key, entry.value = key, value
        onnx.save(model, str(tmp))
    return used


def write_torchscript(graph: torch.nn.Module, args: tuple, meta: dict, path: Path) -> str:
    """Trace ``graph`` (the padding is scripted, so sizes stay dynamic) and save it."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        traced = torch.jit.trace(graph, args, check_trace=False)
    extra = {EXTRA_FILE: json.dumps(flatten({**meta, "exporter": "torch.jit.trace"}))}
    with atomic_path(path) as tmp, warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)  # TorchScript is deprecated; the format is asked for
        torch.jit.save(traced, str(tmp), _extra_files=extra)
    return "torch.jit.trace"


def write_exported(graph: torch.nn.Module, args: tuple, names: Sequence[str],
                   dynamic: dict[str, dict[int, str]], meta: dict, path: Path, *, n_fixed: int | None) -> str:
    """``torch.export`` with dynamic batch/height/width, saved by ``torch.export.save``."""
    shapes = _export_shapes(names, dynamic, n_fixed)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        program = torch.export.export(graph, args, dynamic_shapes=shapes)
    extra = {EXTRA_FILE: json.dumps(flatten({**meta, "exporter": "torch.export"}))}
    buffer = io.BytesIO()  # torch.export.save wants a name ending in .pt2 or a buffer; the temporary's is .tmp
    torch.export.save(program, buffer, extra_files=extra)
    with atomic_path(path) as tmp:
        tmp.write_bytes(buffer.getvalue())
    return "torch.export"
