"""Entry-point module: only specs here, no torch import, so listing plugins stays fast."""

from daclip_kit import hookimpl
from daclip_kit.specs import AdapterSpec, BackboneSpec


@hookimpl
def daclip_kit_register_backbones():
    return [
        BackboneSpec(
            name="tinynet",
            target="daclip_kit_tinynet.arch:TinyNet",
            config="daclip_kit_tinynet.arch:TinyNetConfig",
            kind="direct",
            accepts=("content",),
            summary="Example plugin: residual CNN restorer with a named conditioning adapter",
            tiny_config={"width": 16, "context_dim": 32},
        )
    ]


@hookimpl
def daclip_kit_register_adapters():
    return [
        AdapterSpec(
            name="film",
            target="daclip_kit_tinynet.film:FiLMAdapter",
            config="daclip_kit_tinynet.film:FiLMConfig",
            role="content",
            summary="Example plugin: feature-wise affine modulation from an embedding",
            tiny_config={"dim": 16, "context_dim": 32},
        )
    ]
