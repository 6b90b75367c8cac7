"""Entry-point module: only specs here, no torch import, so listing plugins stays fast.

Everything a new backbone with released weights needs, in its own distribution: the
architecture and config (``arch``), the converter of its release files (``convert``), the
backbone spec, the weights entry, and a row in the paper's Table 8.
"""

from daclip_kit import hookimpl
from daclip_kit.bench.spec import RowSpec, TableSpec
from daclip_kit.specs import AdapterSpec, BackboneSpec, WeightSpec


@hookimpl
def daclip_kit_register_backbones():
    return [
        BackboneSpec(
            name="tinynet",
            target="daclip_kit_tinynet.arch:TinyNet",
            config="daclip_kit_tinynet.arch:TinyNetConfig",
            kind="direct",
            accepts=("content",),
            weights=("tinynet-demo",),
            convert="daclip_kit_tinynet.convert:load_released",
            fingerprint=("conv_in.weight", "down_conv.weight", "up_conv.weight", "conv_out.weight"),
            summary="Example plugin: residual CNN restorer with a named conditioning adapter",
            tiny_config={"width": 16, "context_dim": 32},
        )
    ]


@hookimpl
def daclip_kit_register_adapters():
    return [
        AdapterSpec(
            name="film",
            target="daclip_kit_tinynet.film:FiLMAdapter",
            config="daclip_kit_tinynet.film:FiLMConfig",
            role="content",
            summary="Example plugin: feature-wise affine modulation from an embedding",
            tiny_config={"dim": 16, "context_dim": 32},
        )
    ]


@hookimpl
def daclip_kit_register_weights():
    return [
        WeightSpec(
            name="tinynet-demo", filename="tinynet_demo.pt", model="backbone:tinynet", license="MIT",
            description="TinyNet demo release in its authors' layout ({'generator': ..., 'config': ...}); "
            "not hosted anywhere: examples/write_a_plugin/walkthrough.py writes one",
        )
    ]


@hookimpl
def daclip_kit_register_tables():
    # adds a row to the paper's Table 8 (complexity); no new table
    return [TableSpec(name="tinynet@8", title="TinyNet rows", extends="8",
                      rows=(RowSpec(label="TinyNet (plugin)", pipeline="tinynet"),))]
