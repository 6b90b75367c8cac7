"""Built-in plugin: the official named restoration models and the ``restore`` verb."""

from __future__ import annotations

from ..backbones.irsde_unet.settings import (
    OFFICIAL_SDE,
    UNIVERSAL_SETTING,
    WILD_SETTING,
)
from ..hookspecs import hookimpl
from ..specs import CommandSpec, PipelineSpec


@hookimpl
def daclip_kit_register_pipelines():
    return [
        PipelineSpec(
            name="irsde-universal",
            backbone="irsde-unet", backbone_config=UNIVERSAL_SETTING, backbone_weights="universal-ir",
            embedder="daclip", embedder_config={"model": "daclip_ViT-B-32"},
            embedder_weights="daclip-vit-b-32",
            sampler="irsde", sampler_config=OFFICIAL_SDE, steps=100, mode="posterior",
            summary="DA-CLIP ViT-B/32 + IR-SDE universal model, ten degradations (paper Table 3)",
        ),
        PipelineSpec(
            name="irsde-universal-mix",
            backbone="irsde-unet", backbone_config=UNIVERSAL_SETTING, backbone_weights="universal-ir-mix",
            embedder="daclip", embedder_config={"model": "daclip_ViT-B-32"},
            embedder_weights="daclip-vit-b-32-mix",
            sampler="irsde", sampler_config=OFFICIAL_SDE, steps=100, mode="posterior",
            summary="the 'mix' release: trained with mixed degradations for robustness",
        ),
        PipelineSpec(
            name="wild-ir",
            backbone="irsde-unet", backbone_config=WILD_SETTING, backbone_weights="wild-ir",
            embedder="daclip", embedder_config={"model": "daclip_ViT-L-14"},
            embedder_weights="wild-daclip-vit-l-14",
            sampler="irsde", sampler_config=OFFICIAL_SDE, steps=100, mode="posterior",
            summary="Wild-IR: DA-CLIP ViT-L/14 + half-resolution IR-SDE for real-world images",
        ),
    ]


@hookimpl
def daclip_kit_register_commands():
    return [CommandSpec(name="restore", target="daclip_kit.cli.restore:configure",
                        summary="restore images with a named model (IR-SDE + DA-CLIP by default)")]
