"""The ``spandrel`` backbone: checkpoints of architectures daclip-kit does not implement, written here
from spandrel's own network classes with random weights, restore, bench and demo like any backbone."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from PIL import Image
from safetensors.torch import save_file

import daclip_kit
from daclip_kit.errors import CheckpointError, ConfigError
from daclip_kit.pretrained import detect_network, save_network

pytestmark = pytest.mark.usefixtures("one_thread")

def _swinir():
    from spandrel.architectures.SwinIR import SwinIR

    torch.manual_seed(0)
    return SwinIR(img_size=16, embed_dim=12, depths=[1], num_heads=[2], window_size=4, upscale=1, upsampler="",
                  mlp_ratio=2, resi_connection="1conv").eval()


@pytest.fixture(scope="module")
def swinir_file(tmp_path_factory):
    """A SwinIR checkpoint in BasicSR's layout (``{"params": state_dict}``) and the network that wrote it."""
    net = _swinir()
    path = tmp_path_factory.mktemp("spandrel") / "swinir-denoise.pth"
    torch.save({"params": net.state_dict()}, path)
    return path, net


@pytest.fixture(scope="module")
def photo(tmp_path_factory):
    path = tmp_path_factory.mktemp("spandrel-photo") / "photo.png"
    rng = np.random.default_rng(3)
    Image.fromarray(rng.integers(0, 256, (20, 28, 3), dtype=np.uint8)).save(path)
    return path


def test_a_checkpoint_loads_as_the_network_that_wrote_it(swinir_file):
    path, net = swinir_file
    assert detect_network(path) == ["spandrel"]
    backbone = daclip_kit.load_network("spandrel", path)
    assert backbone.architecture == "SwinIR"
    x = torch.rand(1, 3, 20, 28, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        torch.testing.assert_close(backbone(x), net(x), rtol=0, atol=0)
    about = backbone.describe()
    assert about.startswith("SwinIR (Restoration") and "license permissive" in about


def test_safetensors_and_native_folders_round_trip(tmp_path, swinir_file):
    _, net = swinir_file
    file = tmp_path / "swinir.safetensors"
    save_file(net.state_dict(), str(file))
    backbone = daclip_kit.load_network("spandrel", file)
    folder = save_network(backbone, tmp_path / "native", name="spandrel")
    assert json.loads((folder / "config.json").read_text())["config"] == {"architecture": "SwinIR"}
    again = daclip_kit.load_network(None, folder)
    for (k1, v1), (k2, v2) in zip(backbone.state_dict().items(), again.state_dict().items(), strict=True):
        assert k1 == k2 and torch.equal(v1, v2)


def test_noise_level_architectures_run_through_spandrels_call(tmp_path):
    """FDnCNN is called with a noise-level map by spandrel; the backbone runs that same call."""
    import spandrel
    from spandrel.architectures.DnCNN import DnCNN

    torch.manual_seed(0)
    net = DnCNN(in_nc=4, out_nc=3, nc=8, nb=9, act_mode="R", mode="FDnCNN").eval()  # + a noise-level map
    path = tmp_path / "dncnn.pth"
    torch.save(net.state_dict(), path)
    backbone = daclip_kit.load_network("spandrel", path)
    x = torch.rand(1, 3, 16, 16, generator=torch.Generator().manual_seed(2))
    reference = spandrel.ModelLoader().load_from_state_dict(net.state_dict())
    with torch.no_grad():
        torch.testing.assert_close(backbone(x).clamp(0, 1), reference(x), rtol=0, atol=1e-6)


def test_models_that_change_the_size_or_channels_are_refused(tmp_path):
    from spandrel.architectures.ESRGAN import ESRGAN

    path = tmp_path / "esrgan-x4.pth"
    torch.save(ESRGAN(in_nc=3, out_nc=3, num_filters=8, num_blocks=1, scale=4).state_dict(), path)
    with pytest.raises(CheckpointError, match=r"upscales x4.*input size"):
        daclip_kit.load_network("spandrel", path)
    nothing = tmp_path / "nothing.pth"
    torch.save({"conv.weight": torch.zeros(4, 3, 3, 3)}, nothing)
    with pytest.raises(CheckpointError, match="recognises none of its architectures"):
        daclip_kit.load_network("spandrel", nothing)
    with pytest.raises(ConfigError, match=r"no architecture 'SwinIRR'.*Did you mean: SwinIR"):
        daclip_kit.create_backbone("spandrel", architecture="SwinIRR")


def test_restore_cli_shows_architecture_and_license(tmp_path, swinir_file, photo, capsys):
    from daclip_kit.cli.main import main

    path, net = swinir_file
    out = tmp_path / "restored.png"
    assert main(["restore", str(photo), "-o", str(out), "--model", "spandrel", "--weights", str(path),
                 "--device", "cpu"]) == 0
    text = capsys.readouterr().out
    assert "network: SwinIR (Restoration" in text and "license permissive" in text
    x = torch.from_numpy(np.asarray(Image.open(photo), dtype=np.float32) / 255).permute(2, 0, 1)[None]
    with torch.no_grad():
        expected = (net(x).clamp(0, 1)[0].permute(1, 2, 0).numpy() * 255).round()
    got = np.asarray(Image.open(out), dtype=np.float32)
    assert got.shape == (20, 28, 3) and np.abs(got - expected).max() <= 1


def test_bench_measures_a_spandrel_checkpoint_as_its_own_row(tmp_path, swinir_file, capsys):
    from daclip_kit.bench.plan import with_own_rows
    from daclip_kit.bench.spec import get_table
    from daclip_kit.cli.main import main
    from daclip_kit.data.mini import build_mini

    path, _ = swinir_file
    root = tmp_path / "mini"
    build_mini(root, size=32, per_type=1, val_per_type=1, composed=0)
    report = tmp_path / "t3.json"
    assert main(["bench", "--table", "3", "--data-root", str(root), "--weights", f"My SwinIR={path}",
                 "--row", "My SwinIR", "--device", "cpu", "--json", str(report)]) == 0
    rows = {r["label"]: r for r in json.loads(report.read_text())["rows"]}
    mine = rows["My SwinIR"]
    assert mine["pipeline"] == "spandrel" and mine["status"] in ("measured", "partial"), mine["status"]
    assert mine["cells"]["average/psnr"]["ours"] > 0 and mine["cells"]["average/psnr"]["paper"] is None
    assert any("SwinIR (Restoration" in n and "license" in n for n in mine["notes"])
    # a new label whose file holds no known network: say so, and list the rows in case of a typo
    torch.save({"conv.weight": torch.zeros(1)}, tmp_path / "other.pth")
    with pytest.raises(ConfigError, match=r"'NAFNett' is not a row of table 3.*Did you mean: NAFNet.*holds no network"):
        with_own_rows(get_table("3"), {"NAFNett": str(tmp_path / "other.pth")})


def test_the_demo_restores_with_it_and_names_the_architecture(swinir_file, photo):
    from daclip_kit.demo.core import DemoSettings, run_restore

    path, _ = swinir_file
    settings = DemoSettings(weights=path, device="cpu", model="spandrel")
    restored, probabilities, message = run_restore(photo, "spandrel", settings=settings)
    assert restored.size == (28, 20) and probabilities == {}
    assert "Network: SwinIR (Restoration" in message and "license" in message
    direct = daclip_kit.restore(photo, model="spandrel", weights=path, device="cpu")
    np.testing.assert_array_equal(np.asarray(restored), np.asarray(direct))
