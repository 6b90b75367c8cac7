"""Export networks as ONNX, TorchScript or ``torch.export`` graphs (``daclip-kit export``).

The graphs take any image size (the padding rule is inside them), a dynamic batch, and carry
their metadata (:mod:`daclip_kit.export.metadata`); see ``docs/export.md``.
"""

from .build import ExportPlan, check_output, export_network, load_model, plan_export
from .graphs import BackboneGraph, DenoiserGraph, EncoderGraph, pad_to_divisor
from .metadata import unflatten

__all__ = ["ExportPlan", "check_output", "export_network", "load_model", "plan_export", "BackboneGraph",
           "DenoiserGraph", "EncoderGraph", "pad_to_divisor", "unflatten"]
