"""Built-in plugin: registers daclip-kit backbones through the public hooks (no torch import).

Each spec says how to build the network (``target``, ``config``, ``defaults``), how to load its
released files (``convert``) and how to recognise them (``fingerprint``): the official presets
are described here and nowhere else.
"""

from __future__ import annotations

import dataclasses

from .. import papers
from ..hookspecs import hookimpl
from ..specs import BackboneSpec

_UNET = "daclip_kit.backbones.irsde_unet.arch:ConditionalUNet"
_UNET_CONFIG = "daclip_kit.backbones.irsde_unet.config:UNetConfig"
_UNET_CONVERT = "daclip_kit.backbones.irsde_unet.convert:load_official_unet"
_UNET_KEYS = ("init_conv.weight", "time_mlp.1.weight", "final_res_block.block1.proj.weight", "final_conv.weight")
_TINY_UNET = {"nf": 32, "ch_mult": (1, 1, 1, 1), "context_dim": 32}


#: licence of the reference code and paper of each architecture family (``backbones.<family>``);
#: the licences are those of the authors' repositories (docs/backbones.md).
_FAMILIES = {
    "irsde_unet": ("MIT", papers.IRSDE),
    "nafnet": ("MIT", papers.NAFNET),
    "restormer": ("Academic Public License (non-commercial use only)", papers.RESTORMER),
    "promptir": ("Academic Public License (non-commercial use only)", papers.PROMPTIR),
    "airnet": ("no licence file (all rights reserved by the authors)", papers.AIRNET),
    # the architecture comes with the weights: its licence class is in the network's describe()
    "spandrel": ("that of the checkpoint's architecture (spandrel's core architectures: MIT, Apache-2.0 "
                 "or public domain; spandrel_extra_arches: restrictive)", ""),
}


def _with_paper(spec: BackboneSpec) -> BackboneSpec:
    license_, citation = _FAMILIES[spec.target.split(".")[2]]
    return dataclasses.replace(spec, license=spec.license or license_, citation=spec.citation or citation)


@hookimpl
def daclip_kit_register_backbones():
    return [_with_paper(spec) for spec in _builtin_backbones()]


def _builtin_backbones() -> list[BackboneSpec]:
    return [
        BackboneSpec(
            name="irsde-unet", target=_UNET, config=_UNET_CONFIG, kind="denoiser",
            accepts=("degradation", "content"), weights=("universal-ir", "universal-ir-mix"),
            convert=_UNET_CONVERT, fingerprint=(*_UNET_KEYS, "prompt", "text_mlp.0.weight"),
            summary="IR-SDE conditional U-Net of DA-CLIP (noise prediction); defaults: the universal "
                    "model (nf 64, ch_mult 1,2,4,8, 512-d degradation prompt + content cross-attention)",
            tiny_config=_TINY_UNET,
        ),
        BackboneSpec(
            name="irsde-unet-wild", target=_UNET, config=_UNET_CONFIG, kind="denoiser",
            accepts=("content",), weights=("wild-ir-unet",), convert=_UNET_CONVERT,
            fingerprint=(*_UNET_KEYS, "downsample.weight", "upsample.1.weight"),
            defaults={"context_dim": 768, "use_degra_context": False, "scale": 0.5},
            summary="Wild-IR U-Net (768-d ViT-L/14 content embedding, half-resolution stem)",
            tiny_config=_TINY_UNET,
        ),
        BackboneSpec(
            name="irsde-unet-plain", target=_UNET, config=_UNET_CONFIG, kind="denoiser",
            accepts=(), convert=_UNET_CONVERT, fingerprint=_UNET_KEYS,
            defaults={"context_dim": 0, "use_degra_context": False, "use_image_context": False},
            summary="The same U-Net without conditioning (plain IR-SDE: no prompt, no cross-attention)",
            tiny_config={"nf": 32, "ch_mult": (1, 1, 1, 1)},
        ),
    ] + _peer_backbones()


# -- peer backbones: NAFNet (+ DA-CLIP conditioning), Restormer, PromptIR, AirNet --------------

_NAFNET = "daclip_kit.backbones.nafnet.arch:NAFNet"
_NAFNET_CONFIG = "daclip_kit.backbones.nafnet.config:NAFNetConfig"
_NAFNET_GOPRO = {"width": 64, "middle_blk_num": 1, "enc_blk_nums": (1, 1, 1, 28), "dec_blk_nums": (1, 1, 1, 1)}
_NAFNET_SIDD = {"width": 64, "middle_blk_num": 12, "enc_blk_nums": (2, 2, 4, 8), "dec_blk_nums": (2, 2, 2, 2)}
_TINY_NAFNET = {"width": 8, "middle_blk_num": 1, "enc_blk_nums": (1, 1), "dec_blk_nums": (1, 1)}
_RESTORMER = "daclip_kit.backbones.restormer.arch:Restormer"
_RESTORMER_CONFIG = "daclip_kit.backbones.restormer.config:RestormerConfig"
_TINY_RESTORMER = {"dim": 8, "num_blocks": (1, 1, 1, 1), "num_refinement_blocks": 1}


_NAFNET_CONVERT = "daclip_kit.backbones.nafnet.convert:load_official_nafnet"
_SPANDREL_CONVERT = "daclip_kit.backbones.spandrel.convert"

#: Any single-image restoration checkpoint spandrel recognises (``[spandrel]`` extra).
_SPANDREL = BackboneSpec(
    name="spandrel", target="daclip_kit.backbones.spandrel.arch:SpandrelBackbone",
    convert=f"{_SPANDREL_CONVERT}:load_spandrel", recognise=f"{_SPANDREL_CONVERT}:recognises",
    architecture_from_weights=True,
    summary="any RGB restoration checkpoint spandrel recognises (NAFNet, SwinIR, SCUNet, HAT, DAT, ...); "
            "the architecture is read from the weights ([spandrel] extra)",
    tiny_config={"architecture": "NAFNet",
                 "arch_config": {"width": 8, "middle_blk_num": 1, "enc_blk_nums": [1, 1], "dec_blk_nums": [1, 1]}},
)
_RESTORMER_CONVERT = "daclip_kit.backbones.restormer.convert:load_official_restormer"


def _peer_backbones() -> list[BackboneSpec]:
    return [_SPANDREL,
        BackboneSpec(
            name="nafnet", target=_NAFNET, config=_NAFNET_CONFIG,
            weights=("nafnet-gopro-w32", "nafnet-sidd-w32"), convert=_NAFNET_CONVERT,
            fingerprint=("intro.weight", "ending.weight", "middle_blks.0.conv1.weight", "downs.0.weight"),
            summary="NAFNet (configurable; default the GoPro width-64 net, 67.9 M params, no TLC)",
            tiny_config=_TINY_NAFNET,
        ),
        BackboneSpec(
            name="nafnet-gopro-w64", target=_NAFNET, config=_NAFNET_CONFIG, defaults={**_NAFNET_GOPRO, "tlc": True},
            weights=("nafnet-gopro-w64", "nafnet-reds-w64"), convert=_NAFNET_CONVERT,
            summary="NAFNet width 64, enc [1,1,1,28], with TLC (official GoPro/REDS test setting)",
            tiny_config={**_TINY_NAFNET, "train_size": (16, 16)},
        ),
        BackboneSpec(
            name="nafnet-sidd-w64", target=_NAFNET, config=_NAFNET_CONFIG, defaults=_NAFNET_SIDD,
            weights=("nafnet-sidd-w64",), convert=_NAFNET_CONVERT,
            summary="NAFNet width 64, enc [2,2,4,8], middle 12 (official SIDD denoising setting, 116.0 M)",
            tiny_config={**_TINY_NAFNET, "middle_blk_num": 2},
        ),
        BackboneSpec(
            name="nafnet-daclip", target="daclip_kit.backbones.nafnet.daclip:NAFNetDaclip",
            config="daclip_kit.backbones.nafnet.config:NAFNetDaclipConfig", accepts=("degradation", "content"),
            summary="NAFNet + DA-CLIP: degradation adaLN modulation in every block, content cross-attention "
            "in the middle (authors' description; 80.0 M at width 64)",
            tiny_config={**_TINY_NAFNET, "context_dim": 32},
        ),
        BackboneSpec(
            name="restormer", target=_RESTORMER, config=_RESTORMER_CONFIG, convert=_RESTORMER_CONVERT,
            weights=("restormer-motion-deblurring", "restormer-deraining", "restormer-single-image-defocus"),
            fingerprint=("patch_embed.proj.weight", "encoder_level1.0.norm1.body.bias",
                         "encoder_level1.0.attn.temperature", "output.weight"),
            summary="Restormer (WithBias LayerNorm: deblurring, deraining, defocus; 26.1 M)",
            tiny_config=_TINY_RESTORMER,
        ),
        BackboneSpec(
            name="restormer-biasfree", target=_RESTORMER, config=_RESTORMER_CONFIG, convert=_RESTORMER_CONVERT,
            defaults={"layer_norm_type": "BiasFree"},
            weights=("restormer-real-denoising", "restormer-gaussian-color-denoising-blind"),
            fingerprint=("patch_embed.proj.weight", "encoder_level1.0.attn.temperature", "output.weight"),
            summary="Restormer with BiasFree LayerNorm (real and Gaussian denoising; 26.1 M)",
            tiny_config=_TINY_RESTORMER,
        ),
        BackboneSpec(
            name="promptir", target="daclip_kit.backbones.promptir.arch:PromptIR",
            config="daclip_kit.backbones.promptir.config:PromptIRConfig", weights=("promptir-all-in-one",),
            convert="daclip_kit.backbones.promptir.convert:load_official_promptir",
            fingerprint=("patch_embed.proj.weight", "prompt1.prompt_param", "prompt2.prompt_param",
                         "prompt3.prompt_param", "encoder_level1.0.attn.temperature", "output.weight"),
            summary="PromptIR all-in-one (Restormer + decoder prompt blocks; 35.6 M)",
            tiny_config={**_TINY_RESTORMER, "prompt_dims": (8, 16, 32), "prompt_sizes": (8, 4, 4)},
        ),
        BackboneSpec(
            name="restormer-daclip", target=_RESTORMER, config=_RESTORMER_CONFIG, accepts=("degradation", "content"),
            defaults={"degradation_adapter": "prompt", "content_adapter": "cross-attention"},
            summary="Restormer + DA-CLIP: degradation prompt adapters at the decoder inputs, content "
            "cross-attention after the latent blocks (by configuration; zero-initialised)",
            tiny_config={**_TINY_RESTORMER, "context_dim": 32, "content_adapter_config": {"heads": 2}},
        ),
        BackboneSpec(
            name="promptir-daclip", target="daclip_kit.backbones.promptir.arch:PromptIR",
            config="daclip_kit.backbones.promptir.config:PromptIRConfig", accepts=("content",),
            defaults={"content_adapter": "cross-attention"},
            summary="PromptIR + content embedding (paper Table 6): DA-CLIP content cross-attention after the "
            "latent blocks; PromptIR's own prompts model the degradation",
            tiny_config={**_TINY_RESTORMER, "prompt_dims": (8, 16, 32), "prompt_sizes": (8, 4, 4),
                         "context_dim": 32, "content_adapter_config": {"heads": 2}},
        ),
        BackboneSpec(
            name="airnet", target="daclip_kit.backbones.airnet.arch:AirNet",
            config="daclip_kit.backbones.airnet.config:AirNetConfig",
            weights=("airnet-all", "airnet-denoise", "airnet-derain", "airnet-dehaze"),
            convert="daclip_kit.backbones.airnet.convert:load_official_airnet",
            fingerprint=("R.head.0.weight", "E.E.encoder_q.mlp.0.weight", "E.E.queue"),
            summary="AirNet all-in-one (DGRN + contrastive degradation encoder; 8.9 M incl. MoCo key encoder)",
            tiny_config={"n_feats": 8, "n_groups": 1, "n_blocks": 1, "batch_size": 1},
        ),
    ]
