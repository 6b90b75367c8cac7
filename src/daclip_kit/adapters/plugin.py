"""Built-in plugin: the conditioning adapters (no torch import here)."""

from __future__ import annotations

from ..hookspecs import hookimpl
from ..specs import AdapterSpec


@hookimpl
def daclip_kit_register_adapters():
    return [
        AdapterSpec(
            name="cross-attention",
            target="daclip_kit.adapters.cross_attention:CrossAttentionAdapter",
            config="daclip_kit.adapters.cross_attention:CrossAttentionConfig",
            role="content",
            summary="Multi-head cross-attention from feature pixels to content tokens (zero-init output)",
            tiny_config={"dim": 32, "context_dim": 16, "heads": 2},
        ),
        AdapterSpec(
            name="prompt",
            target="daclip_kit.adapters.prompt:PromptAdapter",
            config="daclip_kit.adapters.prompt:PromptConfig",
            role="degradation",
            summary="Degradation prompt module: softmax-weighted learned prompts -> per-channel scale/shift",
            tiny_config={"dim": 32, "context_dim": 16, "num_prompts": 4},
        ),
    ]
