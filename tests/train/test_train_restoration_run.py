"""Restoration training (the IR-SDE U-Net by default) with a frozen tiny DA-CLIP on the mini data set."""

from __future__ import annotations

import json
import math
from collections import Counter

import pytest
import torch
from _tolerance import ulps
from _train_testutil import TYPES, irsde_config

from daclip_kit.checkpoint import load_pretrained_files
from daclip_kit.errors import ConfigError, InputError
from daclip_kit.train.optim import build_optimizer
from daclip_kit.train.restoration import RestorationTask, train_restoration

pytestmark = pytest.mark.usefixtures("one_thread")


def test_overfits_a_fixed_batch(root, daclip, tmp_path):
    cfg = irsde_config(root, daclip, tmp_path / "run", objective="noise")
    torch.manual_seed(0)
    task = RestorationTask(cfg, torch.device("cpu"), None)
    items = [task.dataset[i] for i in range(2)]
    batch = {k: torch.stack([item[k] for item in items]) for k in ("lq", "gt")}
    batch["seed"] = torch.tensor([item["seed"] for item in items])  # same t and noise every step
    frozen = {k: v.clone() for k, v in task.embedder.state_dict().items()}
    optimizer = build_optimizer(task.trainable(), cfg.optim)
    losses = []
    for _ in range(20):
        loss, _ = task.loss(batch)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(float(loss.detach()))
    assert all(math.isfinite(v) for v in losses)
    assert losses[-1] < 0.97 * losses[0], losses
    assert sum(losses[-5:]) < sum(losses[5:10]) < sum(losses[:5]), losses
    assert all(torch.equal(v, task.embedder.state_dict()[k]) for k, v in frozen.items())


def test_balanced_sampling_cycles_the_degradations(root, daclip, tmp_path):
    task = RestorationTask(irsde_config(root, daclip, tmp_path / "run"), torch.device("cpu"), None)
    ds = task.dataset
    assert ds.names == list(TYPES) or sorted(ds.names) == sorted(TYPES)
    assert len(ds) == 12
    seen = [ds[i]["degradation"] for i in range(8)]
    assert seen == [ds.names[i % 4] for i in range(8)]
    assert Counter(seen) == Counter(dict.fromkeys(ds.names, 2))
    item = ds[5]
    assert item["lq"].shape == item["gt"].shape == (3, 32, 32)


def test_ema_copies_the_network_during_warm_up_then_trails_it(root, daclip, tmp_path):
    """update_every 2, update_after_step 2: steps 1 and 3 copy (s = n - 1 = 0, 2), step 5 averages."""
    cfg = irsde_config(root, daclip, tmp_path / "run", save_every=1, max_steps=5,
                  ema={"decay": 0.995, "update_every": 2, "update_after_step": 2})
    result = train_restoration(cfg)
    assert result.step == 5 and all(math.isfinite(r["loss"]) for r in result.history)
    ckpt = tmp_path / "run" / "checkpoints"
    net, ema = {}, {}
    for n in range(1, 6):
        config, net[n] = load_pretrained_files(ckpt / f"step-{n:08d}" / "network")
        _, ema[n] = load_pretrained_files(ckpt / f"step-{n:08d}" / "network-ema")
    assert config["config"]["nf"] == 32 and config["config"]["context_dim"] == 32
    keys = list(net[1])
    assert all(torch.equal(ema[1][k], net[1][k]) for k in keys)  # warm-up: a copy of the trained weights
    assert all(torch.equal(ema[2][k], net[1][k]) for k in keys)  # no update at s = 1
    assert all(torch.equal(ema[3][k], net[3][k]) for k in keys)
    assert any(not torch.equal(net[3][k], net[1][k]) for k in keys)
    d = 1 - (1 + (5 - 2 - 1)) ** (-2 / 3)  # the ramped decay of the first average (n = 5)
    for k in keys:
        # lerp_ and d a + (1 - d) b round differently, each within 2 ulps of the larger weight
        bound = ulps(torch.maximum(net[3][k].abs(), net[5][k].abs()), 4)
        torch.testing.assert_close(ema[5][k], d * net[3][k] + (1 - d) * net[5][k], rtol=0, atol=bound)
    assert any(not torch.equal(ema[5][k], net[5][k]) for k in keys)  # trails the weights


def test_resumed_run_matches_an_uninterrupted_one(root, daclip, tmp_path):
    straight = train_restoration(irsde_config(root, daclip, tmp_path / "a", max_steps=4, save_every=2))

    def interrupt(step, total, record):
        if step == 2:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        train_restoration(irsde_config(root, daclip, tmp_path / "b", max_steps=4, save_every=2), progress=interrupt)
    resumed = train_restoration(irsde_config(root, daclip, tmp_path / "b", max_steps=4, save_every=2),
                                resume=tmp_path / "b")
    assert resumed.step == 4
    _, a = load_pretrained_files(straight.checkpoint / "network")
    _, b = load_pretrained_files(resumed.checkpoint / "network")
    for k in a:
        torch.testing.assert_close(b[k], a[k], rtol=0, atol=1e-6)
    _, a_ema = load_pretrained_files(straight.checkpoint / "network-ema")
    _, b_ema = load_pretrained_files(resumed.checkpoint / "network-ema")
    for k in a_ema:
        torch.testing.assert_close(b_ema[k], a_ema[k], rtol=0, atol=1e-6)
    assert [r["loss"] for r in resumed.history] == pytest.approx([r["loss"] for r in straight.history[2:]], abs=1e-6)


def test_validation_reports_psnr(root, daclip, tmp_path):
    cfg = irsde_config(root, daclip, tmp_path / "run", max_steps=2, validation={"every": 2, "count": 3, "steps": 2})
    result = train_restoration(cfg)
    val = [r for r in result.history if "val_psnr" in r]
    assert len(val) == 1 and val[0]["step"] == 2 and math.isfinite(val[0]["val_psnr"])
    assert 0 < val[0]["val_psnr"] < 100
    lines = (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()
    assert len(lines) == 3 and "val_psnr" in lines[-1]


def test_plain_irsde_without_an_embedder(root, daclip, tmp_path):
    cfg = irsde_config(root, daclip, tmp_path / "run", max_steps=1, embedder={"name": "none"},
                  network={"use_degra_context": False, "use_image_context": False, "context_dim": 0},
                  ema={"enabled": False})
    result = train_restoration(cfg)
    assert sorted(p.name for p in result.checkpoint.iterdir()) == ["model_index.json", "network", "trainer_state.pt"]
    assert json.loads((result.checkpoint / "network" / "config.json").read_text())["daclip"] is None


def test_mismatched_context_dim_is_an_error(root, daclip, tmp_path):
    cfg = irsde_config(root, daclip, tmp_path / "run", network={"context_dim": 64})
    with pytest.raises(ConfigError, match=r"set network\.context_dim=32"):
        train_restoration(cfg)


def test_patch_larger_than_the_images_is_an_error(root, daclip, tmp_path):
    cfg = irsde_config(root, daclip, tmp_path / "run", data={"patch_size": 48})
    with pytest.raises(InputError, match=r"smaller than data\.patch_size=48"):
        train_restoration(cfg)


def test_bf16_autocast_step(root, daclip, tmp_path):
    result = train_restoration(irsde_config(root, daclip, tmp_path / "run", max_steps=1, precision="bf16"))
    assert result.step == 1 and math.isfinite(result.history[-1]["loss"])
    _, state = load_pretrained_files(result.checkpoint / "network")
    assert all(v.dtype == torch.float32 for v in state.values())


def test_a_broken_image_in_a_loader_worker_is_one_line_naming_the_file(root, daclip, tmp_path, capsys):
    import shutil

    from daclip_kit.cli.main import main
    from daclip_kit.train.config import config_to_toml

    broken = tmp_path / "universal"
    shutil.copytree(root, broken)
    bad = sorted((broken / "train").glob("*/LQ/*.png"))
    for path in bad:
        path.write_bytes(b"not a png")
    cfg = irsde_config(broken, daclip, tmp_path / "run", data={"num_workers": 1})
    with pytest.raises(InputError, match=r"Cannot read .*LQ.*png"):
        train_restoration(cfg)
    capsys.readouterr()
    run_file = tmp_path / "run.toml"
    run_file.write_text(config_to_toml(cfg.validate()))
    assert main(["train", "restoration", "--config", str(run_file), "--out", str(tmp_path / "cli"), "--json"]) == 1
    err = capsys.readouterr().err.strip()
    # besides the run's memory estimate (an info line, shown at the CLI's log level), the error in one line
    lines = [line for line in err.splitlines() if not line.startswith("info: memory estimate ")]
    assert len(lines) == 1 and "Traceback" not in err, err
    err = lines[0]
    assert any(str(path) in err for path in bad), err
