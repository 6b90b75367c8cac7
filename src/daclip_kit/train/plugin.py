"""Built-in plugin: the ``train`` verb (no torch import)."""

from __future__ import annotations

from ..hookspecs import hookimpl
from ..specs import CommandSpec


@hookimpl
def daclip_kit_register_commands():
    return [
        CommandSpec(name="train", target="daclip_kit.cli.train:configure",
                    summary="train DA-CLIP's controller (daclip), a restoration network (restoration), "
                            "a few-step student (distill)"),
        CommandSpec(name="adapt", target="daclip_kit.cli.adapt:configure",
                    summary="adapt a model to your degradation from two folders of pairs (LQ, GT), with a report"),
    ]
