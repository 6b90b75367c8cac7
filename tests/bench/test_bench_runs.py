"""Tables 6 and 7 measured from the user's own training runs (tiny random networks, tiny data).

Run folders are written the way ``daclip-kit train restoration`` writes them: ``OUT/config.toml``
(the resolved run config) and ``OUT/checkpoints/step-N/{network,network-ema}`` native folders.
The numbers are meaningless; the tests check which weights and which DA-CLIP measure each cell.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from daclip_kit import save_network
from daclip_kit.bench.plan import BenchOptions, locate_weights, plan_row, plan_table
from daclip_kit.bench.runner import run_table
from daclip_kit.bench.runs import resolve_model, run_folder_name
from daclip_kit.bench.spec import get_table
from daclip_kit.cli.main import main
from daclip_kit.config import from_dict
from daclip_kit.errors import ConfigError, InputError
from daclip_kit.factory import create_backbone
from daclip_kit.plugins import get_registry
from daclip_kit.train.config import RestorationTrainConfig, config_to_toml
from daclip_kit.types import DEGRADATIONS

DACLIP_DIR = "runs/daclip-tiny/checkpoints/step-00000005/daclip"  # as a run's config.toml names it


@pytest.fixture(autouse=True)
def _no_released_weights(tmp_path, monkeypatch):
    monkeypatch.setenv("DACLIP_KIT_CACHE", str(tmp_path / "dk-cache"))
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch-home"))


@pytest.fixture(scope="module")
def data_root(tmp_path_factory):
    from daclip_kit.data.mini import build_mini

    root = tmp_path_factory.mktemp("bench-runs") / "mini"
    build_mini(root, size=32, per_type=1, val_per_type=1, composed=0, types=DEGRADATIONS)  # Table 6 averages ten
    return root


@pytest.fixture
def daclip_folder(tiny_models):
    """A tiny DA-CLIP native folder, as ``daclip-kit train daclip`` writes one."""
    return tiny_models["daclip"]


def make_run(base: Path, run: str, network: str, *, seed: int, steps: tuple[int, ...] = (2,),
             embedder: str = "daclip", daclip: Path | None = None, **settings) -> Path:
    """``base/runs/<run>`` with checkpoints of a tiny random ``network`` (its own weights per step)
    and the ``config.toml`` training writes; the run's DA-CLIP is ``base/DACLIP_DIR`` (a copy of
    ``daclip``)."""
    import shutil

    out = base / "runs" / run_folder_name(run)
    options = {**get_registry("backbones").get(network).tiny_config, **settings}
    section = {"name": "none"}
    if embedder == "daclip":
        target = base / DACLIP_DIR
        if not target.exists():
            shutil.copytree(daclip, target)
        section = {"name": "daclip", "weights": DACLIP_DIR, "quantize_input": True}
    cfg = from_dict(RestorationTrainConfig, {
        "out_dir": f"runs/{run_folder_name(run)}", "max_steps": max(steps), "loss": "psnr", "device": "cpu",
        "data": {"root": "mini", "degradations": ["rainy"]},
        "network": {"name": network, **{k: list(v) if isinstance(v, tuple) else v for k, v in options.items()}},
        "embedder": section,
    }).validate()
    out.mkdir(parents=True)
    (out / "config.toml").write_text(config_to_toml(cfg), encoding="utf-8")
    (out / "config.json").write_text("{}", encoding="utf-8")  # training writes the run config as JSON too
    for i, step in enumerate(steps):
        torch.manual_seed(seed + 100 * i)
        net = create_backbone(network, **options)
        with torch.no_grad():  # move every weight off its init (zero-initialised adapters included)
            for p in net.parameters():
                p.add_(0.05 * torch.randn_like(p))
        for folder in ("network", "network-ema"):
            save_network(net, out / "checkpoints" / f"step-{step:08d}" / folder, name=network, config=options)
    return out


@pytest.fixture
def spy_builds(monkeypatch):
    """Records the keyword arguments of every ``build_pipeline`` call the bench makes."""
    from daclip_kit.pipelines import build

    calls = []
    real = build.build_pipeline

    def spy(model, **kw):
        calls.append({"model": model, **kw})
        return real(model, **kw)

    monkeypatch.setattr(build, "build_pipeline", spy)
    return calls


def _options(data_root, **kw):
    return BenchOptions(data_root=data_root, device="cpu", **kw)


# --- resolving runs ---------------------------------------------------------------------------------


def test_run_and_checkpoint_folders_resolve_to_their_network_ema_and_the_runs_daclip(tmp_path, daclip_folder,
                                                                                     monkeypatch):
    run = make_run(tmp_path, "table6_nafnet_daclip", "nafnet-daclip", seed=1, steps=(1, 2), daclip=daclip_folder)
    monkeypatch.chdir(tmp_path / "runs")  # the run's relative paths resolve from where it was started
    model = resolve_model(str(run))
    assert model.network == run / "checkpoints" / "step-00000002" / "network-ema"
    assert model.network_name == "nafnet-daclip" and model.run_dir == run
    assert model.embedder == "daclip" and model.embedder_options == {"model": "daclip_ViT-B-32",
                                                                     "quantize_input": True}
    assert model.embedder_weights.resolve() == (tmp_path / DACLIP_DIR).resolve()
    older = resolve_model(str(run / "checkpoints" / "step-00000001"))
    assert older.network == run / "checkpoints" / "step-00000001" / "network-ema"
    folder = resolve_model(str(run / "checkpoints" / "step-00000001" / "network"))  # a network folder of a run
    assert folder.network.name == "network" and folder.embedder_weights == older.embedder_weights

    plain = make_run(tmp_path, "table6_nafnet", "nafnet", seed=2, embedder="none")
    assert resolve_model(str(plain)).embedder == ""  # embedder.name = "none": no embedder


def test_a_folder_that_is_no_run_and_a_lost_daclip_are_one_line_notes(tmp_path, data_root, daclip_folder):
    (tmp_path / "empty").mkdir()
    table = get_table("6")
    plan = plan_row(table, table.row("NAFNet"), _options(data_root, row_weights={"NAFNet": str(tmp_path / "empty")}))
    assert not plan.runnable and "holds no model" in plan.missing[0] and "run folder" in plan.missing[0]
    run = make_run(tmp_path, "table6_nafnet_daclip", "nafnet-daclip", seed=1, daclip=daclip_folder)
    import shutil

    shutil.rmtree(tmp_path / DACLIP_DIR)
    plan = plan_row(table, table.row("+ Degradation and Content embedding"),
                    _options(data_root, row_weights={"+ Degradation and Content embedding": str(run)}))
    assert not plan.runnable and DACLIP_DIR in plan.missing[0] and "\n" not in plan.missing[0]


# --- Table 6 ----------------------------------------------------------------------------------------


def test_table6_rows_measure_runs_from_runs_dir_with_the_runs_own_daclip(tmp_path, data_root, daclip_folder,
                                                                         spy_builds):
    make_run(tmp_path, "table6_nafnet", "nafnet", seed=1, embedder="none")
    make_run(tmp_path, "table6_nafnet_degradation", "nafnet-daclip", seed=2, daclip=daclip_folder, use_content=False)
    make_run(tmp_path, "table6_nafnet_daclip", "nafnet-daclip", seed=3, daclip=daclip_folder)
    make_run(tmp_path, "table6_restormer", "restormer", seed=4, embedder="none")
    make_run(tmp_path, "table6_promptir", "promptir", seed=5, embedder="none")
    make_run(tmp_path, "table6_promptir_content", "promptir-daclip", seed=6, daclip=daclip_folder)
    table = get_table("6")
    result = run_table(table, _options(data_root, runs_dir=tmp_path / "runs"))
    for row in result.rows:
        assert row.status == "partial", (row.label, row.notes)  # LPIPS and FID need their networks
        assert {"average/psnr", "average/ssim", "rainy/psnr", "low-light/psnr"} <= set(row.values)
        assert any(n.startswith("measured with your weights") and "not the paper's" in n for n in row.notes)
    assert [c["model"] for c in spy_builds] == ["nafnet", "nafnet-daclip", "nafnet-daclip", "restormer", "promptir",
                                                "promptir-daclip"]
    daclip = (tmp_path / DACLIP_DIR).resolve()
    for call, row in zip(spy_builds, table.rows, strict=True):
        run = tmp_path / "runs" / run_folder_name(row.run)
        assert call["weights"] == run / "checkpoints" / "step-00000002" / "network-ema"
        if call["model"] in ("nafnet-daclip", "promptir-daclip"):
            assert Path(call["embedder_weights"]).resolve() == daclip  # the run's DA-CLIP, not daclip-vit-b-32
        else:
            assert call["overrides"].get("embedder") == ""  # trained without an embedder
    psnrs = [r.values["average/psnr"] for r in result.rows]
    assert len(set(psnrs)) == len(psnrs)  # six different networks


def test_a_run_of_another_network_or_setting_is_refused_for_a_row(tmp_path, data_root, daclip_folder):
    full = make_run(tmp_path, "table6_nafnet_daclip", "nafnet-daclip", seed=3, daclip=daclip_folder)
    table = get_table("6")
    plan = plan_row(table, table.row("+ Degradation embedding"),
                    _options(data_root, row_weights={"+ Degradation embedding": str(full)}))
    assert not plan.runnable and "use_content=True (the row needs False)" in plan.missing[0]
    plan = plan_row(table, table.row("NAFNet"), _options(data_root, row_weights={"NAFNet": str(full)}))
    assert not plan.runnable and "'nafnet-daclip' network" in plan.missing[0]


def test_user_trained_rows_never_fall_back_to_released_weights(tmp_path, data_root):
    weights_dir = tmp_path / "weights"
    weights_dir.mkdir()
    (weights_dir / "NAFNet-GoPro-width32.pth").write_bytes(b"released GoPro deblurring weights")
    assert locate_weights("nafnet-gopro-w32", weights_dir)[0] is not None  # the nafnet recipe's weights are here
    options = _options(data_root, weights_dir=weights_dir)
    for name, label in (("6", "NAFNet"), ("3", "NAFNet"), ("9", "NAFNet"), ("6", "Restormer"),
                        ("6", "PromptIR (Restormer + degradation)"), ("5", "PromptIR"), ("7", "NAFNet")):
        table = get_table(name)
        row = table.row(label)
        assert row.user_trained
        plan = plan_row(table, row, options)
        assert not plan.runnable and not plan.models, (name, label)
        assert "measured only with weights you train" in plan.missing[0]
    result = run_table(get_table("6"), options)
    assert all(r.status == "not-run" for r in result.rows)
    assert "daclip-kit train restoration --config table6_nafnet`" in result.row("NAFNet").notes[0]


def test_missing_run_folders_give_one_line_notes_naming_the_run_file(tmp_path, data_root, daclip_folder, capsys):
    make_run(tmp_path, "table6_nafnet", "nafnet", seed=1, embedder="none")
    assert main(["bench", "--table", "6", "--runs", str(tmp_path / "runs"), "--data-root", str(data_root),
                 "--device", "cpu", "--row", "NAFNet", "--row", "PromptIR + Content embedding"]) == 0
    out = capsys.readouterr().out
    assert "ours" in out and "paper" in out and "Δ" in out  # the measured row: ours / paper / delta
    assert "measured with your weights" in out
    result = run_table(get_table("6"), _options(data_root, runs_dir=tmp_path / "runs",
                                                rows=("PromptIR + Content embedding", "Restormer")))
    for row, run in zip(result.rows, ("table6_restormer", "table6_promptir_content"), strict=True):
        assert row.status == "not-run" and len(row.notes) == 1 and "\n" not in row.notes[0]
        assert f"no run folder {tmp_path / 'runs' / run_folder_name(run)}" in row.notes[0]
        assert f"`daclip-kit train restoration --config {run}` makes it" in row.notes[0]
    assert main(["bench", "--table", "6", "--runs", str(tmp_path / "nowhere")]) == 1
    assert "--runs folder" in capsys.readouterr().err
    with pytest.raises(InputError):
        plan_table(get_table("6"), _options(data_root, runs_dir=tmp_path / "nowhere"))


# --- Table 7 ----------------------------------------------------------------------------------------


def test_table7_measures_each_data_set_with_its_own_model(tmp_path, data_root, spy_builds):
    a = make_run(tmp_path, "table7_nafnet_rain100h", "nafnet", seed=1, embedder="none")
    b = make_run(tmp_path, "table7_nafnet_lol", "nafnet", seed=2, embedder="none")
    table = get_table("7")

    def measure(rainy, low_light):
        weights = {"NAFNet@rainy": str(rainy), "NAFNet@low-light": str(low_light)}
        return run_table(table, _options(data_root, rows=("NAFNet",), row_weights=weights)).row("NAFNet")

    ab, ba, aa = measure(a, b), measure(b, a), measure(a, a)
    assert ab.status == "partial"  # LPIPS and FID need their networks; PSNR and SSIM are measured
    assert {"rainy/psnr", "low-light/psnr"} <= set(ab.values)
    assert ab.values["rainy/psnr"] == aa.values["rainy/psnr"] != ba.values["rainy/psnr"]
    assert ab.values["low-light/psnr"] != aa.values["low-light/psnr"]
    assert ba.values["low-light/psnr"] == aa.values["low-light/psnr"]
    nets = [c["weights"] for c in spy_builds[:2]]  # one restorer per (row, data set)
    assert nets == [a / "checkpoints/step-00000002/network-ema", b / "checkpoints/step-00000002/network-ema"]
    # --runs finds the same folders by the rows' run names
    by_runs = run_table(table, _options(data_root, rows=("NAFNet",), runs_dir=tmp_path / "runs")).row("NAFNet")
    assert by_runs.values == ab.values
    with pytest.raises(ConfigError, match="one model per data set"):
        plan_table(table, _options(data_root, row_weights={"NAFNet": str(a)}))


def test_table7_with_one_run_missing_measures_the_other_data_set(tmp_path, data_root, daclip_folder, capsys):
    make_run(tmp_path, "table7_nafnet_daclip_rain100h", "nafnet-daclip", seed=4, daclip=daclip_folder)
    assert main(["bench", "--table", "7", "--data-root", str(data_root), "--device", "cpu",
                 "--runs", str(tmp_path / "runs"), "--row", "NAFNet+DA-CLIP"]) == 0
    out = " ".join(capsys.readouterr().out.split())
    assert "low-light not measured: no run folder" in out
    assert "daclip-kit train restoration --config table7_nafnet_daclip_lol" in out
    row = run_table(get_table("7"), _options(data_root, rows=("NAFNet+DA-CLIP",),
                                             runs_dir=tmp_path / "runs")).row("NAFNet+DA-CLIP")
    assert "rainy/psnr" in row.values and "low-light/psnr" not in row.values
    assert main(["bench", "--table", "7", "--weights", "NAFNet@rain=x"]) == 1
    assert "no data set 'rain'" in capsys.readouterr().err


# --- another sampler on the paper rows ----------------------------------------------------------------


def test_the_paper_row_runs_with_mrs(tmp_path, data_root, daclip_folder, capsys):
    """Table 3's *Ours* asks for the IR-SDE's ``sampler.mode = "sde"``; ``--sampler mrs`` leaves it out
    (it failed with "Unknown config key 'mrs.mode'") and the row's note says which sampler ran."""
    import json

    run = tmp_path / "runs" / "ours"  # a tiny IR-SDE U-Net, as training writes it, with the tiny DA-CLIP
    tiny = get_registry("backbones").get("irsde-unet").tiny_config
    torch.manual_seed(1)
    save_network(create_backbone("irsde-unet", **tiny), run / "checkpoints" / "step-00000001" / "network-ema",
                 name="irsde-unet", config=tiny)
    (run / "config.toml").write_text(f'out_dir = "runs/ours"\n[network]\nname = "irsde-unet"\n'
                                     f'[embedder]\nname = "daclip"\nweights = "{daclip_folder}"\n')
    out = tmp_path / "t3.json"
    assert main(["bench", "--table", "3", "--row", "Ours", "--weights", f"Ours={run}", "--data-root",
                 str(data_root), "--device", "cpu", "--sampler", "mrs", "--steps", "2", "--json", str(out)]) == 0
    row = json.loads(out.read_text())["rows"][0]
    assert row["status"] == "partial", row["notes"]  # LPIPS and FID need their networks
    assert row["cells"]["average/psnr"]["ours"] > 0
    assert any(n.startswith("restored with the mrs sampler, 2 evaluations (--sampler mrs --steps 2); "
                            "the row's sampler.mode = 'sde' left out") for n in row["notes"])
