"""Run configs: official defaults, TOML files, overrides, errors, and the small training helpers."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch

from daclip_kit.config import apply_overrides, from_dict, tomllib
from daclip_kit.errors import ConfigError
from daclip_kit.train.config import (
    DaClipTrainConfig,
    IRSDETrainConfig,
    OptimConfig,
    config_to_toml,
    load_run_config,
)

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "train"


def test_defaults_are_the_official_recipes():
    d = DaClipTrainConfig()
    assert (d.optim.lr, tuple(d.optim.betas), d.optim.eps) == (2e-5, (0.9, 0.98), 1e-6)
    assert (d.optim.weight_decay, d.optim.warmup_steps, d.optim.min_lr) == (0.05, 100, 0.0)
    assert (d.epochs, d.data.batch_size, d.precision) == (30, 784, "fp16")
    assert (d.model.name, d.model.pretrained) == ("daclip_ViT-B-32", "laion2b_s34b_b79k")

    r = IRSDETrainConfig()
    assert (r.optim.lr, tuple(r.optim.betas), r.optim.weight_decay, r.optim.min_lr) == (2e-4, (0.9, 0.99), 0.0, 1e-6)
    assert r.optim.warmup_steps == 0
    assert (r.max_steps, r.data.batch_size, r.data.patch_size, r.objective, r.loss) == (700_000, 16, 256, "ml", "l1")
    assert (r.ema.decay, r.ema.update_every) == (0.995, 10)
    r = r.validate()  # the components' settings are typed from their registry configs
    sde = r.sampler.options
    assert r.sampler.name == "irsde"
    assert (sde["max_sigma"], sde["T"], sde["schedule"], sde["eps"]) == (50.0, 100, "cosine", 0.005)
    assert r.network.name == "irsde-unet"
    assert (r.network.options["nf"], r.network.options["ch_mult"], r.network.options["context_dim"]) == (64, [1, 2, 4, 8], 512)
    assert len(r.data.degradations) == 10 and r.data.degradations[0] == "motion-blurry"
    assert (r.log_every, r.save_every, r.validation.every, r.validation.count) == (200, 10_000, 10_000, 100)


@pytest.mark.parametrize("kind", ["daclip", "irsde"])
def test_official_run_files_spell_out_the_defaults(kind):
    assert load_run_config(kind, EXAMPLES / f"{kind}_official.toml") == load_run_config(kind)


def test_tiny_run_files_load():
    d = load_run_config("daclip", EXAMPLES / "daclip_tiny.toml")
    assert d.model.pretrained is None and d.model.model_config["vision_cfg"]["layers"] == 2
    assert d.precision == "fp32" and d.max_steps == 20
    r = load_run_config("irsde", EXAMPLES / "irsde_tiny.toml")
    assert r.data.degradations is None and r.network.options["ch_mult"] == [1, 1, 1, 1]
    assert r.embedder.options["weights"] == "runs/daclip-tiny/checkpoints/step-00000020/daclip"


def test_partial_optim_table_keeps_the_irsde_defaults(tmp_path):
    path = tmp_path / "run.toml"
    path.write_text("[optim]\nlr = 1e-3\n")
    cfg = load_run_config("irsde", path)
    assert cfg.optim.lr == 1e-3
    assert tuple(cfg.optim.betas) == (0.9, 0.99) and cfg.optim.min_lr == 1e-6 and cfg.optim.weight_decay == 0.0


def test_overrides_are_coerced_by_field_type():
    cfg = load_run_config("irsde", None, [
        "optim.lr=1e-4", "data.degradations=noisy,hazy", "network.ch_mult=[1,1,2]", "ema.enabled=false",
        "validation.steps=none", "max_steps=1_000", "embedder.weights=none",
    ])
    assert cfg.optim.lr == 1e-4 and isinstance(cfg.optim.lr, float)
    assert cfg.data.degradations == ("noisy", "hazy")
    assert cfg.network.options["ch_mult"] == [1, 1, 2]
    assert cfg.ema.enabled is False and cfg.validation.steps is None and cfg.max_steps == 1000
    assert cfg.embedder.options["weights"] is None


def test_an_override_is_never_evaluated():
    cfg = load_run_config("daclip", None, ["out_dir=__import__('os').getcwd()"])
    assert cfg.out_dir == "__import__('os').getcwd()"
    with pytest.raises(ConfigError, match="expected an integer"):
        load_run_config("daclip", None, ["max_steps=2+2"])


def test_unknown_keys_are_errors_with_suggestions(tmp_path):
    with pytest.raises(ConfigError, match=r"optim\.lrr.*Did you mean: lr"):
        load_run_config("daclip", None, ["optim.lrr=1"])
    path = tmp_path / "run.toml"
    path.write_text("[data]\nbatchsize = 4\n")
    with pytest.raises(ConfigError, match=r"data\.batchsize.*Did you mean: batch_size"):
        load_run_config("irsde", path)
    path.write_text("learning_rate = 1\n")
    with pytest.raises(ConfigError, match="Unknown config key 'learning_rate'"):
        load_run_config("daclip", path)
    with pytest.raises(ConfigError, match="is not one of"):
        load_run_config("daclip", None, ["precision=fp8"])


def test_component_sections_are_checked_against_the_registry():
    """Any registered backbone trains: its settings are validated by its own config before a run."""
    nafnet = load_run_config("restoration", None, ["network.name=nafnet", "network.width=8",
                                                   "embedder.name=none"])
    assert nafnet.network.name == "nafnet" and nafnet.network.options["width"] == 8
    with pytest.raises(ConfigError, match=r"\[network\].*Did you mean: width"):
        load_run_config("restoration", None, ["network.name=nafnet", "network.widht=8"])
    with pytest.raises(ConfigError, match=r"\[network\] name = 'nafnett'.*Did you mean: nafnet"):
        load_run_config("restoration", None, ["network.name=nafnett"])
    with pytest.raises(ConfigError, match=r"\[sampler\].*expected an integer"):
        load_run_config("restoration", None, ["sampler.T=many"])


def test_inconsistent_settings_are_refused():
    with pytest.raises(ConfigError, match="irsde-unet-plain"):
        load_run_config("irsde", None, ["embedder.name=none"])
    plain = load_run_config("irsde", None, ["embedder.name=none", "network.use_degra_context=false",
                                            "network.use_image_context=false"])
    assert plain.embedder.name == "none"
    with pytest.raises(ConfigError, match="max_steps or epochs"):
        from_dict(IRSDETrainConfig, {"max_steps": None}).validate()
    by_epochs = load_run_config("irsde", None, ["max_steps=none", "epochs=3"])
    assert (by_epochs.max_steps, by_epochs.epochs) == (None, 3)
    with pytest.raises(ConfigError, match="min_lr"):
        from_dict(OptimConfig, {"lr": 1e-4, "min_lr": 1e-3})


@pytest.mark.parametrize("kind", ["daclip", "irsde"])
def test_toml_text_round_trips(kind, tmp_path):
    cfg = load_run_config(kind, EXAMPLES / f"{kind}_tiny.toml", ["seed=7"])
    cfg = apply_overrides(cfg, ["optim.grad_clip=1.5", "out_dir=a dir/with \"quotes\""])
    text = config_to_toml(cfg)
    tomllib.loads(text)  # valid TOML
    path = tmp_path / "config.toml"
    path.write_text(text)
    assert load_run_config(kind, path) == cfg


def test_learning_rate_rule():
    from daclip_kit.train.optim import lr_at

    warm = OptimConfig(lr=1e-3, warmup_steps=4, min_lr=0.0)
    assert [lr_at(k, 104, warm) for k in range(4)] == pytest.approx([2.5e-4, 5e-4, 7.5e-4, 1e-3])
    assert lr_at(4, 104, warm) == pytest.approx(1e-3)
    assert lr_at(54, 104, warm) == pytest.approx(5e-4)  # half way through the cosine
    cosine = OptimConfig(lr=2e-4, warmup_steps=0, min_lr=1e-6)
    assert lr_at(0, 100, cosine) == pytest.approx(2e-4)
    assert lr_at(50, 100, cosine) == pytest.approx((2e-4 + 1e-6) / 2)
    assert lr_at(25, 100, cosine) == pytest.approx(1e-6 + (2e-4 - 1e-6) * (1 + math.cos(math.pi / 4)) / 2)
    assert lr_at(100, 100, cosine) == pytest.approx(1e-6)


def test_no_weight_decay_on_gains_biases_and_logit_scale():
    from daclip_kit.train.optim import param_groups

    model = torch.nn.Module()
    model.proj = torch.nn.Linear(4, 4)
    model.ln_post = torch.nn.LayerNorm(4)
    model.logit_scale = torch.nn.Parameter(torch.ones(()))
    model.frozen = torch.nn.Linear(4, 4).requires_grad_(False)
    groups = param_groups(model.named_parameters(), 0.05)
    decayed = {id(p) for g in groups if g["weight_decay"] > 0 for p in g["params"]}
    plain = {id(p) for g in groups if g["weight_decay"] == 0 for p in g["params"]}
    assert decayed == {id(model.proj.weight)}
    assert plain == {id(model.proj.bias), id(model.ln_post.weight), id(model.ln_post.bias), id(model.logit_scale)}


def test_ema_updates_every_n_steps_with_the_decay():
    from daclip_kit.train.ema import EMA

    net = torch.nn.Linear(2, 1)
    with torch.no_grad():
        net.weight.zero_()
    ema = EMA(net, decay=0.9, update_every=3)
    with torch.no_grad():
        net.weight.fill_(1.0)
    assert [ema.update(net) for _ in range(3)] == [False, False, True]
    assert torch.allclose(ema.model.weight, torch.full((1, 2), 0.1))
    for _ in range(3):
        ema.update(net)
    assert torch.allclose(ema.model.weight, torch.full((1, 2), 0.19))
    assert ema.updates == 2 and not ema.model.weight.requires_grad


def test_random_resized_crop_covers_the_official_scale():
    from daclip_kit.embedders.preprocess import OPENAI_MEAN, OPENAI_STD
    from daclip_kit.train.transforms import random_resized_crop, resized_crop_box

    g = torch.Generator().manual_seed(0)
    for _ in range(50):
        top, left, h, w = resized_crop_box(60, 80, g)
        assert 0.9 * 4800 - 80 <= h * w <= 4800 and 0 <= top <= 60 - h and 0 <= left <= 80 - w
        assert 3 / 4 - 0.05 <= w / h <= 4 / 3 + 0.05
    grey = torch.full((3, 40, 50), 0.5)
    out = random_resized_crop(grey, 32, g)
    expected = (0.5 - torch.tensor(OPENAI_MEAN)) / torch.tensor(OPENAI_STD)
    assert out.shape == (3, 32, 32)
    torch.testing.assert_close(out, expected.view(3, 1, 1).expand(3, 32, 32), atol=1e-5, rtol=0)


def test_flip_transpose_keeps_lq_and_gt_aligned():
    from daclip_kit.train.transforms import crop_patch, flip_transpose

    g = torch.Generator().manual_seed(3)
    lq = torch.arange(3 * 20 * 24, dtype=torch.float32).view(3, 20, 24)
    gt = lq * 2
    seen = set()
    for _ in range(20):
        a, b = flip_transpose(*crop_patch(lq, gt, 16, g), g)
        assert a.shape == (3, 16, 16)
        torch.testing.assert_close(b, a * 2)
        seen.add(tuple(a[0, 0, :2].tolist()))
    assert len(seen) > 4
