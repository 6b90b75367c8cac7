"""End-to-end mechanics of the bench on a tiny synthetic data set with fake/tiny models.

Nothing here is a result: the models are identity, a random 3x3 conv and hand-made classifiers,
and the LPIPS/FID networks are tiny self-made stand-ins.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import scipy.linalg
import torch
from PIL import Image
from torch import nn

from daclip_kit.bench.__main__ import build_parser
from daclip_kit.cli.bench import execute
from daclip_kit.cli.main import main
from daclip_kit.errors import ConfigError
from daclip_kit.types import DEGRADATIONS

N_IMAGES = 3
SIZE = 24


def _write_png(path, arr):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(arr).save(path)


@pytest.fixture
def universal_val(tmp_path):
    """``val/<degradation>/{LQ,GT}/NNN.png``; LQ pixel (0,0) red channel encodes the degradation index."""
    rng = np.random.default_rng(0)
    for k, deg in enumerate(DEGRADATIONS):
        for i in range(N_IMAGES):
            gt = rng.integers(0, 256, size=(SIZE, SIZE, 3), dtype=np.uint8)
            lq = np.clip(gt.astype(int) + rng.integers(-20, 21, size=gt.shape), 0, 255).astype(np.uint8)
            lq[0, 0, 0] = 20 * k
            _write_png(tmp_path / "data" / "val" / deg / "GT" / f"{i:03d}.png", gt)
            _write_png(tmp_path / "data" / "val" / deg / "LQ" / f"{i:03d}.png", lq)
    return tmp_path / "data"


@pytest.fixture(autouse=True)
def _no_weights_anywhere(tmp_path, monkeypatch):
    monkeypatch.setenv("DACLIP_KIT_CACHE", str(tmp_path / "dk-cache"))
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch-home"))


class TinyDistance(nn.Module):
    def __init__(self):
        super().__init__()
        self.w = nn.Parameter(torch.ones(()))

    def forward(self, x, y):
        return (self.w * (x - y) ** 2).mean(dim=(1, 2, 3), keepdim=True)


class TinyFeatures(nn.Module):
    def __init__(self):
        super().__init__()
        self.w = nn.Parameter(torch.ones(()))

    def forward(self, x):
        return self.w * x[:, :2].mean(dim=(2, 3))


def identity(lq):
    return lq.clone()


def tiny_random_conv():
    torch.manual_seed(0)
    conv = nn.Conv2d(3, 3, 3, padding=1)

    def restore(lq):
        with torch.no_grad():
            return torch.sigmoid(conv(lq))

    return restore


def _run(argv, **inject):
    args = build_parser().parse_args(argv)
    return execute(args, **inject)


def _files(root, deg, sub):
    return [np.asarray(Image.open(p), dtype=np.float64) / 255
            for p in sorted((root / "val" / deg / sub).glob("*.png"))]


def _fid2(fa, fb):
    s1, s2 = np.cov(fa, rowvar=False), np.cov(fb, rowvar=False)
    covmean = scipy.linalg.sqrtm(s1 @ s2).real
    return float(np.sum((fa.mean(0) - fb.mean(0)) ** 2) + np.trace(s1 + s2 - 2 * covmean))


def test_table3_mechanics_with_injected_models(universal_val, tmp_path, capsys):
    from skimage.metrics import peak_signal_noise_ratio

    out_json = tmp_path / "t3.json"
    code = _run(["--table", "3", "--data-root", str(universal_val), "--device", "cpu", "--json", str(out_json),
                 "--row", "Ours", "--row", "IR-SDE", "--row", "AirNet"],
                restorers={"Ours": identity, "IR-SDE": tiny_random_conv()},
                lpips_net=TinyDistance(), fid_net=TinyFeatures())
    assert code == 0
    text = capsys.readouterr().out
    assert "ours" in text and "Δ" in text and "27.01" in text
    data = json.loads(out_json.read_text())
    assert {"schema", "table", "config", "seed", "device", "provenance", "rows", "images", "notes"} <= set(data)
    assert data["table"]["id"] == "3" and data["table"]["version"] == "2"
    assert data["config"]["data_root"] == str(universal_val) and data["seed"] == 0 and data["device"] == "cpu"
    assert torch.__version__.startswith(data["provenance"]["versions"]["torch"])
    assert data["provenance"]["device"]["device"] == "cpu" and "time_utc" in data["provenance"]
    assert data["table"]["protocol"]["crop_border"] == 4
    rows = {r["label"]: r for r in data["rows"]}
    assert list(rows) == ["AirNet", "IR-SDE", "Ours"]  # table order, filtered by --row
    assert rows["Ours"]["status"] == "measured" and rows["IR-SDE"]["status"] == "measured"
    assert rows["AirNet"]["status"] == "not-run" and rows["AirNet"]["notes"]
    assert len(data["images"]) == 2 * len(DEGRADATIONS) * N_IMAGES

    # Per-image PSNR / LPIPS of the identity restorer, recomputed independently from the files.
    ours_imgs = [i for i in data["images"] if i["row"] == "Ours" and i["dataset"] == "hazy"]
    lq, gt = _files(universal_val, "hazy", "LQ"), _files(universal_val, "hazy", "GT")
    for rec, a, b in zip(ours_imgs, lq, gt, strict=True):
        expected = peak_signal_noise_ratio(np.rint(b * 255)[4:-4, 4:-4], np.rint(a * 255)[4:-4, 4:-4], data_range=255)
        assert rec["values"]["psnr"] == pytest.approx(expected, abs=1e-9)
        assert rec["values"]["lpips"] == pytest.approx(4 * np.mean((a - b) ** 2), rel=1e-5)
    # Per-data-set FID with the 2-d tiny features, and the average over the ten data sets.
    fids = []
    for deg in DEGRADATIONS:
        fa = np.array([im[..., :2].mean(axis=(0, 1)) for im in _files(universal_val, deg, "LQ")])
        fb = np.array([im[..., :2].mean(axis=(0, 1)) for im in _files(universal_val, deg, "GT")])
        fids.append(_fid2(fa, fb))
    assert rows["Ours"]["cells"]["average/fid"]["ours"] == pytest.approx(np.mean(fids), rel=1e-5)
    cell = rows["Ours"]["cells"]["average/psnr"]
    assert cell["paper"] == 27.01 and cell["delta"] == pytest.approx(cell["ours"] - 27.01)
    psnrs = [i["values"]["psnr"] for i in data["images"] if i["row"] == "Ours"]
    per_set = [np.mean(psnrs[k * N_IMAGES:(k + 1) * N_IMAGES]) for k in range(len(DEGRADATIONS))]
    assert cell["ours"] == pytest.approx(np.mean(per_set))


def test_compare_and_limit(universal_val, tmp_path, capsys):
    first, second = tmp_path / "a.json", tmp_path / "b.json"
    common = ["--table", "9", "--data-root", str(universal_val), "--device", "cpu", "--row", "Ours", "--limit", "2"]
    assert _run(common + ["--json", str(first)], restorers={"Ours": identity}) == 0
    assert _run(common + ["--json", str(second), "--compare", str(first)],
                restorers={"Ours": tiny_random_conv()}) == 0
    out = capsys.readouterr().out
    assert "comparison with the earlier run" in out
    a, b = json.loads(first.read_text()), json.loads(second.read_text())
    assert len(a["images"]) == len(DEGRADATIONS) * 2
    from daclip_kit.bench.report import compare

    changes = {c["key"]: c for c in compare(a, b)}
    old = a["rows"][0]["cells"]["hazy/psnr"]["ours"]
    new = b["rows"][0]["cells"]["hazy/psnr"]["ours"]
    assert changes["hazy/psnr"]["change"] == pytest.approx(new - old) and new != old


def test_plot_writes_figure6_pngs(universal_val, tmp_path, capsys):
    out_dir = tmp_path / "figs"
    assert _run(["--table", "9", "--data-root", str(universal_val), "--device", "cpu", "--row", "Ours",
                 "--limit", "1", "--plot", str(out_dir)], restorers={"Ours": identity}) == 0
    pngs = sorted(p.name for p in out_dir.glob("*.png"))
    assert pngs == ["figure6_fid.png", "figure6_lpips.png", "figure6_psnr.png", "figure6_ssim.png"]
    with Image.open(out_dir / "figure6_psnr.png") as im:
        assert im.format == "PNG" and im.size[0] > 100
    assert not list(out_dir.glob(".*"))  # no temporary files left behind
    before = (out_dir / "figure6_psnr.png").read_bytes()
    args = ["--table", "9", "--data-root", str(universal_val), "--device", "cpu", "--row", "Ours", "--limit", "1",
            "--plot", str(out_dir)]
    with pytest.raises(ConfigError, match="pass --overwrite"):
        _run(args, restorers={"Ours": identity})
    assert (out_dir / "figure6_psnr.png").read_bytes() == before
    assert _run([*args, "--overwrite"], restorers={"Ours": identity}) == 0


def test_plot_only_for_tables_with_a_figure(tmp_path):
    with pytest.raises(ConfigError, match="table 8 has no figure"):
        _run(["--table", "8", "--plot", str(tmp_path / "f")])
    assert not (tmp_path / "f").exists()


def test_cpu_runtimes_get_no_delta_against_the_papers_gpu_figures():
    from daclip_kit.bench.report import comparable

    assert not comparable("runtime", "cpu") and comparable("runtime", "cuda:0")
    assert comparable("psnr", "cpu") and comparable("params", "cpu")


def test_table4_classification_mechanics(universal_val, tmp_path, capsys):
    seen_labels = []

    def fake(images, labels):
        seen_labels.append(list(labels))
        k = round(float(images[0, 0, 0, 0]) * 255 / 20)
        if DEGRADATIONS[k] == "noisy":
            k = DEGRADATIONS.index("hazy")  # always wrong on noisy images
        return torch.nn.functional.one_hot(torch.tensor([k]), len(labels)).float()

    out_json = tmp_path / "t4.json"
    assert _run(["--table", "4", "--data-root", str(universal_val), "--device", "cpu", "--json", str(out_json)],
                classifiers={"DA-CLIP (Ours)": fake}) == 0
    assert seen_labels[0] == list(DEGRADATIONS)
    rows = {r["label"]: r for r in json.loads(out_json.read_text())["rows"]}
    cells = rows["DA-CLIP (Ours)"]["cells"]
    assert cells["noisy/accuracy"]["ours"] == 0.0 and cells["hazy/accuracy"]["ours"] == 100.0
    assert cells["average/accuracy"]["ours"] == pytest.approx(90.0)
    assert cells["average/accuracy"]["paper"] == 99.2
    assert rows["OpenAI CLIP"]["status"] == "not-run"


@pytest.mark.parametrize("table, paper_value, note", [("3", "34.89", "measured only with weights you train"),
                                                      ("4", "99.2", "paper-only")])
def test_tables_without_weights_print_paper_numbers_and_notes(table, paper_value, note, capsys):
    assert main(["bench", "--table", table]) == 0
    out = " ".join(capsys.readouterr().out.split())
    assert paper_value in out
    assert "No row was measured here" in out
    assert note in out and "--data-root" in out
    assert "daclip_ViT-B-32.pt" in out  # names the missing weights file


def test_list_shows_tables_2_to_12(capsys):
    assert main(["bench", "--list"]) == 0
    out = capsys.readouterr().out
    for i in range(2, 13):
        assert f"│ {i} " in out


def test_python_m_entry_point(capsys):
    from daclip_kit.bench.__main__ import main as bench_main

    assert bench_main(["--list"]) == 0
    assert "benchmark tables" in capsys.readouterr().out


def test_user_errors_exit_1_with_a_message(capsys, tmp_path):
    assert main(["bench", "--table", "13"]) == 1
    assert "Unknown table" in capsys.readouterr().err
    assert main(["bench", "--table", "3", "--row", "Nope"]) == 1
    assert "Ours" in capsys.readouterr().err
    assert main(["bench"]) == 1
    assert main(["bench", "--table", "3", "--compare", str(tmp_path / "missing.json")]) == 1
    assert "does not exist" in capsys.readouterr().err


def test_partial_data_is_noted(universal_val, capsys):
    import shutil

    shutil.rmtree(universal_val / "val" / "snowy")
    assert _run(["--table", "9", "--data-root", str(universal_val), "--device", "cpu", "--row", "Ours",
                 "--limit", "1"], restorers={"Ours": identity}) == 0
    out = capsys.readouterr().out
    assert "snowy" in out and "average/psnr not computed" in out


def test_list_and_registries_do_not_import_torch():
    import subprocess
    import sys

    code = ("import sys; from daclip_kit.cli.main import main; main(['bench', '--list']); "
            "from daclip_kit.plugins import get_registry; get_registry('metrics'); get_registry('tables'); "
            "print('torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip().splitlines()[-1] == "False"


def test_bench_over_the_mini_dataset_with_a_tiny_random_model(tmp_path, capsys):
    """Mechanics on ``daclip-kit data mini`` output (numbers are meaningless and never shown as results)."""
    from daclip_kit.data.mini import build_mini

    build_mini(tmp_path / "mini", size=32, per_type=0, val_per_type=2, composed=0)
    out = tmp_path / "mini.json"
    assert _run(["--table", "3", "--data-root", str(tmp_path / "mini"), "--device", "cpu", "--row", "Ours",
                 "--json", str(out)], restorers={"Ours": tiny_random_conv()},
                lpips_net=TinyDistance(), fid_net=TinyFeatures()) == 0
    data = json.loads(out.read_text())
    row = data["rows"][0]
    assert row["status"] == "measured"
    assert set(row["cells"]) == {"average/psnr", "average/ssim", "average/lpips", "average/fid"}
    assert len(data["images"]) == 2 * len(DEGRADATIONS)
    assert all(np.isfinite(c["ours"]) for c in row["cells"].values())


# --- review regressions ---------------------------------------------------------------------------


def _spec(**kw):
    from daclip_kit.bench.spec import ColumnSpec, RowSpec, TableSpec

    kw.setdefault("rows", (RowSpec(label="A", pipeline="nothing-registered"), RowSpec(label="B", pipeline="nothing")))
    kw.setdefault("columns", (ColumnSpec(dataset="hazy", metric="psnr"),))
    return TableSpec(name="x", title="test table", **kw)


def test_compare_with_the_file_that_json_replaces(universal_val, tmp_path, monkeypatch):
    from daclip_kit.bench import report

    path = tmp_path / "run.json"
    common = ["--table", "9", "--data-root", str(universal_val), "--device", "cpu", "--row", "Ours", "--limit", "1"]
    assert _run(common + ["--json", str(path)], restorers={"Ours": identity}) == 0
    before = json.loads(path.read_text())["rows"][0]["cells"]["hazy/psnr"]["ours"]
    seen = []
    real = report.compare
    monkeypatch.setattr(report, "compare", lambda old, new: seen.append(real(old, new)) or seen[-1])
    assert _run(common + ["--json", str(path), "--compare", str(path)], restorers={"Ours": tiny_random_conv()}) == 0
    after = json.loads(path.read_text())["rows"][0]["cells"]["hazy/psnr"]["ours"]
    change = {c["key"]: c for c in seen[0]}["hazy/psnr"]
    assert before != after
    assert change["old"] == pytest.approx(before) and change["new"] == pytest.approx(after)


def test_classification_table_with_a_data_set_outside_the_ten_labels_is_a_note(universal_val):
    import shutil

    from daclip_kit.bench.runner import BenchOptions, run_table
    from daclip_kit.bench.spec import ColumnSpec, RowSpec

    shutil.copytree(universal_val / "val" / "rainy", universal_val / "val" / "rain100l")
    table = _spec(kind="classification", rows=(RowSpec(label="Mine", embedder="daclip"),),
                  columns=(ColumnSpec(dataset="hazy", metric="accuracy"),
                           ColumnSpec(dataset="rain100l", metric="accuracy")))
    calls = []
    result = run_table(table, BenchOptions(data_root=universal_val),
                       classifiers={"Mine": lambda images, labels: calls.append(1)})
    row = result.row("Mine")
    assert row.status == "not-run" and not calls
    assert "rain100l" in row.notes[0] and "ten degradation labels" in row.notes[0]


def test_a_row_that_raises_runtime_error_fails_alone(universal_val):
    from daclip_kit.bench.runner import BenchOptions, run_table

    def out_of_memory(lq):
        raise torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")

    result = run_table(_spec(), BenchOptions(data_root=universal_val, limit=1),
                       restorers={"A": identity, "B": out_of_memory})
    assert result.row("A").status == "measured" and result.row("A").values["hazy/psnr"] > 20
    b = result.row("B")
    assert b.status == "failed" and "CUDA out of memory" in b.notes[0] and "OutOfMemoryError" in b.notes[0]


@pytest.mark.parametrize("protocol, metric, match", [
    ({"lpips_net": "vgg"}, "lpips", "net='vgg'"),
    ({"lpips_version": "0.0"}, "lpips", "version='0.0'"),
    ({"fid": "clean-fid"}, "fid", "clean-fid"),
])
def test_unimplemented_metric_settings_are_refused_at_plan_time(universal_val, protocol, metric, match):
    from daclip_kit.bench.runner import BenchOptions, plan_table, run_table
    from daclip_kit.bench.spec import ColumnSpec, MetricProtocol
    from daclip_kit.errors import ConfigError

    table = _spec(protocol=MetricProtocol(**protocol), columns=(ColumnSpec(dataset="hazy", metric=metric),))
    with pytest.raises(ConfigError, match=match):
        plan_table(table, BenchOptions(data_root=universal_val))
    called = []
    with pytest.raises(ConfigError, match=match):
        run_table(table, BenchOptions(data_root=universal_val), restorers={"A": lambda x: called.append(x)})
    assert not called
    # the setting does not matter to a table that does not measure that metric
    other = _spec(protocol=MetricProtocol(**protocol))
    assert len(plan_table(other, BenchOptions(data_root=universal_val))) == 2


def test_fid_with_one_image_per_data_set_is_a_note(universal_val):
    from daclip_kit.bench.runner import BenchOptions, run_table
    from daclip_kit.bench.spec import ColumnSpec

    table = _spec(columns=(ColumnSpec(dataset="hazy", metric="psnr"), ColumnSpec(dataset="hazy", metric="fid")))
    result = run_table(table, BenchOptions(data_root=universal_val, limit=1), restorers={"A": identity},
                       fid_net=TinyFeatures())
    row = result.row("A")
    assert row.status == "partial" and "hazy/fid" not in row.values
    assert any("FID needs at least 2 images per data set" in n for n in row.notes)
    result = run_table(table, BenchOptions(data_root=universal_val, limit=2), restorers={"A": identity},
                       fid_net=TinyFeatures())
    assert result.row("A").status == "measured" and not result.row("A").notes


def test_bench_device_auto_and_empty_resolve_like_pick_device(universal_val, tmp_path):
    from daclip_kit.core.device import pick_device

    for device in ("auto", ""):
        out = tmp_path / f"d{device}.json"
        assert _run(["--table", "9", "--data-root", str(universal_val), "--device", device, "--row", "Ours",
                     "--limit", "1", "--json", str(out)], restorers={"Ours": identity}) == 0
        assert json.loads(out.read_text())["device"] == str(pick_device(device))


# --- the exit status says what went wrong ----------------------------------------------------------


def _err(capsys) -> str:
    return " ".join(capsys.readouterr().err.split())  # the console wraps long lines


def test_a_weights_label_that_is_no_row_is_a_usage_error_listing_the_rows(tmp_path, tiny_models, capsys):
    from daclip_kit.bench.__main__ import main as bench_main

    # a typo: was the file's own error (exit 1), never saying that the label is no row
    assert main(["bench", "--table", "3", "--weights", f"ours={tmp_path / 'nowhere'}"]) == 2
    err = _err(capsys)
    assert "'ours' is not a row of table 3. Did you mean: Ours?" in err
    assert ("Rows of table 3: NAFNet, NAFNet + Degradation, NAFNet + DA-CLIP, Restormer, AirNet, PromptIR, IR-SDE, "
            "Ours.") in err
    # a network under a new label adds a row, which --row left out unseen (exit 0, Ours measured without it)
    assert bench_main(["--table", "3", "--row", "Ours", "--weights", f"Our={tiny_models['weights']}"]) == 2
    err = _err(capsys)
    assert "'Our' is not a row of table 3. Did you mean: Ours?" in err and "--row selects only Ours" in err
    # a row --row leaves out never uses its weights
    assert main(["bench", "--table", "9", "--row", "Ours", "--weights", "IR-SDE=nowhere"]) == 2
    assert "--weights 'IR-SDE' is for row 'IR-SDE', which --row leaves out (selected: Ours)" in _err(capsys)
    # the rows of classification and complexity tables take no --weights
    assert main(["bench", "--table", "4", "--weights", "DA-CLIP (Our)=nowhere"]) == 2
    err = _err(capsys)
    assert "'DA-CLIP (Our)' is not a row of table 4. Did you mean: DA-CLIP (Ours)" in err and "OpenAI CLIP," in err
    assert main(["bench", "--table", "8", "--row", "NAFNet", "--repeats", "0", "--weights", "NAFNet=nowhere"]) == 2
    assert "table 8 is a complexity table" in _err(capsys)


def test_weights_labels_are_checked_in_the_library_too(universal_val):
    from daclip_kit.bench.plan import WeightsLabelError
    from daclip_kit.bench.runner import BenchOptions, run_table
    from daclip_kit.bench.spec import get_table

    with pytest.raises(WeightsLabelError, match=r"'Nope' is not a row of table 9\..*Rows of table 9: NAFNet"):
        run_table(get_table("9"), BenchOptions(data_root=universal_val, row_weights={"Nope@hazy": "x"}))


def test_a_failed_row_exits_1_after_the_report_and_the_json(universal_val, tmp_path, capsys):
    def out_of_memory(lq):
        raise torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB\nthe allocator's details")

    out_json = tmp_path / "r.json"
    code = _run(["--table", "9", "--data-root", str(universal_val), "--device", "cpu", "--limit", "1", "--json",
                 str(out_json), "--row", "Ours", "--row", "IR-SDE", "--row", "AirNet"],
                restorers={"Ours": identity, "IR-SDE": out_of_memory})
    assert code == 1  # was 0
    captured = capsys.readouterr()
    assert "Table 9" in captured.out and "results written to" in captured.out
    rows = {r["label"]: r for r in json.loads(out_json.read_text())["rows"]}
    assert rows["Ours"]["status"] == "measured" and rows["AirNet"]["status"] == "not-run"
    assert rows["IR-SDE"]["status"] == "failed"
    err = " ".join(captured.err.split())
    last = err[err.index("error: "):]  # the line after the report (the log may have said more before)
    assert last.startswith("error: 1 of 3 rows failed: IR-SDE: OutOfMemoryError: CUDA out of memory. Tried to "
                           "allocate 2.00 GiB")
    assert "allocator" not in last  # the first line of each error
    # rows that could not run for want of weights or data are no failure
    assert _run(["--table", "9", "--data-root", str(universal_val), "--device", "cpu", "--limit", "1",
                 "--row", "Ours", "--row", "AirNet"], restorers={"Ours": identity}) == 0
