"""Every run file of the paper's Tables 6 and 7 trains on the CPU (a few steps of tiny networks) and
writes checkpoints that restore; NAFNet's PSNR loss."""

from __future__ import annotations

import math

import pytest
import torch

import daclip_kit
from daclip_kit.cli.main import main
from daclip_kit.errors import ConfigError
from daclip_kit.train.config import bundled_recipes, load_run_config
from daclip_kit.train.restoration import psnr_loss

pytestmark = pytest.mark.usefixtures("one_thread")

ABLATIONS = [name for name in bundled_recipes() if name.startswith(("table6_", "table7_"))]
#: Tiny settings of each network the run files name (as --set overrides).
TINY = {
    "nafnet": ["width=8", "enc_blk_nums=[1, 1]", "dec_blk_nums=[1, 1]", "middle_blk_num=1"],
    "restormer": ["dim=8", "num_blocks=[1, 1, 1, 1]", "num_refinement_blocks=1"],
    "promptir": ["dim=8", "num_blocks=[1, 1, 1, 1]", "num_refinement_blocks=1", "prompt_dims=[8, 16, 32]",
                 "prompt_sizes=[8, 4, 4]"],
}


def test_tables_6_and_7_have_a_run_file_per_model():
    assert len(ABLATIONS) == 10
    networks = {name: load_run_config("restoration", name).network.name for name in ABLATIONS}
    assert networks["table6_nafnet"] == "nafnet" and networks["table6_promptir_content"] == "promptir-daclip"
    degradation_only = load_run_config("restoration", "table6_nafnet_degradation").network.options
    assert degradation_only["use_degradation"] and not degradation_only["use_content"]
    assert load_run_config("restoration", "table7_nafnet_lol").data.degradations == ("low-light",)
    for name in ABLATIONS:
        cfg = load_run_config("restoration", name)
        assert cfg.out_dir == "runs/" + name.replace("_", "-")
        assert cfg.uses_embedder == (networks[name].endswith("-daclip"))


@pytest.mark.parametrize("name", ABLATIONS)
def test_each_run_file_trains_a_few_steps_and_restores(name, root, daclip, tmp_path, capsys):
    network = load_run_config("restoration", name).network.name
    base = network.removesuffix("-daclip")
    sets = [f"network.{s}" for s in TINY[base]]
    if network.endswith("-daclip"):
        sets += ["network.context_dim=32", f"embedder.weights={daclip}"]
    sets += [f"data.root={root}", "data.degradations=noisy", "data.batch_size=2", "data.patch_size=32",
             "data.num_workers=0", "optim.warmup_steps=0", "validation.every=0", "ema.update_every=1",
             "save_every=2"]
    argv = ["train", "restoration", "--config", name, "--out", str(tmp_path / "run"), "--max-steps", "2",
            "--device", "cpu", "--json"]
    for s in sets:
        argv += ["--set", s]
    assert main(argv) == 0, capsys.readouterr().err
    capsys.readouterr()
    ema = tmp_path / "run" / "checkpoints" / "step-00000002" / "network-ema"
    net = daclip_kit.load_network(network, ema)
    assert sum(p.numel() for p in net.parameters()) < 2_000_000
    restore = ["restore", str(root / "val" / "noisy" / "LQ"), "-o", str(tmp_path / "out"), "--model", network,
               "--weights", str(ema), "--device", "cpu"]
    if network.endswith("-daclip"):
        restore += ["--daclip-weights", str(daclip)]
    assert main(restore) == 0, capsys.readouterr().err
    assert len(list((tmp_path / "out").glob("*.png"))) == 1


def test_psnr_loss_is_minus_the_mean_psnr():
    gt = torch.rand(2, 3, 8, 8, generator=torch.Generator().manual_seed(0))
    out = gt + torch.tensor([0.1, 0.01]).view(2, 1, 1, 1)
    expected = -(10 * math.log10(1 / 0.01) + 10 * math.log10(1 / 1e-4)) / 2  # PSNR 20 and 40 dB
    assert float(psnr_loss(out, gt)) == pytest.approx(expected, abs=1e-3)
    with pytest.raises(ConfigError, match="one-shot"):
        load_run_config("restoration", None, ["loss=psnr"])  # the default network is the IR-SDE denoiser
