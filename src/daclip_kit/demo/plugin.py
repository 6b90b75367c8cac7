"""Built-in plugin: the ``demo`` verb (a web page for restoring photos; needs the ``[demo]`` extra).

No torch or Gradio import here: the verb's module is imported only when ``daclip-kit demo`` runs.
"""

from __future__ import annotations

from ..hookspecs import hookimpl
from ..specs import CommandSpec


@hookimpl
def daclip_kit_register_commands():
    return [CommandSpec(name="demo", target="daclip_kit.cli.demo:configure",
                        summary="web demo: upload a photo, see DA-CLIP's diagnosis, restore it (needs [demo])")]
