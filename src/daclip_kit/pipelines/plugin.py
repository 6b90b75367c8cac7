"""Built-in plugin: the official named restoration models and the ``restore`` verb.

A pipeline names the parts; every preset (network settings, SDE settings) lives on the component
it belongs to: ``irsde-unet``'s defaults are the universal network, ``irsde-unet-wild`` holds the
Wild-IR settings, and the ``irsde`` sampler's defaults are the official SDE (max_sigma 50, T 100,
cosine, eps 0.005, posterior sampling).

The ``-fast`` pipelines restore the same networks with the official posterior sampler strided to 10
network evaluations instead of 100 (``irsde``, ``steps=10``). The choice is measured, not assumed
(docs/samplers.md, "The speed ladder"): at 10 evaluations the strided posterior scored the highest
PSNR and came closest to the 100-step output of every sampler tried (MRS ODE on the official and on
the training schedule, Heun, Euler) in both studies on the tiny models: the noise-predicting U-Net
on ``noisy`` and the clean-predicting one on all ten degradations. The MR Sampler stays one option
away (``--sampler mrs``).
"""

from __future__ import annotations

from dataclasses import replace

from ..hookspecs import hookimpl
from ..specs import CommandSpec, PipelineSpec

#: Network evaluations of the ``-fast`` pipelines.
FAST_STEPS = 10


def fast(spec: PipelineSpec, summary: str) -> PipelineSpec:
    """``spec`` restored with its posterior sampler strided to :data:`FAST_STEPS` network evaluations."""
    return replace(spec, name=f"{spec.name}-fast", sampler="irsde", steps=FAST_STEPS, summary=summary)


UNIVERSAL = PipelineSpec(
    name="irsde-universal", backbone="irsde-unet", weights="universal-ir",
    embedder="daclip", embedder_weights="daclip-vit-b-32", sampler="irsde",
    summary="DA-CLIP ViT-B/32 + IR-SDE universal model, ten degradations (paper Table 3)",
)
WILD = PipelineSpec(
    name="wild-ir", backbone="irsde-unet-wild", weights="wild-ir-unet",
    embedder="daclip", embedder_config={"model": "daclip_ViT-L-14"},
    embedder_weights="wild-daclip-vit-l-14", sampler="irsde",
    summary="Wild-IR: DA-CLIP ViT-L/14 + half-resolution IR-SDE for real-world images",
)


@hookimpl
def daclip_kit_register_pipelines():
    return [
        UNIVERSAL,
        replace(UNIVERSAL, name="irsde-universal-mix", weights="universal-ir-mix",
                embedder_weights="daclip-vit-b-32-mix",
                summary="the 'mix' release: trained with mixed degradations for robustness"),
        WILD,
        fast(UNIVERSAL, "irsde-universal with its posterior sampler strided to 10 network evaluations instead of 100"),
        fast(WILD, "wild-ir with its posterior sampler strided to 10 network evaluations instead of 100"),
    ]


@hookimpl
def daclip_kit_register_commands():
    return [CommandSpec(name="restore", target="daclip_kit.cli.restore:configure",
                        summary="restore images with a named model (IR-SDE + DA-CLIP by default)")]
