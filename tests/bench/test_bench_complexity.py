"""Table 8 machinery: parameter counts, MAC counters, and the real IR-SDE UNet figures."""

from __future__ import annotations

import json

import pytest
import torch
from torch import nn

from daclip_kit import hookimpl
from daclip_kit.bench.complexity import count_parameters, macs_flopcounter, macs_hooks
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
