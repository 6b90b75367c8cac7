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
        SamplerSpec(
            name="mrs", target="daclip_kit.samplers.mrs.sampler:MRSampler",
            config="daclip_kit.samplers.mrs.config:MRSConfig",
            summary="MR Sampler (ICLR 2025): fast ODE/SDE multistep solver for IR-SDE networks, 5-20 NFE",
            tiny_config={"T": 10, "num_sample_steps": 4},
        ),
        SamplerSpec(
            name="heun", target="daclip_kit.samplers.heun.sampler:HeunSampler",
            config="daclip_kit.samplers.heun.config:HeunConfig",
            summary="Heun (2nd-order) reverse SDE / probability-flow ODE baseline of the MRS paper",
            tiny_config={"T": 10, "num_sample_steps": 5},
        ),
    ]
