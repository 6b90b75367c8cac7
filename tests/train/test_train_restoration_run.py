"""Restoration training (the IR-SDE U-Net by default) with a frozen tiny DA-CLIP on the mini data set."""

from __future__ import annotations

import math
from collections import Counter

import pytest
import torch
from _train_testutil import TYPES, irsde_run, mini_root, tiny_daclip_folder

from daclip_kit.checkpoint import load_pretrained_files
from daclip_kit.config import from_dict
from daclip_kit.errors import ConfigError, InputError
from daclip_kit.train.config import RestorationTrainConfig
from daclip_kit.train.optim import build_optimizer
from daclip_kit.train.restoration import RestorationTask, train_restoration

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    return mini_root(tmp_path_factory)


@pytest.fixture(scope="module")
def daclip(tmp_path_factory):
    return tiny_daclip_folder(tmp_path_factory)


def _config(root, daclip, out, **top) -> RestorationTrainConfig:
    return from_dict(RestorationTrainConfig, irsde_run(root, out, daclip, **top))


def test_overfits_a_fixed_batch(root, daclip, tmp_path):
    cfg = _config(root, daclip, tmp_path / "run", objective="noise")
    torch.manual_seed(0)
    task = RestorationTask(cfg, torch.device("cpu"), None)
    batch = {k: torch.stack([task.dataset[i][k] for i in range(2)]) for k in ("lq", "gt")}
    frozen = {k: v.clone() for k, v in task.embedder.state_dict().items()}
    optimizer = build_optimizer(task.trainable(), cfg.optim)
    losses = []
    for _ in range(20):
        loss, _ = task.loss(batch, torch.Generator().manual_seed(1))  # same t and noise every step
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(float(loss.detach()))
    assert all(math.isfinite(v) for v in losses)
    assert losses[-1] < 0.97 * losses[0], losses
    assert sum(losses[-5:]) < sum(losses[5:10]) < sum(losses[:5]), losses
    assert all(torch.equal(v, task.embedder.state_dict()[k]) for k, v in frozen.items())


def test_balanced_sampling_cycles_the_degradations(root, daclip, tmp_path):
    task = RestorationTask(_config(root, daclip, tmp_path / "run"), torch.device("cpu"), None)
    ds = task.dataset
    assert ds.names == list(TYPES) or sorted(ds.names) == sorted(TYPES)
    assert len(ds) == 12
    seen = [ds[i]["degradation"] for i in range(8)]
    assert seen == [ds.names[i % 4] for i in range(8)]
    assert Counter(seen) == Counter({name: 2 for name in ds.names})
    item = ds[5]
    assert item["lq"].shape == item["gt"].shape == (3, 32, 32)


def test_ema_follows_the_network_every_n_steps(root, daclip, tmp_path):
    cfg = _config(root, daclip, tmp_path / "run", save_every=1, ema={"decay": 0.0, "update_every": 2})
    result = train_restoration(cfg)
    assert result.step == 3 and all(math.isfinite(r["loss"]) for r in result.history)
    ckpt = tmp_path / "run" / "checkpoints"
    config, unet2 = load_pretrained_files(ckpt / "step-00000002" / "network")
    config = config["config"]
    _, unet1 = load_pretrained_files(ckpt / "step-00000001" / "network")
    _, unet3 = load_pretrained_files(ckpt / "step-00000003" / "network")
    _, ema3 = load_pretrained_files(ckpt / "step-00000003" / "network-ema")
    assert config["nf"] == 32 and config["context_dim"] == 32
    # decay 0 and update_every 2: the average equals the weights of step 2, not those of step 3
    assert all(torch.equal(ema3[k], unet2[k]) for k in unet2)
    assert any(not torch.equal(unet3[k], unet2[k]) for k in unet2)
    assert any(not torch.equal(unet2[k], unet1[k]) for k in unet2)


def test_resumed_run_matches_an_uninterrupted_one(root, daclip, tmp_path):
    straight = train_restoration(_config(root, daclip, tmp_path / "a", max_steps=4, save_every=2))

    def interrupt(step, total, record):
        if step == 2:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        train_restoration(_config(root, daclip, tmp_path / "b", max_steps=4, save_every=2), progress=interrupt)
    resumed = train_restoration(_config(root, daclip, tmp_path / "b", max_steps=4, save_every=2), resume=tmp_path / "b")
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
    cfg = _config(root, daclip, tmp_path / "run", max_steps=2, validation={"every": 2, "count": 3, "steps": 2})
    result = train_restoration(cfg)
    val = [r for r in result.history if "val_psnr" in r]
    assert len(val) == 1 and val[0]["step"] == 2 and math.isfinite(val[0]["val_psnr"])
    assert 0 < val[0]["val_psnr"] < 100
    lines = (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()
    assert len(lines) == 3 and "val_psnr" in lines[-1]


def test_plain_irsde_without_an_embedder(root, daclip, tmp_path):
    cfg = _config(root, daclip, tmp_path / "run", max_steps=1, embedder={"name": "none"},
                  network={"use_degra_context": False, "use_image_context": False, "context_dim": 0},
                  ema={"enabled": False})
    result = train_restoration(cfg)
    assert sorted(p.name for p in result.checkpoint.iterdir()) == ["network", "trainer_state.pt"]


def test_mismatched_context_dim_is_an_error(root, daclip, tmp_path):
    cfg = _config(root, daclip, tmp_path / "run", network={"context_dim": 64})
    with pytest.raises(ConfigError, match="set network.context_dim=32"):
        train_restoration(cfg)


def test_patch_larger_than_the_images_is_an_error(root, daclip, tmp_path):
    cfg = _config(root, daclip, tmp_path / "run", data={"patch_size": 48})
    with pytest.raises(InputError, match="smaller than data.patch_size=48"):
        train_restoration(cfg)


def test_bf16_autocast_step(root, daclip, tmp_path):
    result = train_restoration(_config(root, daclip, tmp_path / "run", max_steps=1, precision="bf16"))
    assert result.step == 1 and math.isfinite(result.history[-1]["loss"])
    _, state = load_pretrained_files(result.checkpoint / "network")
    assert all(v.dtype == torch.float32 for v in state.values())
