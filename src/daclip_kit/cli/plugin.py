"""Built-in plugin: the CLI verbs of the core (``ls``, ``plugins``, ``score``, ``export``)."""

from __future__ import annotations

from ..hookspecs import hookimpl
from ..specs import CommandSpec


@hookimpl
def daclip_kit_register_commands():
    return [
        CommandSpec(name="ls", target="daclip_kit.cli.ls:configure",
                    summary="list registered components of a kind (backbones, embedders, ...)"),
        CommandSpec(name="plugins", target="daclip_kit.cli.plugins_cmd:configure",
                    summary="list loaded plugins with distribution, version, hooks and status"),
        CommandSpec(name="score", target="daclip_kit.cli.score:configure",
                    summary="PSNR/SSIM/LPIPS of restored images, or of a network run on a paired folder"),
        CommandSpec(name="export", target="daclip_kit.cli.export:configure",
                    summary="export a backbone, denoiser or DA-CLIP encoder as ONNX, TorchScript or torch.export"),
    ]
