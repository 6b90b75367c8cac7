"""Training on one modest GPU (issue 21): bf16 training, activation checkpointing with the same
gradients, the memory estimate printed at the start of a run, a run that does not fit its
--max-memory refused before its first step with settings that fit (computed), and the training
step's activation estimate against a measured CPU peak."""

from __future__ import annotations

import copy
import json
import math
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from _train_testutil import TINY_UNET, daclip_run, irsde_config, irsde_run

from daclip_kit.cli.main import main
from daclip_kit.config import apply_overrides, from_dict
from daclip_kit.errors import ConfigError
from daclip_kit.train import DaClipTrainConfig, train_daclip, train_restoration
from daclip_kit.train.memory import FIT_FRACTION, enable_activation_checkpointing, estimate_training_memory

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "memory_check.py"


@pytest.mark.parametrize("checkpointing", [False, True])
def test_bf16_training_of_both_tiny_configs_is_finite_and_prints_the_estimate(root, daclip, tmp_path, checkpointing,
                                                                              caplog):
    caplog.set_level("INFO", logger="daclip_kit.train.memory")
    cfg = irsde_config(root, daclip, tmp_path / "irsde", precision="bf16", activation_checkpointing=checkpointing)
    result = train_restoration(cfg)
    assert result.step == 3 and all(math.isfinite(r["loss"]) for r in result.history if "loss" in r)
    cfg = from_dict(DaClipTrainConfig, daclip_run(root, tmp_path / "daclip", precision="bf16",
                                                  activation_checkpointing=checkpointing))
    result = train_daclip(cfg)
    assert result.step == 3 and all(math.isfinite(r["loss"]) for r in result.history if "loss" in r)
    lines = [r.getMessage() for r in caplog.records if r.name == "daclip_kit.train.memory"]
    assert len(lines) == 2
    for line in lines:
        assert re.match(r"memory estimate ~[\d.]+ (MiB|GiB) per process = weights .* \+ gradients .* \+ optimizer "
                        r"state .* \+ activations [\d.]+ (MiB|GiB) \(micro-batch \d+", line), line
        assert "bf16" in line and ("activation checkpointing" in line) == checkpointing


def _grads(module, run):
    module.zero_grad(set_to_none=True)
    run().backward()
    return {n: p.grad.clone() for n, p in module.named_parameters() if p.grad is not None}


def test_checkpointing_gives_the_same_gradients_for_the_unet_and_daclip():
    import daclip_kit
    from daclip_kit.embedders.daclip.model import DaCLIP
    from daclip_kit.embedders.plugin import TINY_CLIP_CONFIG

    torch.manual_seed(0)
    net = daclip_kit.create_backbone("irsde-unet", **{**TINY_UNET, "ch_mult": (1, 2, 2, 2)}).train()
    x, lq, emb = torch.rand(2, 3, 32, 32), torch.rand(2, 3, 32, 32), torch.randn(2, 32)

    def unet_loss():
        return net(x, lq, torch.tensor([3, 7]), degradation=emb, content=emb).abs().mean()

    model = DaCLIP.from_config(copy.deepcopy(TINY_CLIP_CONFIG)).lock_clip().train()
    pixels = torch.randn(3, 3, model.image_size, model.image_size)
    tokens = torch.randint(1, 400, (3, 2 * model.context_length))

    def daclip_loss():
        out = model(pixels, tokens)
        return (out["image_features"] @ out["text_features"].T).sum() + out["image_degra_features"].square().sum()

    units = {"unet": net.checkpoint_units(), "daclip": [*model.visual_control.transformer.resblocks,
                                                        *model.clip.visual.transformer.resblocks]}
    for name, module, loss in (("unet", net, unet_loss), ("daclip", model, daclip_loss)):
        plain = _grads(module, loss)
        assert enable_activation_checkpointing(units[name]) == len(units[name])
        checked = _grads(module, loss)
        assert plain.keys() == checked.keys() and len(plain) > 10
        for key in plain:
            torch.testing.assert_close(checked[key], plain[key], atol=1e-5, rtol=1e-5, msg=f"{name} {key}")


def test_checkpointing_lowers_the_activation_estimate_and_bf16_halves_it(root, daclip, tmp_path):
    from daclip_kit.train.restoration import RestorationTask

    cfg = irsde_config(root, daclip, tmp_path / "est", network={**TINY_UNET, "ch_mult": [1, 2, 2, 2]},
                       data={"patch_size": 64}).validate()
    task = RestorationTask(cfg, torch.device("cpu"), None)
    base = estimate_training_memory(task, cfg, torch.device("cpu"))
    ckpt = estimate_training_memory(task, apply_overrides(cfg, ["activation_checkpointing=true"]), torch.device("cpu"))
    bf16 = estimate_training_memory(task, apply_overrides(cfg, ["precision=bf16"]), torch.device("cpu"))
    assert ckpt.activations < 0.7 * base.activations
    assert bf16.activations < 0.75 * base.activations
    n = sum(p.numel() for p in task.net.parameters())
    assert base.gradients == 4 * n and base.optimizer == 8 * n and base.weights >= 8 * n  # network + EMA
    assert task.net.forward.__func__ is type(task.net).forward  # the trace left the modules as they were


def test_a_run_that_does_not_fit_max_memory_is_refused_before_it_starts_naming_settings_that_fit(
        root, daclip, tmp_path, capsys):
    from daclip_kit.train.restoration import RestorationTask

    top = {"network": {**TINY_UNET, "ch_mult": [1, 2, 2, 2]}, "data": {"batch_size": 4, "patch_size": 64}}
    cfg = irsde_config(root, daclip, tmp_path / "probe", **top).validate()
    task = RestorationTask(cfg, torch.device("cpu"), None)
    est = estimate_training_memory(task, cfg, torch.device("cpu"))
    fixed = est.weights + est.gradients + est.optimizer
    budget = int((fixed + 0.6 * est.activations) / FIT_FRACTION)  # fits the fixed part, not the activations

    out = tmp_path / "refused"
    with pytest.raises(ConfigError) as caught:
        train_restoration(irsde_config(root, daclip, out, **top, max_memory=str(budget)))
    message = str(caught.value)
    assert "Settings that fit:" in message and "\n" not in message
    assert not out.exists()  # refused before anything was written or any step ran
    suggested = re.findall(r"((?:--set \S+ ?)+) \(~", message)
    assert len(suggested) >= 2
    for option in suggested:  # each suggestion really fits: computed, not guessed
        overrides = re.findall(r"--set (\S+)", option)
        changed = apply_overrides(cfg, overrides)
        assert estimate_training_memory(task, changed, torch.device("cpu")).total <= budget * FIT_FRACTION, option
    assert any("data.accumulate_steps=" in o for o in suggested)

    # the CLI: --max-memory, one error line, exit 1, no run folder
    path = tmp_path / "run.toml"
    from daclip_kit.train.config import config_to_toml

    path.write_text(config_to_toml(irsde_config(root, daclip, out, **top)))
    assert main(["train", "restoration", "--config", str(path), "--max-memory", str(budget)]) == 1
    err = capsys.readouterr().err
    assert "Settings that fit:" in err and "--set" in err and not out.exists()
    assert main(["train", "restoration", "--config", str(path), "--max-memory", "1K"]) == 1
    assert "No smaller batch, patch, precision or checkpointing fits" in capsys.readouterr().err


def test_the_cli_prints_the_estimate_at_the_start(root, daclip, tmp_path, capsys):
    path = tmp_path / "run.toml"
    from daclip_kit.train.config import config_to_toml

    path.write_text(config_to_toml(from_dict(type(irsde_config(root, daclip, tmp_path)),
                                             irsde_run(root, tmp_path / "run", daclip, max_steps=1, save_every=1))))
    assert main(["train", "restoration", "--config", str(path), "--max-memory", "8G"]) == 0
    captured = capsys.readouterr()
    assert "memory estimate ~" in captured.err + captured.out


def test_training_step_estimate_matches_the_measured_cpu_peak(tmp_path):
    out = tmp_path / "train.json"
    done = subprocess.run([sys.executable, str(SCRIPT), "--device", "cpu", "--train", "--sizes", "64", "--json",
                           str(out)], capture_output=True, text=True, timeout=600,
                          env={**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1"})
    assert done.returncode == 0, done.stderr[-2000:]
    (row,) = json.loads(out.read_text())
    assert row["train"] and row["measured_gib"] > 0.05, row
    assert 0.6 <= row["ratio"] <= 1.6, row


def test_checkpointing_a_network_without_blocks_to_recompute_is_refused(root, daclip, tmp_path):
    from daclip_kit.train.config import RestorationTrainConfig

    data = irsde_run(root, tmp_path / "nafnet", daclip, activation_checkpointing=True, embedder={"name": "none"})
    data["network"] = {"name": "nafnet", "width": 8, "enc_blk_nums": [1, 1], "dec_blk_nums": [1, 1],
                       "middle_blk_num": 1}
    with pytest.raises(ConfigError, match="activation_checkpointing=true is not available for nafnet"):
        train_restoration(from_dict(RestorationTrainConfig, data))
    assert not (tmp_path / "nafnet").exists()
