"""Built-in plugin: readers of the published source data sets and the ``data`` verb (no torch import)."""

from __future__ import annotations

from ..hookspecs import hookimpl
from ..specs import CommandSpec, DatasetSpec

_SRC = "daclip_kit.data.sources"

#: (name, class, degradation fed, summary)
_SOURCES = (
    ("gopro", "GoPro", "motion-blurry", "GoPro (GOPRO_Large): {train,test}/<seq>/{blur,sharp}"),
    ("reside-6k", "Reside6k", "hazy", "RESIDE-6k: {train,test}/{hazy,GT}"),
    ("div2k", "DIV2K", "jpeg-compressed", "DIV2K HR (clean): JPEG and noise training, LQ synthesised"),
    ("flickr2k", "Flickr2K", "jpeg-compressed", "Flickr2K HR (clean): JPEG and noise training, LQ synthesised"),
    ("live1", "LIVE1", "jpeg-compressed", "LIVE1 (clean): JPEG test set, LQ synthesised at quality 10"),
    ("cbsd68", "CBSD68", "noisy", "CBSD68 (clean): noise test set, LQ synthesised with sigma 50"),
    ("lol", "LOL", "low-light", "LOL: our485/{low,high}, eval15/{low,high}"),
    ("raindrop", "RainDrop", "raindrop", "RainDrop: {train,test_a}/{data,gt}"),
    ("rain100h", "Rain100H", "rainy", "Rain100H: RainTrainH + Rain100H test"),
    ("rain100l", "Rain100L", "rain100l", "Rain100L test (light rain) into val/rain100l for bench Table 5"),
    ("srd", "SRD", "shadowed", "SRD: {train,test}/{shadow,shadow_free}"),
    ("snow100k", "Snow100K", "snowy", "Snow100K-L subsets: train/{synthetic,gt}, test/Snow100K-L/{synthetic,gt}"),
    ("celeba-hq", "CelebAHQ", "uncompleted", "CelebA-HQ faces (clean): inpainting, masked LQ synthesised"),
)


@hookimpl
def daclip_kit_register_datasets():
    return [
        DatasetSpec(name=name, target=f"{_SRC}:{cls}", degradation=degradation, summary=summary)
        for name, cls, degradation, summary in _SOURCES
    ]


@hookimpl
def daclip_kit_register_commands():
    return [
        CommandSpec(name="data", target="daclip_kit.cli.data:configure",
                    summary="build, caption and check the mixed-degradation data set, or add your own degradation"),
    ]
