"""Built-in plugin: the official named restoration models and the ``restore`` verb."""

from __future__ import annotations

from ..hookspecs import hookimpl
from ..specs import CommandSpec, PipelineSpec

#: The mean-reverting SDE of the official universal and Wild-IR option files.
OFFICIAL_SDE = {"max_sigma": 50.0, "T": 100, "schedule": "cosine", "eps": 0.005}

UNIVERSAL_UNET = {
    "in_nc": 3, "out_nc": 3, "nf": 64, "ch_mult": [1, 2, 4, 8], "context_dim": 512,
    "use_degra_context": True, "use_image_context": True,
}
WILD_UNET = {
    "in_nc": 3, "out_nc": 3, "nf": 64, "ch_mult": [1, 2, 4, 8], "context_dim": 768,
    "use_degra_context": False, "use_image_context": True, "scale": 0.5,
}


@hookimpl
def daclip_kit_register_pipelines():
    return [
        PipelineSpec(
            name="irsde-universal",
            backbone="irsde-unet", backbone_config=UNIVERSAL_UNET, backbone_weights="universal-ir",
            embedder="daclip", embedder_config={"model": "daclip_ViT-B-32"},
            embedder_weights="daclip-vit-b-32",
            sampler="irsde", sampler_config=OFFICIAL_SDE, steps=100, mode="posterior",
            summary="DA-CLIP ViT-B/32 + IR-SDE universal model, ten degradations (paper Table 3)",
        ),
        PipelineSpec(
            name="irsde-universal-mix",
            backbone="irsde-unet", backbone_config=UNIVERSAL_UNET, backbone_weights="universal-ir-mix",
            embedder="daclip", embedder_config={"model": "daclip_ViT-B-32"},
            embedder_weights="daclip-vit-b-32-mix",
            sampler="irsde", sampler_config=OFFICIAL_SDE, steps=100, mode="posterior",
            summary="the 'mix' release: trained with mixed degradations for robustness",
        ),
        PipelineSpec(
            name="wild-ir",
            backbone="irsde-unet", backbone_config=WILD_UNET, backbone_weights="wild-ir",
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
