"""Built-in plugin: the official DA-CLIP / IR-SDE release files as named weights, and the
cache lookup that serves them (registered ``trylast`` so mirrors and offline stores win).

All six files are listed in the official README's "Pretrained Models" table with a Hugging Face
link into ``weblzw/daclip-uir-ViT-B-32-irsde`` (and a Google Drive copy). Sizes and SHA-256
prefixes of four of them were read from the hub listing (FACTS.md §4); the two ``mix`` files
were not inspected, so their size is unknown (0) and their architecture is assumed.
"""

from __future__ import annotations

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
        model="backbone:irsde-unet",
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
        model="backbone:irsde-unet",
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
        name="wild-ir-unet", filename="wild-ir.pth", hf_repo=HF_REPO, size=197_969_027,
        model="backbone:irsde-unet-wild",
        description="Wild-IR ConditionalUNet (half-resolution, content context only); plain state "
        "dict (sha256 starts a8eea3b6).",
    ),
)


# -- peer backbones (PEERS.md §1.1-1.4): Google Drive / Baidu / GitHub downloads only ----------
# No direct public URL is documented for these files, so hf_repo/url stay empty and each
# description says where the file is published; put it in the cache or pass --weights PATH.

_NAFNET_WHERE = "Google Drive/Baidu links in the megvii-research/NAFNet README"
_RESTORMER_WHERE = "Google Drive folder linked from swz30/Restormer <Task>/pretrained_models/README.md"
_AIRNET_WHERE = "XLearning-SCU/2022-CVPR-AirNet"
_ACADEMIC = "Academic Public License (non-commercial use only)"
_NO_LICENSE = "no licence file (all rights reserved by the authors); use only files you may use"


def _nafnet(name: str, filename: str, model: str, config: dict, what: str) -> WeightSpec:
    return WeightSpec(name=name, filename=filename, model=model, config=config, license="MIT",
                      description=f"{what}; BasicSR {{'params': ...}} container ({_NAFNET_WHERE}).")


def _restormer(task: str, filename: str, config: dict, what: str) -> WeightSpec:
    model = "backbone:restormer-biasfree" if config.get("layer_norm_type") == "BiasFree" else "backbone:restormer"
    return WeightSpec(name=f"restormer-{task}", filename=filename, model=model, config=config, license=_ACADEMIC,
                      description=f"Restormer {what}; BasicSR {{'params': ...}} container ({_RESTORMER_WHERE}).")


_BIASFREE = {"layer_norm_type": "BiasFree"}
_GRAY = {"layer_norm_type": "BiasFree", "inp_channels": 1, "out_channels": 1}

PEER_WEIGHTS: tuple[WeightSpec, ...] = (
    _nafnet("nafnet-gopro-w64", "NAFNet-GoPro-width64.pth", "backbone:nafnet-gopro-w64", {},
            "NAFNet width 64 trained on GoPro (motion deblurring), tested with TLC"),
    _nafnet("nafnet-reds-w64", "NAFNet-REDS-width64.pth", "backbone:nafnet-gopro-w64", {},
            "NAFNet width 64 trained on REDS (deblurring with JPEG), tested with TLC"),
    _nafnet("nafnet-sidd-w64", "NAFNet-SIDD-width64.pth", "backbone:nafnet-sidd-w64", {},
            "NAFNet width 64 trained on SIDD (real denoising)"),
    _nafnet("nafnet-gopro-w32", "NAFNet-GoPro-width32.pth", "backbone:nafnet",
            {"width": 32, "middle_blk_num": 1, "enc_blk_nums": [1, 1, 1, 28], "dec_blk_nums": [1, 1, 1, 1],
             "tlc": True}, "NAFNet width 32 trained on GoPro, tested with TLC"),
    _nafnet("nafnet-sidd-w32", "NAFNet-SIDD-width32.pth", "backbone:nafnet",
            {"width": 32, "middle_blk_num": 12, "enc_blk_nums": [2, 2, 4, 8], "dec_blk_nums": [2, 2, 2, 2]},
            "NAFNet width 32 trained on SIDD"),
    _restormer("motion-deblurring", "motion_deblurring.pth", {}, "motion deblurring (GoPro)"),
    _restormer("single-image-defocus", "single_image_defocus_deblurring.pth", {}, "single-image defocus deblurring"),
    _restormer("deraining", "deraining.pth", {}, "deraining"),
    _restormer("real-denoising", "real_denoising.pth", _BIASFREE, "real denoising (SIDD)"),
    *(_restormer(f"gaussian-color-denoising-{s}", f"gaussian_color_denoising_{s}.pth", _BIASFREE,
                 f"Gaussian colour denoising ({s})") for s in ("blind", "sigma15", "sigma25", "sigma50")),
    *(_restormer(f"gaussian-gray-denoising-{s}", f"gaussian_gray_denoising_{s}.pth", _GRAY,
                 f"Gaussian grayscale denoising ({s}; 1 channel)") for s in ("blind", "sigma15", "sigma25", "sigma50")),
    WeightSpec(
        name="promptir-all-in-one", filename="model.ckpt", model="backbone:promptir", license=_ACADEMIC,
        description="PromptIR all-in-one (noise, rain, haze); PyTorch Lightning checkpoint, weights under "
        "state_dict with prefix 'net.' (va1shn9v/PromptIR GitHub release v1.0 and Google Drive).",
    ),
    WeightSpec(
        name="airnet-all", filename="All.pth", model="backbone:airnet", config={"batch_size": 5}, license=_NO_LICENSE,
        description=f"AirNet all-in-one; raw state dict with MoCo queue [256, 1280] (ckpt/All.pth in {_AIRNET_WHERE}).",
    ),
    WeightSpec(
        name="airnet-denoise", filename="Denoise.pth", model="backbone:airnet", config={"batch_size": 3},
        license=_NO_LICENSE, description=f"AirNet denoising; queue [256, 768] (Google Drive/Baidu, {_AIRNET_WHERE}).",
    ),
    WeightSpec(
        name="airnet-derain", filename="Derain.pth", model="backbone:airnet", config={"batch_size": 1},
        license=_NO_LICENSE, description=f"AirNet deraining; queue [256, 256] (Google Drive/Baidu, {_AIRNET_WHERE}).",
    ),
    WeightSpec(
        name="airnet-dehaze", filename="Dehaze.pth", model="backbone:airnet", config={"batch_size": 1},
        license=_NO_LICENSE, description=f"AirNet dehazing; queue [256, 256] (Google Drive/Baidu, {_AIRNET_WHERE}).",
    ),
)

#: Feature networks of the learned metrics and the CLIP baseline of Table 4. daclip-kit never
#: downloads these behind the user's back: ``daclip-kit weights fetch NAME`` does, on request.
METRIC_WEIGHTS: tuple[WeightSpec, ...] = (
    WeightSpec(
        name="lpips-alexnet", filename="alexnet-owt-7be5be79.pth",
        url="https://download.pytorch.org/models/alexnet-owt-7be5be79.pth",
        model="metric:lpips", license="BSD-3-Clause (torchvision)",
        description="torchvision ImageNet AlexNet, the trunk of LPIPS v0.1 (alex).",
    ),
    WeightSpec(
        name="fid-inception", filename="pt_inception-2015-12-05-6726825d.pth",
        url="https://github.com/mseitzer/pytorch-fid/releases/download/fid_weights/"
            "pt_inception-2015-12-05-6726825d.pth",
        model="metric:fid", license="Apache-2.0 (pytorch-fid)",
        description="pytorch-fid's Inception-v3 ported from the TensorFlow FID graph.",
    ),
    WeightSpec(
        name="clip-vit-b-32-openai", filename="clip-vit-b-32-openai.pt",
        model="embedder:clip", config={"model": "ViT-B-32"}, license="MIT (OpenAI CLIP)",
        description="OpenAI CLIP ViT-B/32 state dict; write it once while online with "
        "`python -c \"import open_clip, torch; torch.save(open_clip.create_model('ViT-B-32', "
        "pretrained='openai').state_dict(), 'clip-vit-b-32-openai.pt')\"`",
    ),
)

OFFICIAL_WEIGHTS += PEER_WEIGHTS + METRIC_WEIGHTS


@hookimpl
def daclip_kit_register_weights():
    return list(OFFICIAL_WEIGHTS)


@hookimpl(trylast=True)
def daclip_kit_resolve_weights(spec, cache_dir, search_dirs):
    from .fetch import find_local

    return find_local(spec, cache_dir, search_dirs)


@hookimpl
def daclip_kit_register_commands():
    return [CommandSpec(name="weights", target="daclip_kit.cli.weights:configure",
                        summary="list or download the official weights files"),
            CommandSpec(name="push", target="daclip_kit.cli.push:configure",
                        summary="upload a native model folder to the Hugging Face Hub with a model card")]
