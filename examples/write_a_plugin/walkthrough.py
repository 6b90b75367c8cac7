"""Write a daclip-kit plugin, then use an installed one end to end.

Run it: ``python examples/write_a_plugin/walkthrough.py`` (offline, about a minute on 2 CPU cores).

Part 1 writes a backbone plugin in-process: a config dataclass, an ``nn.Module`` and a hook that
returns a spec. Part 2 takes the example distribution ``plugins/daclip-kit-tinynet`` (install it
with ``pip install -e plugins/daclip-kit-tinynet``), which ships everything a backbone with
released weights needs in its own package: architecture, config, the converter of its release
files, the spec, a weights entry and a Table 8 row. Without editing daclip-kit, its network

1. loads a released checkpoint through its own converter,
2. trains for a few steps with ``daclip-kit train restoration``,
3. restores an image with the trained weights (``daclip-kit restore``),
4. appears as a row of ``daclip-kit bench --table 8``.
"""

from __future__ import annotations

import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

import daclip_kit
from daclip_kit.core.backbone import RestorationBackbone
from daclip_kit.specs import BackboneSpec
from daclip_kit.types import Conditioning

# -- part 1: writing a plugin ------------------------------------------------------------------

@dataclass(frozen=True, kw_only=True)
class SharpenConfig:
    width: int = 16
    context_dim: int = 512
    adapter: str = "cross-attention"   # any registered adapter, swappable by config


class SharpenNet(RestorationBackbone):
    """A toy one-shot restorer conditioned on the content embedding through a named adapter."""

    size_divisor = 1

    def __init__(self, config: SharpenConfig):
        super().__init__()
        self.config = config
        self.head = nn.Conv2d(3, config.width, 3, padding=1)
        self.adapter = daclip_kit.create_adapter(config.adapter, dim=config.width,
                                                 context_dim=config.context_dim, heads=2)
        self.accepts = frozenset({self.adapter.role})
        self.tail = nn.Conv2d(config.width, 3, 3, padding=1)

    def forward(self, lq: torch.Tensor, cond: Conditioning | None = None) -> torch.Tensor:
        return lq + self.tail(self.adapter(torch.relu(self.head(lq)), cond))


@daclip_kit.hookimpl
def daclip_kit_register_backbones():
    return [BackboneSpec(
        name="sharpen-net",
        target=f"{__name__}:SharpenNet",
        config=f"{__name__}:SharpenConfig",
        accepts=("content",),
        summary="walkthrough example",
        tiny_config={"width": 16, "context_dim": 32},
    )]


def write_a_plugin() -> None:
    # Register this module as a plugin (an installed package would use its entry point).
    daclip_kit.register_plugin(sys.modules[__name__], name="walkthrough")
    print("registered backbones:", daclip_kit.list_components("backbones"))
    net = daclip_kit.create_backbone("sharpen-net", width=16, context_dim=32).eval()
    lq = torch.rand(1, 3, 24, 24)
    print("output shape:", tuple(net(lq, Conditioning(content=torch.randn(1, 32))).shape))
    # The same contract checks daclip-kit runs on its own components.
    from daclip_kit.testing import check_backbone_contract

    check_backbone_contract("sharpen-net")
    print("contract: ok")


# -- part 2: an installed plugin, end to end ------------------------------------------------------

def use_the_tinynet_plugin(work: Path) -> None:
    from daclip_kit.cli.main import main
    from daclip_kit.data.mini import build_mini
    from daclip_kit.embedders.daclip.convert import save_daclip
    from daclip_kit.embedders.daclip.model import DaCLIP
    from daclip_kit.embedders.plugin import TINY_CLIP_CONFIG

    if "tinynet" not in daclip_kit.list_components("backbones"):
        raise SystemExit("install the example plugin first: pip install -e plugins/daclip-kit-tinynet")
    from daclip_kit_tinynet.convert import to_released_keys

    # A "release" in TinyNet's own layout (its authors' key names), as a user would download it.
    torch.manual_seed(0)
    released = daclip_kit.create_backbone("tinynet", width=16, blocks=1, context_dim=32)
    torch.save({"generator": to_released_keys(released.state_dict()), "iteration": 20_000,
                "config": {"width": 16, "blocks": 1, "context_dim": 32}}, work / "tinynet_demo.pt")

    # 1. daclip-kit loads it through the plugin's converter (spec.convert), strictly.
    net = daclip_kit.load_network("tinynet", work / "tinynet_demo.pt")
    print("1. loaded the release:", type(net).__name__, sum(p.numel() for p in net.parameters()), "parameters")

    # 2. Train a few steps from it: the run file names the plugin's backbone like any other.
    build_mini(work / "mini", size=32, per_type=2, val_per_type=1, composed=0, types=("noisy",), seed=0)
    save_daclip(DaCLIP.from_config(TINY_CLIP_CONFIG), work / "daclip")  # a tiny random DA-CLIP (plumbing only)
    run = work / "run"
    assert main(["train", "restoration", "--set", "network.name=tinynet", "--set", "network.width=16",
                 "--set", "network.blocks=1", "--set", "network.context_dim=32",
                 "--init-from", str(work / "tinynet_demo.pt"), "--set", f"embedder.weights={work / 'daclip'}",
                 "--set", f"data.root={work / 'mini'}", "--set", "data.degradations=noisy",
                 "--set", "data.batch_size=2", "--set", "data.patch_size=32", "--set", "data.num_workers=0",
                 "--set", "validation.every=0", "--set", "log_every=1", "--max-steps", "3",
                 "--out", str(run), "--device", "cpu"]) == 0
    trained = run / "checkpoints" / "step-00000003" / "network"
    print("2. trained 3 steps:", trained)

    # 3. Restore an image with the trained weights (DA-CLIP conditions it, as for built-ins).
    lq = next((work / "mini" / "val" / "noisy" / "LQ").glob("*.png"))
    assert main(["restore", str(lq), "-o", str(work / "restored"), "--model", "tinynet", "--weights", str(trained),
                 "--daclip-weights", str(work / "daclip"), "--device", "cpu"]) == 0
    print("3. restored:", sorted(p.name for p in (work / "restored").iterdir()))

    # 4. The plugin's row in the paper's Table 8 (parameters and GMACs from the architecture).
    assert main(["bench", "--table", "8", "--row", "TinyNet (plugin)", "--size", "64", "--repeats", "0",
                 "--device", "cpu"]) == 0


def main() -> None:
    write_a_plugin()
    with tempfile.TemporaryDirectory() as tmp:
        use_the_tinynet_plugin(Path(tmp))


if __name__ == "__main__":
    main()
