"""Built-in plugin: registers daclip-kit samplers through the public hooks (no torch import)."""

from __future__ import annotations

from ..hookspecs import hookimpl
from ..specs import SamplerSpec


@hookimpl
def daclip_kit_register_samplers():
    return [
        SamplerSpec(
            name="irsde", target="daclip_kit.samplers.irsde.sampler:IRSDESampler",
            config="daclip_kit.samplers.irsde.config:IRSDEConfig",
            summary="IR-SDE mean-reverting SDE (posterior / reverse-SDE / ODE steps, step skipping)",
            tiny_config={"T": 10},
        ),
    ]
