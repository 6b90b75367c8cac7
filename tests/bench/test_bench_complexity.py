"""Table 8 machinery: parameter counts, MAC counters, and the real IR-SDE UNet figures."""

from __future__ import annotations

import json
import re

import pytest
import torch
from torch import nn

from daclip_kit import hookimpl
from daclip_kit.bench.complexity import count_parameters, count_used_parameters, macs_flopcounter, macs_hooks
from daclip_kit.bench.report import fmt_paper
from daclip_kit.core.backbone import RestorationBackbone
from daclip_kit.specs import BackboneSpec


class TinyDirect(RestorationBackbone):
    """conv 3->8 (3x3) -> global pool -> linear 8->4 (only for counting)."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 8, 3, padding=1)
        self.head = nn.Linear(8, 4)
        self.shared = self.head  # an alias must not be counted twice

    def forward(self, lq, cond=None):
        return self.head(self.conv(lq).mean(dim=(2, 3)))


def test_counters_on_a_hand_computable_net():
    net = TinyDirect()
    x = torch.rand(1, 3, 16, 16)
    assert count_parameters(net) == (3 * 8 * 9 + 8) + (8 * 4 + 4)
    expected = 8 * 16 * 16 * 3 * 9 + 4 * 8  # conv outputs x taps, linear outputs x inputs
    assert macs_hooks(lambda: net(x), net) == expected
    assert macs_flopcounter(lambda: net(x)) == expected
    grouped = nn.Conv2d(4, 4, 3, padding=1, groups=2)
    y = torch.rand(1, 4, 8, 8)
    assert macs_hooks(lambda: grouped(y), grouped) == 4 * 64 * 2 * 9


class TwoTowers(nn.Module):
    """An image tower that runs and a text tower that the image call never touches."""

    def __init__(self):
        super().__init__()
        self.image = nn.Linear(6, 4)
        self.text = nn.Linear(5, 4)
        self.frozen = nn.Linear(4, 4).requires_grad_(False)

    def embed_image(self, x):
        return {"embedding": self.frozen(self.image(x)), "unused": None}


@pytest.mark.parametrize("device", ["cpu", "meta"])
def test_used_parameters_count_only_what_the_call_runs(device):
    with torch.device(device):
        net = TwoTowers()
        x = torch.rand(2, 6)
    assert count_parameters(net) == (6 * 4 + 4) + (5 * 4 + 4) + (4 * 4 + 4)
    # the frozen layer runs too; the text tower does not
    assert count_used_parameters(lambda: net.embed_image(x), net) == (6 * 4 + 4) + (4 * 4 + 4)
    assert [p.requires_grad for p in net.frozen.parameters()] == [False, False]  # flags restored


def test_paper_values_print_as_the_paper_prints_them():
    assert fmt_paper(33.0, "params") == "33"
    assert fmt_paper(0.1, "runtime") == "0.1"
    assert fmt_paper(125.2, "params_embedder") == "125.2"
    assert fmt_paper(4.53, "runtime") == "4.53"
    assert fmt_paper(0.9, "ssim") == "0.900"  # metric tables keep their fixed precision
    assert fmt_paper(None, "params") == "-"


class _TinyPlugin:
    @hookimpl
    def daclip_kit_update_provenance(self, info):
        info["lab"] = "tiny-bench-lab"

    @hookimpl
    def daclip_kit_register_backbones(self):
        return [BackboneSpec(name="tiny-direct-bench", target="test_bench_complexity:TinyDirect", kind="direct")]

    @hookimpl
    def daclip_kit_register_tables(self):
        from daclip_kit.bench.spec import ColumnSpec, RowSpec, TableSpec

        cols = tuple(ColumnSpec(dataset="model", metric=m) for m in ("params", "macs_hooks", "runtime"))
        return [TableSpec(name="tiny-complexity", title="tiny", kind="complexity",
                          rows=(RowSpec(label="Tiny", pipeline="tiny-direct-bench"),
                                RowSpec(label="Absent", pipeline="no-such-arch")),
                          columns=cols, reference={("Tiny", "model/params"): 1.0})]


def test_plugin_table_with_plugin_backbone(tmp_path, capsys):
    from daclip_kit.cli.main import main
    from daclip_kit.plugins import get_plugin_manager

    get_plugin_manager().register(_TinyPlugin(), name="tiny-bench-plugin")
    out = tmp_path / "tiny.json"
    assert main(["bench", "--table", "tiny-complexity", "--size", "16", "--repeats", "1",
                 "--device", "cpu", "--json", str(out)]) == 0
    data = json.loads(out.read_text())
    assert data["provenance"]["lab"] == "tiny-bench-lab"
    rows = {r["label"]: r for r in data["rows"]}
    cells = rows["Tiny"]["cells"]
    assert cells["model/params"]["ours"] * 1e6 == pytest.approx(260)
    assert cells["model/macs_hooks"]["ours"] * 1e9 == pytest.approx(8 * 256 * 27 + 32)
    assert cells["model/runtime"]["ours"] > 0
    assert rows["Absent"]["status"] == "not-run"
    assert "not available" in " ".join(rows["Absent"]["notes"])


def test_table8_irsde_unet_parameter_counts_offline(tmp_path, capsys):
    from daclip_kit.cli.main import main
    from daclip_kit.plugins import get_registry

    assert "irsde-unet" in get_registry("backbones"), "the irsde-unet backbone is not registered"
    out = tmp_path / "t8.json"
    assert main(["bench", "--table", "8", "--size", "64", "--repeats", "0", "--device", "cpu",
                 "--row", "IR-SDE", "--row", "IR-SDE + DA-CLIP", "--json", str(out)]) == 0
    text = capsys.readouterr().out
    rows = {r["label"]: r for r in json.loads(out.read_text())["rows"]}
    with_daclip = rows["IR-SDE + DA-CLIP"]["cells"]
    plain = rows["IR-SDE"]["cells"]
    assert round(with_daclip["model/params"]["ours"] * 1e6) == 48_975_747
    assert plain["model/params"]["ours"] == pytest.approx(36.2, abs=0.05)
    assert plain["model/params"]["paper"] == 36.2
    for cells in (plain, with_daclip):
        assert cells["model/macs_hooks"]["ours"] > 0 and cells["model/macs_flopcounter"]["ours"] > 0
    assert "48.976" in text and "36.2" in text
    # the "+DA-CLIP" columns count DA-CLIP's image path (controller + CLIP image encoder, 182,785,536
    # parameters in ViT-B/32 by the official key list), not the text tower, with the hook MAC counter
    assert round(with_daclip["model/params_embedder"]["ours"] * 1e6) == 94_936_320 + 87_849_216
    assert with_daclip["model/params_embedder"]["paper"] == 125.2
    assert 0 < with_daclip["model/macs_embedder"]["ours"] < 9.0
    assert re.search(r"(?<![\d.])48\.9(?![\d.])", text) and "48.900" not in text  # the paper's 48.9M as printed


def test_bench_rows_are_spread_over_torchrun_processes(tmp_path, torchrun):
    out = tmp_path / "t8.json"
    done = torchrun("bench", "--table", "8", "--row", "IR-SDE", "--row", "NAFNet", "--row", "PromptIR",
                    "--size", "32", "--repeats", "0", "--device", "cpu", "--json", out, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    data = json.loads(out.read_text())
    assert [r["label"] for r in data["rows"]] == ["PromptIR", "NAFNet", "IR-SDE"]  # table order
    assert all(r["status"] in ("measured", "partial") and r["cells"]["model/params"]["ours"] for r in data["rows"])
    assert data["extra"]["processes"] == 2
    assert done.stdout.count("Table 8") == 1  # rank 0 reports once
