"""Built-in plugin: registers the ``clip``, ``daclip`` and ``text`` embedding providers and the
``classify`` and ``convert`` CLI verbs through the public hooks (no torch import)."""

from __future__ import annotations

from .. import papers
from ..hookspecs import hookimpl
from ..specs import CommandSpec, EmbedderSpec

#: A small open_clip config for fast tests: ViT with 2 layers of width 64 on 32 px, and the full
#: BPE vocabulary so the real tokenizer can be used.
TINY_CLIP_CONFIG = {
    "embed_dim": 32,
    "vision_cfg": {"image_size": 32, "layers": 2, "width": 64, "patch_size": 8, "head_width": 32},
    "text_cfg": {"context_length": 77, "vocab_size": 49408, "width": 32, "heads": 2, "layers": 2},
}


@hookimpl
def daclip_kit_register_embedders():
    return [
        EmbedderSpec(
            name="daclip", target="daclip_kit.embedders.daclip.provider:DaClipEmbedder",
            config="daclip_kit.embedders.config:DaClipConfig",
            summary="DA-CLIP: content + degradation embeddings (official daclip_ViT-B-32 / ViT-L-14 weights)",
            license="MIT", citation=papers.DACLIP,
            tiny_config={"model_config": TINY_CLIP_CONFIG, "device": "cpu"},
            convert="daclip_kit.embedders.daclip.convert:load_official_daclip",
            fingerprint=("visual_control.transformer.zero_modules.0.weight", "clip.logit_scale", "logit_scale"),
        ),
        EmbedderSpec(
            name="clip", target="daclip_kit.embedders.clip:ClipEmbedder",
            config="daclip_kit.embedders.config:ClipConfig",
            summary="plain open_clip CLIP image embedding (the paper's baseline); any model and tag or file",
            tiny_config={"model_config": TINY_CLIP_CONFIG, "device": "cpu"},
        ),
        EmbedderSpec(
            name="text", target="daclip_kit.embedders.text:TextEmbedder",
            config="daclip_kit.embedders.config:TextConfig",
            summary="ground-truth caption and degradation-word text embeddings instead of image embeddings",
            tiny_config={"model_config": TINY_CLIP_CONFIG, "device": "cpu",
                         "caption": "a photo of a cat", "degradation": "noisy"},
        ),
    ]


@hookimpl
def daclip_kit_register_commands():
    return [
        CommandSpec(name="classify", target="daclip_kit.cli.classify:configure",
                    summary="zero-shot degradation classification of images (DA-CLIP or CLIP)"),
        CommandSpec(name="convert", target="daclip_kit.cli.convert:configure",
                    summary="convert an official DA-CLIP / IR-SDE checkpoint into a native folder"),
    ]
