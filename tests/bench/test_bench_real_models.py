"""The runner building real daclip-kit models from weights on disk (tiny configs, random weights).

Mechanics only: a tiny random IR-SDE UNet with a tiny random DA-CLIP, 4 sampling steps.
"""

from __future__ import annotations

import json

import numpy as np
import torch
from PIL import Image

from daclip_kit import hookimpl

TINY_UNET = {"in_nc": 3, "out_nc": 3, "nf": 32, "ch_mult": (1, 1, 1, 1), "context_dim": 32,
             "use_degra_context": True, "use_image_context": True}


class _Plugin:
    """A tiny pipeline with named weights and a table whose rows name it."""

    @hookimpl
    def daclip_kit_register_weights(self):
        from daclip_kit.specs import WeightSpec

        return [WeightSpec(name="tiny-unet", filename="tiny-unet.pt", model="backbone:irsde-unet"),
                WeightSpec(name="absent-unet", filename="absent.pt", model="backbone:irsde-unet")]

    @hookimpl
    def daclip_kit_register_pipelines(self):
        from daclip_kit.embedders.plugin import TINY_CLIP_CONFIG
        from daclip_kit.specs import PipelineSpec

        return [PipelineSpec(name="tiny-irsde", backbone="irsde-unet", backbone_config=TINY_UNET,
                             weights="tiny-unet", embedder="daclip",
                             embedder_config={"model_config": TINY_CLIP_CONFIG}, sampler="irsde",
                             sampler_config={"T": 4, "mode": "sde"})]

    @hookimpl
    def daclip_kit_register_tables(self):
        from daclip_kit.bench.spec import ColumnSpec, RowSpec, TableSpec

        return [TableSpec(
            name="tiny-restore", title="tiny random IR-SDE + DA-CLIP (mechanics)",
            rows=(RowSpec(label="Tiny", pipeline="tiny-irsde"),
                  RowSpec(label="Needs weights", pipeline="tiny-irsde", overrides={"weights": "absent-unet"})),
            columns=(ColumnSpec(dataset="noisy", metric="psnr"), ColumnSpec(dataset="noisy", metric="ssim")),
            reference={("Tiny", "noisy/psnr"): 30.0})]


def test_runner_builds_irsde_pipeline_from_weights_file(tmp_path, capsys):
    from daclip_kit import create_backbone
    from daclip_kit.cli.main import main
    from daclip_kit.plugins import get_plugin_manager

    get_plugin_manager().register(_Plugin(), name="tiny-restore-plugin")
    torch.manual_seed(0)
    unet = create_backbone("irsde-unet", **TINY_UNET)
    (tmp_path / "w").mkdir()
    torch.save(unet.state_dict(), tmp_path / "w" / "tiny-unet.pt")
    rng = np.random.default_rng(0)
    for sub in ("LQ", "GT"):
        (tmp_path / "d" / "val" / "noisy" / sub).mkdir(parents=True)
    for i in range(2):
        gt = rng.integers(0, 256, (24, 20, 3), dtype=np.uint8)
        Image.fromarray(gt).save(tmp_path / "d" / "val" / "noisy" / "GT" / f"{i}.png")
        Image.fromarray(255 - gt).save(tmp_path / "d" / "val" / "noisy" / "LQ" / f"{i}.png")
    out = tmp_path / "r.json"
    assert main(["bench", "--table", "tiny-restore", "--data-root", str(tmp_path / "d"),
                 "--weights-dir", str(tmp_path / "w"), "--device", "cpu", "--json", str(out)]) == 0
    data = json.loads(out.read_text())
    rows = {r["label"]: r for r in data["rows"]}
    assert rows["Tiny"]["status"] == "measured", rows["Tiny"]["notes"]
    psnr = rows["Tiny"]["cells"]["noisy/psnr"]["ours"]
    assert np.isfinite(psnr) and 0 < psnr < 60
    assert len([i for i in data["images"] if i["row"] == "Tiny"]) == 2
    assert rows["Needs weights"]["status"] == "not-run"
    assert "absent.pt" in " ".join(rows["Needs weights"]["notes"])


def test_bench_rows_with_another_sampler(tmp_path, capsys):
    """`bench --sampler mrs --steps N` measures the diffusion rows with MRS; the JSON records it."""
    from daclip_kit import create_backbone
    from daclip_kit.cli.main import main
    from daclip_kit.plugins import get_plugin_manager

    get_plugin_manager().register(_Plugin(), name="tiny-restore-plugin")
    torch.manual_seed(0)
    (tmp_path / "w").mkdir()
    torch.save(create_backbone("irsde-unet", **TINY_UNET).state_dict(), tmp_path / "w" / "tiny-unet.pt")
    rng = np.random.default_rng(0)
    for sub in ("LQ", "GT"):
        (tmp_path / "d" / "val" / "noisy" / sub).mkdir(parents=True)
    gt = rng.integers(0, 256, (24, 20, 3), dtype=np.uint8)
    Image.fromarray(gt).save(tmp_path / "d" / "val" / "noisy" / "GT" / "0.png")
    Image.fromarray(255 - gt).save(tmp_path / "d" / "val" / "noisy" / "LQ" / "0.png")
    results = {}
    runs = (("irsde", []), ("mrs", ["--sampler", "mrs", "--steps", "3"]), ("bf16", ["--precision", "bf16"]))
    for name, extra in runs:
        out = tmp_path / f"{name}.json"
        assert main(["bench", "--table", "tiny-restore", "--row", "Tiny", "--data-root", str(tmp_path / "d"),
                     "--weights-dir", str(tmp_path / "w"), "--device", "cpu", "--json", str(out), *extra]) == 0
        data = json.loads(out.read_text())
        results[name] = data["rows"][0]["cells"]["noisy/psnr"]["ours"]
        assert data["config"]["overrides"] == ({"sampler": "mrs", "steps": "3"} if name == "mrs" else {})
        assert data["config"]["precision"] == ("bf16" if name == "bf16" else "fp32")
    assert results["irsde"] != results["mrs"]  # really another sampler
    assert results["irsde"] != results["bf16"]  # really another precision


class _PaperRowPlugin:
    """A table whose row sets the paper's sampler mode, as Tables 2, 3 and 6 do."""

    @hookimpl
    def daclip_kit_register_tables(self):
        from daclip_kit.bench.spec import ColumnSpec, RowSpec, TableSpec

        return [TableSpec(
            name="tiny-paper-row", title="a row with the paper's sampler settings",
            rows=(RowSpec(label="Paper", pipeline="tiny-irsde", overrides={"sampler.mode": "sde"}, user_trained=True),),
            columns=(ColumnSpec(dataset="noisy", metric="psnr"),))]


def test_a_distilled_student_runs_its_own_k_steps_in_a_paper_row(tmp_path, monkeypatch):
    """`bench --weights ROW=STUDENT`: a folder saved with a K-step sampler (train distill) runs it,
    not the row's ``sampler.mode = "sde"``, and the report says so; a teacher folder keeps the row's."""
    from daclip_kit import create_backbone, save_network
    from daclip_kit.cli.main import main
    from daclip_kit.plugins import get_plugin_manager
    from daclip_kit.train.distill_config import student_sampler

    manager = get_plugin_manager()
    manager.register(_Plugin(), name="tiny-restore-plugin")
    manager.register(_PaperRowPlugin(), name="tiny-paper-row-plugin")
    torch.manual_seed(0)
    net = create_backbone("irsde-unet", **TINY_UNET)
    sde = {"max_sigma": 50.0, "T": 4, "schedule": "cosine", "eps": 0.005}
    student = save_network(net, tmp_path / "student", name="irsde-unet", config=dict(TINY_UNET),
                           sampler=student_sampler(sde, 2, -5.0))
    teacher = save_network(net, tmp_path / "teacher", name="irsde-unet", config=dict(TINY_UNET),
                           sampler={"name": "irsde", "config": sde})
    (tmp_path / "w").mkdir()  # --weights-dir: nothing in it is needed, --weights gives the network
    for sub in ("LQ", "GT"):
        (tmp_path / "d" / "val" / "noisy" / sub).mkdir(parents=True)
    gt = np.random.default_rng(0).integers(0, 256, (24, 20, 3), dtype=np.uint8)
    Image.fromarray(gt).save(tmp_path / "d" / "val" / "noisy" / "GT" / "0.png")
    Image.fromarray(255 - gt).save(tmp_path / "d" / "val" / "noisy" / "LQ" / "0.png")
    calls = []
    real_forward = type(net).forward

    def counting(self, x, *args, **kwargs):
        if x.device.type != "meta":
            calls.append(1)
        return real_forward(self, x, *args, **kwargs)

    monkeypatch.setattr(type(net), "forward", counting)
    rows = {}
    for name, folder in (("student", student), ("teacher", teacher)):
        calls.clear()
        out = tmp_path / f"{name}.json"
        assert main(["bench", "--table", "tiny-paper-row", "--data-root", str(tmp_path / "d"), "--weights-dir",
                     str(tmp_path / "w"), "--weights", f"Paper={folder}", "--device", "cpu", "--json", str(out)]) == 0
        rows[name] = (json.loads(out.read_text())["rows"][0], len(calls))
    (row, n) = rows["student"]
    assert row["status"] == "measured", row["notes"]
    assert n == 2  # one image, the student's K = 2 evaluations
    assert any("sampler saved with it (mrs, 2 evaluations)" in note and "sampler.mode" in note for note in row["notes"])
    (row, n) = rows["teacher"]
    assert row["status"] == "measured", row["notes"]
    assert n == 4  # the SDE's T = 4 steps with the row's mode
    assert not any("sampler saved with it" in note for note in row["notes"])


class _SamplerRowPlugin:
    """A row with the paper's IR-SDE mode and an SDE setting every mean-reverting sampler shares."""

    @hookimpl
    def daclip_kit_register_tables(self):
        from daclip_kit.bench.spec import ColumnSpec, RowSpec, TableSpec

        return [TableSpec(
            name="tiny-sampler-row", title="a row with its own sampler settings",
            rows=(RowSpec(label="Paper", pipeline="tiny-irsde",
                          overrides={"sampler.mode": "sde", "sampler.max_sigma": 30.0}),),
            columns=(ColumnSpec(dataset="noisy", metric="psnr"),))]


def test_layer_overrides_gives_a_new_sampler_only_the_settings_it_has():
    from daclip_kit.pipelines.recipe import layer_overrides

    row = {"sampler.mode": "sde", "sampler.max_sigma": 30.0, "steps": 100}
    assert layer_overrides(row, {"sampler": "mrs", "steps": 10}) == (
        {"sampler.max_sigma": 30.0, "steps": 10, "sampler": "mrs"}, {"sampler.mode": "sde"})
    assert layer_overrides(row, {"sampler": "irsde"})[1] == {}  # the row's own sampler keeps them all
    assert layer_overrides(row, {"steps": 10}) == ({**row, "steps": 10}, {})
    # the user's own settings are never dropped (a wrong one is refused when the sampler is built)
    assert layer_overrides(row, {"sampler": "mrs", "sampler.mode": "ode"})[0]["sampler.mode"] == "ode"


def test_another_sampler_leaves_out_the_rows_own_settings_and_keeps_the_shared_ones(tmp_path, monkeypatch):
    """`bench --sampler mrs --steps N` on a row asking for the IR-SDE's `sampler.mode = "sde"` (as the paper
    rows do): was "Unknown config key 'mrs.mode'" for every such row."""
    from daclip_kit import create_backbone
    from daclip_kit.cli.main import main
    from daclip_kit.pipelines import build
    from daclip_kit.plugins import get_plugin_manager

    manager = get_plugin_manager()
    manager.register(_Plugin(), name="tiny-restore-plugin")
    manager.register(_SamplerRowPlugin(), name="tiny-sampler-row-plugin")
    torch.manual_seed(0)
    net = create_backbone("irsde-unet", **TINY_UNET)
    (tmp_path / "w").mkdir()
    torch.save(net.state_dict(), tmp_path / "w" / "tiny-unet.pt")
    for sub in ("LQ", "GT"):
        (tmp_path / "d" / "val" / "noisy" / sub).mkdir(parents=True)
    gt = np.random.default_rng(0).integers(0, 256, (24, 20, 3), dtype=np.uint8)
    Image.fromarray(gt).save(tmp_path / "d" / "val" / "noisy" / "GT" / "0.png")
    Image.fromarray(255 - gt).save(tmp_path / "d" / "val" / "noisy" / "LQ" / "0.png")
    recipes, calls = [], []
    real_build, real_forward = build.build_pipeline, type(net).forward

    def spy(model, **kw):
        built = real_build(model, **kw)
        recipes.append(built.recipe)
        return built

    def counting(self, x, *args, **kwargs):
        if x.device.type != "meta":
            calls.append(1)
        return real_forward(self, x, *args, **kwargs)

    monkeypatch.setattr(build, "build_pipeline", spy)
    monkeypatch.setattr(type(net), "forward", counting)
    rows = {}
    for name, extra in (("default", []), ("mrs", ["--sampler", "mrs", "--steps", "2"])):
        recipes.clear()
        calls.clear()
        out = tmp_path / f"{name}.json"
        assert main(["bench", "--table", "tiny-sampler-row", "--data-root", str(tmp_path / "d"), "--weights-dir",
                     str(tmp_path / "w"), "--device", "cpu", "--json", str(out), *extra]) == 0
        rows[name] = (json.loads(out.read_text())["rows"][0], recipes[0], len(calls))
    row, recipe, n = rows["default"]  # unchanged: the row's IR-SDE in its mode, T = 4 steps
    assert row["status"] == "measured", row["notes"]
    assert recipe.sampler == "irsde" and recipe.sampler_config == {"T": 4, "mode": "sde", "max_sigma": 30.0}
    assert n == 4 and not any("restored with" in note for note in row["notes"])
    row, recipe, n = rows["mrs"]
    assert row["status"] == "measured", row["notes"]
    assert recipe.sampler == "mrs" and recipe.sampler_config == {"T": 4, "max_sigma": 30.0}  # shared: kept
    assert n == 2
    assert ("restored with the mrs sampler, 2 evaluations (--sampler mrs --steps 2); the row's sampler.mode = 'sde' "
            "left out (mrs has no such setting)") in row["notes"]
