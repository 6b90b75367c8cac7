"""Built-in plugin: the ten degradation generators and the ``degrade`` verb (no torch import)."""

from __future__ import annotations

from ..hookspecs import hookimpl
from ..specs import CommandSpec, DegradationSpec

_PKG = "daclip_kit.degradations"

#: (official label, module, class, config class, summary)
_BUILTIN = (
    ("motion-blurry", "blur", "MotionBlur", "MotionBlurConfig",
     "camera-shake blur with random trajectory kernels"),
    ("hazy", "haze", "Haze", "HazeConfig",
     "atmospheric scattering I = J*t + A*(1-t), t = exp(-beta*depth)"),
    ("jpeg-compressed", "jpeg", "JPEGCompression", "JPEGConfig",
     "real JPEG codec round trip at quality 10"),
    ("low-light", "lowlight", "LowLight", "LowLightConfig",
     "gamma and gain under-exposure with shot and read noise"),
    ("noisy", "noise", "GaussianNoise", "GaussianNoiseConfig",
     "additive Gaussian noise sigma=50/255, clipped, 8-bit truncation"),
    ("raindrop", "raindrop", "Raindrops", "RaindropConfig",
     "refracting, blurred water drops on the lens"),
    ("rainy", "rain", "RainStreaks", "RainConfig",
     "layers of oriented rain streaks with a rain veil"),
    ("shadowed", "shadow", "CastShadow", "ShadowConfig",
     "soft-edged cast-shadow polygons, darkened"),
    ("snowy", "snow", "Snow", "SnowConfig",
     "snowflakes in depth layers with a snow veil"),
    ("uncompleted", "inpainting", "InpaintingMask", "InpaintingConfig",
     "thin brush-stroke holes filled white (inpainting input)"),
)


@hookimpl
def daclip_kit_register_degradations():
    return [
        DegradationSpec(
            name=label,
            label=label,
            target=f"{_PKG}.{module}:{cls}",
            config=f"{_PKG}.{module}:{config}",
            summary=summary,
        )
        for label, module, cls, config, summary in _BUILTIN
    ]


@hookimpl
def daclip_kit_register_commands():
    return [
        CommandSpec(name="degrade", target="daclip_kit.cli.degrade:configure",
                    summary="write synthetic degradations of an image (<type>.png per type)"),
    ]
