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
    for name, extra in (("irsde", []), ("mrs", ["--sampler", "mrs", "--steps", "3"]), ("bf16", ["--precision", "bf16"])):
        out = tmp_path / f"{name}.json"
        assert main(["bench", "--table", "tiny-restore", "--row", "Tiny", "--data-root", str(tmp_path / "d"),
                     "--weights-dir", str(tmp_path / "w"), "--device", "cpu", "--json", str(out), *extra]) == 0
        data = json.loads(out.read_text())
        results[name] = data["rows"][0]["cells"]["noisy/psnr"]["ours"]
        assert data["config"]["overrides"] == ({"sampler": "mrs", "steps": "3"} if name == "mrs" else {})
        assert data["config"]["precision"] == ("bf16" if name == "bf16" else "fp32")
    assert results["irsde"] != results["mrs"]  # really another sampler
    assert results["irsde"] != results["bf16"]  # really another precision
