"""Table 8: parameters, GMACs and runtime of every available architecture, computed offline."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator
from typing import Any

from ..errors import DaclipKitError
from ..factory import create_backbone, create_embedder, create_sampler
from ..plugins import get_registry
from ..specs import PipelineSpec
from .complexity import (
    count_parameters,
    count_used_parameters,
    forward_call,
    macs_flopcounter,
    macs_hooks,
    median_runtime,
)
from .plan import BenchOptions, Progress, RowResult, TableResult, plan_table
from .spec import TableSpec

log = logging.getLogger(__name__)


@contextlib.contextmanager
def _random_weights_expected() -> Iterator[None]:
    """Silence the "built with random weights" warnings: only the architecture matters here."""
    loggers = [logging.getLogger(n) for n in ("daclip_kit.embedders", "daclip_kit.backbones")]
    levels = [lg.level for lg in loggers]
    for lg in loggers:
        lg.setLevel(logging.ERROR)
    try:
        yield
    finally:
        for lg, level in zip(loggers, levels, strict=True):
            lg.setLevel(level)


def _count(build, call_for, *, used: bool = False) -> dict[str, float]:
    """Parameters and MACs of the module ``build(device)``, on the meta device when it supports it;
    with ``used``, also the parameters the call actually runs (``params_used``)."""
    import torch

    for device in ("meta", "cpu"):
        try:
            with torch.device(device):
                module = build(device).eval()
            if hasattr(module, "use_reference_ops"):
                module.use_reference_ops(True)  # count the official op sequence
            call = call_for(module, device)
            out = {"params": count_parameters(module) / 1e6,
                   "macs_flopcounter": macs_flopcounter(call) / 1e9,
                   "macs_hooks": macs_hooks(call, module) / 1e9}
            if used:
                out["params_used"] = count_used_parameters(call, module) / 1e6
            return out
        except (NotImplementedError, RuntimeError, ValueError) as exc:
            if device == "cpu":
                raise
            log.debug("counting on the meta device failed (%s); counting on the CPU", exc)
    raise AssertionError("unreachable")


def _backbone_figures(recipe: PipelineSpec, options: BenchOptions, size: int) -> dict[str, float]:
    kind = get_registry("backbones").get(recipe.backbone).kind
    config = dict(recipe.backbone_config)
    out = _count(lambda device: create_backbone(recipe.backbone, **config),
                 lambda m, device: forward_call(m, kind, size, device))
    if options.repeats > 0:
        model = create_backbone(recipe.backbone, **config).eval().to(options.device)
        call = forward_call(model, kind, size, options.device)
        steps = 1
        if kind == "denoiser":
            steps = len(create_sampler(recipe.sampler, **dict(recipe.sampler_config)).timesteps(recipe.steps))
        out["runtime"] = median_runtime(call, repeats=options.repeats, device=options.device) * steps
    return out


def _embedder_figures(recipe: PipelineSpec, options: BenchOptions, size: int) -> tuple[dict[str, float], str]:
    import torch

    def build(device):
        return create_embedder(recipe.embedder, **{"device": device, **dict(recipe.embedder_config)})

    def call_for(module, device):
        x = torch.rand(1, 3, size, size, generator=torch.Generator().manual_seed(0)).to(device)
        return lambda: module.embed_image(x)

    counted = _count(build, call_for, used=True)
    # What restoration runs of the embedder: its image path (the paper's "+ DA-CLIP" cells), counted
    # with the same hook-based MAC counter as the networks' "GMACs hooks" column.
    out = {"params_embedder": counted["params_used"], "macs_embedder": counted["macs_hooks"]}
    note = (f"embedder {recipe.embedder!r}: its image path runs {counted['params_used']:.1f} M of its "
            f"{counted['params']:.1f} M parameters and {counted['macs_flopcounter']:.2f} GMACs with attention "
            f"matmuls (FlopCounterMode/2)")
    if options.repeats > 0:
        embedder = build(options.device).eval()
        out["runtime_embedder"] = median_runtime(call_for(embedder, options.device),
                                                 repeats=options.repeats, device=options.device)
    return out, note


def run_complexity(table: TableSpec, options: BenchOptions, *, progress: Progress | None = None) -> TableResult:
    """Measure the rows of a complexity table; unavailable architectures get a note."""
    size = options.size or table.protocol.image_size
    result = TableResult(table, options, [], extra={"image_size": size})
    plans = plan_table(table, options)
    for i, plan in enumerate(plans):
        row = plan.row
        if progress:
            progress(f"table {table.name}: {row.label}", i, len(plans))
        if not plan.runnable:
            result.rows.append(RowResult(row.label, "not-run", notes=plan.missing))
        else:
            recipe = plan.recipe
            assert recipe is not None  # a runnable complexity row has its recipe
            values: dict[str, Any] = {}
            notes: list[str] = []
            errors: list[str] = []
            try:
                with _random_weights_expected():
                    values.update(_backbone_figures(recipe, options, size))
                    if recipe.embedder:
                        try:
                            figures, note = _embedder_figures(recipe, options, size)
                            values.update(figures)
                            notes.append(note)
                        except (DaclipKitError, RuntimeError) as exc:
                            errors.append(f"embedder {recipe.embedder!r} not measured: {exc}")
                            notes.append(errors[-1])
            except (DaclipKitError, RuntimeError) as exc:
                log.warning("row %r of table %s failed: %s", row.label, table.name, exc)
                message = f"architecture not available: {exc}"
                result.rows.append(RowResult(row.label, "failed", notes=[message], errors=[message]))
                continue
            wanted = [c.key.split("/", 1)[1] for c in table.columns if (row.label, c.key) in table.reference]
            complete = all(m in values for m in wanted)
            result.rows.append(RowResult(row.label, "measured" if complete else "partial",
                                         {f"model/{k}": v for k, v in values.items()}, notes, errors))
        if progress:
            progress(f"table {table.name}", i + 1, len(plans))
    return result
