"""Built-in plugin: registers daclip-kit backbones through the public hooks (no torch import)."""

from __future__ import annotations

from ..hookspecs import hookimpl
from ..specs import BackboneSpec
from .irsde_unet.settings import PLAIN_SETTING, UNIVERSAL_SETTING, WILD_SETTING

_UNET = "daclip_kit.backbones.irsde_unet.arch:ConditionalUNet"
_UNET_CONFIG = "daclip_kit.backbones.irsde_unet.config:UNetConfig"
_TINY_UNET = {"nf": 32, "ch_mult": (1, 1, 1, 1), "context_dim": 32}


@hookimpl
def daclip_kit_register_backbones():
    return [
        BackboneSpec(
            name="irsde-unet", target=_UNET, config=_UNET_CONFIG, kind="denoiser",
            accepts=("degradation", "content"), weights=("universal-ir", "wild-ir"),
            summary="IR-SDE conditional U-Net of DA-CLIP (noise prediction; configurable, default universal)",
            tiny_config=_TINY_UNET,
        ),
        BackboneSpec(
            name="irsde-universal", target=_UNET, config=_UNET_CONFIG, kind="denoiser",
            accepts=("degradation", "content"), weights=("universal-ir",), defaults=UNIVERSAL_SETTING,
            summary="Universal DA-CLIP IR-SDE U-Net (ViT-B/32 embeddings, 512-d, both contexts)",
            tiny_config=_TINY_UNET,
        ),
        BackboneSpec(
            name="wild-ir", target=_UNET, config=_UNET_CONFIG, kind="denoiser",
            accepts=("content",), weights=("wild-ir",), defaults=WILD_SETTING,
            summary="Wild-IR U-Net (ViT-L/14 content embedding, 768-d, half-resolution stem)",
            tiny_config=_TINY_UNET,
        ),
        BackboneSpec(
            name="irsde-plain", target=_UNET, config=_UNET_CONFIG, kind="denoiser",
            accepts=(), defaults=PLAIN_SETTING,
            summary="The same U-Net without conditioning (no prompt module, no cross-attention)",
            tiny_config={"nf": 32, "ch_mult": (1, 1, 1, 1)},
        ),
    ]
