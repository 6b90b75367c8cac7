"""Built-in plugin: the official DA-CLIP / IR-SDE release files as named weights, and the
cache lookup that serves them (registered ``trylast`` so mirrors and offline stores win).

All six files are listed in the official README's "Pretrained Models" table with a Hugging Face
link into ``weblzw/daclip-uir-ViT-B-32-irsde`` (and a Google Drive copy). Sizes and SHA-256
prefixes of four of them were read from the hub listing (FACTS.md §4); the two ``mix`` files
were not inspected, so their size is unknown (0) and their architecture is assumed.
"""

from __future__ import annotations

from ..backbones.irsde_unet.settings import UNIVERSAL_SETTING, WILD_SETTING
from ..hookspecs import hookimpl
from ..specs import CommandSpec, WeightSpec

HF_REPO = "weblzw/daclip-uir-ViT-B-32-irsde"


OFFICIAL_WEIGHTS: tuple[WeightSpec, ...] = (
    WeightSpec(
        name="daclip-vit-b-32", filename="daclip_ViT-B-32.pt", hf_repo=HF_REPO, size=1_744_725_787,
        model="embedder:daclip", config={"model": "daclip_ViT-B-32"},
        description="DA-CLIP ViT-B-32 of the paper (10 degradations); open_clip training checkpoint "
        "with optimizer state (sha256 starts ea948854).",
    ),
    WeightSpec(
        name="universal-ir", filename="universal-ir.pth", hf_repo=HF_REPO, size=195_990_371,
        model="backbone:irsde-unet", config=UNIVERSAL_SETTING,
        description="Universal IR-SDE ConditionalUNet of the paper; plain float32 state dict "
        "(sha256 starts 87575b25).",
    ),
    WeightSpec(
        name="daclip-vit-b-32-mix", filename="daclip_ViT-B-32_mix.pt", hf_repo=HF_REPO,
        model="embedder:daclip", config={"model": "daclip_ViT-B-32"},
        description="DA-CLIP ViT-B-32 'mix' (adds Gaussian blur + face inpainting and Gaussian blur + "
        "rainy); size not recorded, architecture assumed equal to daclip-vit-b-32.",
    ),
    WeightSpec(
        name="universal-ir-mix", filename="universal-ir-mix.pth", hf_repo=HF_REPO,
        model="backbone:irsde-unet", config=UNIVERSAL_SETTING,
        description="Universal IR-SDE 'mix' (robust training, mixed degradations); size not "
        "recorded, architecture assumed equal to universal-ir.",
    ),
    WeightSpec(
        name="wild-daclip-vit-l-14", filename="wild-daclip_ViT-L-14.pt", hf_repo=HF_REPO,
        size=5_661_040_338, model="embedder:daclip", config={"model": "daclip_ViT-L-14"},
        description="Wild-IR DA-CLIP ViT-L-14 (real-world mixed degradations); open_clip training "
        "checkpoint with optimizer state (sha256 starts 35db86f3).",
    ),
    WeightSpec(
        name="wild-ir", filename="wild-ir.pth", hf_repo=HF_REPO, size=197_969_027,
        model="backbone:irsde-unet", config=WILD_SETTING,
        description="Wild-IR ConditionalUNet (half-resolution, content context only); plain state "
        "dict (sha256 starts a8eea3b6).",
    ),
)


@hookimpl
def daclip_kit_register_weights():
    return list(OFFICIAL_WEIGHTS)


@hookimpl(trylast=True)
def daclip_kit_resolve_weights(spec, cache_dir):
    from .fetch import find_cached

    return find_cached(spec, cache_dir)


@hookimpl
def daclip_kit_register_commands():
    return [CommandSpec(name="weights", target="daclip_kit.cli.weights:configure",
                        summary="list or download the official weights files")]
