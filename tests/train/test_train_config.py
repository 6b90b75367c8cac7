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
    options = r.network.options
    assert (options["nf"], options["ch_mult"], options["context_dim"]) == (64, [1, 2, 4, 8], 512)
    assert r.data.degradations is None and r.data.new_share is None  # every folder of data.root, balanced
    assert (r.log_every, r.save_every, r.validation.every, r.validation.count) == (200, 10_000, 10_000, 100)


@pytest.mark.parametrize("kind", ["daclip", "irsde"])
def test_official_run_files_spell_out_the_defaults(kind):
    assert load_run_config(kind, EXAMPLES / f"{kind}_official.toml") == load_run_config(kind)


def test_tiny_run_files_load_and_chain():
    d = load_run_config("daclip", EXAMPLES / "daclip_tiny.toml")
    assert d.model.pretrained is None and d.model.model_config["vision_cfg"]["layers"] == 2
    assert d.precision == "fp32" and d.max_steps == 500 and d.validation.enabled
    r = load_run_config("irsde", EXAMPLES / "irsde_tiny.toml")
    assert r.data.degradations == ("noisy",) and r.network.options["ch_mult"] == [1, 2, 2]
    # stage 2 reads the folder stage 1 saves last
    assert d.max_steps % d.save_every == 0
    assert r.embedder.options["weights"] == f"{d.out_dir}/checkpoints/step-{d.max_steps:08d}/daclip"
    assert r.network.options["context_dim"] == d.model.model_config["embed_dim"]
    assert r.sampler.options["T"] == 100 and (r.ema.update_every, r.ema.update_after_step) == (1, 100)


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


def test_ema_copies_during_warm_up_then_trails_with_the_ramped_decay():
    """ema-pytorch semantics (beta 0.995, update_every 10, update_after_step 100, inv_gamma 1,
    power 2/3): after optimizer step n, with s = n - 1, s = 0 and every s that is a multiple of 10
    up to 100 copy the weights; later multiples of 10 average with the ramped decay."""
    from daclip_kit.train.ema import EMA

    net = torch.nn.Linear(2, 1)
    ema = EMA(net, decay=0.995, update_every=10)
    seen = {}
    for n in range(1, 122):
        with torch.no_grad():
            net.weight.fill_(float(n))  # the "trained" weights after step n
        ema.update(net)
        seen[n] = float(ema.model.weight[0, 0])
    assert seen[1] == 1.0 and seen[10] == 1.0  # the first step copies; nothing until s = 10
    assert seen[11] == 11.0 and seen[101] == 101.0  # warm-up: equal to the weights of that step
    assert seen[105] == 101.0
    d = 1 - (1 + (111 - 100 - 1)) ** (-2 / 3)  # first averaging update, n = 111
    assert seen[111] == pytest.approx(d * 101 + (1 - d) * 111, rel=1e-6)
    assert 101 < seen[111] < 111 and seen[121] < 121  # trails the weights
    d2 = 1 - (1 + (121 - 101)) ** (-2 / 3)
    assert seen[121] == pytest.approx(d2 * seen[111] + (1 - d2) * 121, rel=1e-6)
    assert ema.step == 121 and not ema.model.weight.requires_grad
    assert ema.state() == {"step": 121, "initted": True}


def test_ema_decay_is_capped_at_beta_and_state_round_trips():
    from daclip_kit.train.ema import EMA

    net = torch.nn.Linear(2, 1)
    ema = EMA(net, decay=0.9, update_every=1, update_after_step=0)
    with torch.no_grad():
        net.weight.zero_()
    for _ in range(2000):
        ema.update()
    with torch.no_grad():
        net.weight.fill_(1.0)
    ema.update()
    assert float(ema.model.weight[0, 0]) == pytest.approx(0.1, rel=1e-5)  # decay capped at 0.9
    again = EMA(net, decay=0.9, update_every=1, update_after_step=0)
    again.model.load_state_dict(ema.model.state_dict())
    again.load_state(ema.state())
    ema.update()
    again.update()
    assert torch.equal(again.model.weight, ema.model.weight)


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


@pytest.mark.parametrize("setting, key, allowed", [
    ("data.batch_size=-3", "data.batch_size=-3", "an integer >= 1"),
    ("data.batch_size=0", "data.batch_size=0", "an integer >= 1"),
    ("data.patch_size=0", "data.patch_size=0", "an integer >= 1"),
    ("data.num_workers=-1", "data.num_workers=-1", "an integer >= 0"),
    ("data.accumulate_steps=0", "data.accumulate_steps=0", "an integer >= 1"),
    ("data.accumulate_steps=3", "data.batch_size=16 must be divisible by data.accumulate_steps=3", ""),
    ("optim.lr=nan", "optim.lr=nan", "a finite number > 0"),
    ("optim.lr=inf", "optim.lr=inf", "a finite number > 0"),
    ("optim.lr=-1e-4", "optim.lr=-0.0001", "a finite number > 0"),
    ("optim.min_lr=1", "optim.min_lr=1.0", "in [0, optim.lr=0.0002]"),
    ("optim.betas=[0.9,1.0]", "optim.betas[1]=1.0", "a number in [0, 1)"),
    ("optim.betas=[0.9]", "optim.betas", "expected 2 items"),
    ("optim.eps=0", "optim.eps=0.0", "a finite number > 0"),
    ("optim.weight_decay=nan", "optim.weight_decay=nan", "a finite number >= 0"),
    ("optim.warmup_steps=-1", "optim.warmup_steps=-1", "an integer >= 0"),
    ("optim.grad_clip=0", "optim.grad_clip=0.0", "a finite number > 0 or none"),
    ("max_steps=0", "max_steps=0", "an integer >= 1"),
    ("log_every=0", "log_every=0", "an integer >= 1"),
    ("save_every=-1", "save_every=-1", "an integer >= 0"),
    ("keep=-2", "keep=-2", "an integer >= 0"),
    ("seed=-1", "seed=-1", "an integer in [0, 4294967295]"),
    ("ema.decay=1.0", "ema.decay=1.0", "a number in [0, 1)"),
    ("ema.update_every=0", "ema.update_every=0", "an integer >= 1"),
    ("ema.update_after_step=-1", "ema.update_after_step=-1", "an integer >= 0"),
    ("ema.power=0", "ema.power=0.0", "a finite number > 0"),
    ("ema.inv_gamma=nan", "ema.inv_gamma=nan", "a finite number > 0"),
    ("validation.count=0", "validation.count=0", "an integer >= 1"),
    ("validation.steps=0", "validation.steps=0", "an integer >= 1 or none"),
    ("validation.every=-5", "validation.every=-5", "an integer >= 0"),
])
def test_bad_values_are_one_line_errors_naming_the_key_and_range(setting, key, allowed, capsys):
    from daclip_kit.cli.main import main

    with pytest.raises(ConfigError) as err:
        load_run_config("restoration", None, [setting])
    message = str(err.value)
    assert key in message and allowed in message and "\n" not in message, message
    assert main(["train", "restoration", "--print-config", "--set", setting]) == 1
    out = capsys.readouterr()
    assert out.out == "" and len(out.err.strip().splitlines()) == 1 and key in out.err


@pytest.mark.parametrize("setting, key", [
    ("data.batch_size=-3", "data.batch_size=-3"), ("data.num_workers=-1", "data.num_workers=-1"),
    ("optim.eps=nan", "optim.eps=nan"), ("validation.batch_size=0", "validation.batch_size=0"),
    ("epochs=0", "epochs=0"),
])
def test_bad_daclip_values_are_refused(setting, key):
    with pytest.raises(ConfigError, match=key.replace(".", r"\.").replace("[", r"\[")):
        load_run_config("daclip", None, [setting])


def test_bad_values_in_a_run_file_are_refused_too(tmp_path):
    path = tmp_path / "run.toml"
    path.write_text("[optim]\nlr = nan\n")
    with pytest.raises(ConfigError, match=r"optim\.lr=nan is out of range"):
        load_run_config("restoration", path)
    path.write_text("[data]\npatch_size = 0\n")
    with pytest.raises(ConfigError, match=r"data\.patch_size=0 is out of range"):
        load_run_config("restoration", path)


def test_resume_changes_names_only_the_settings_that_decide_the_weights():
    from daclip_kit.train.config import RESUME_ALLOWED, resume_changes

    assert {"max_steps", "device", "data.num_workers", "validation.*"} <= set(RESUME_ALLOWED)
    stored = load_run_config("restoration", EXAMPLES / "irsde_tiny.toml")
    allowed = apply_overrides(stored, ["max_steps=99", "log_every=1", "save_every=3", "keep=2", "device=cpu",
                                       "out_dir=elsewhere", "data.num_workers=3", "validation.every=7",
                                       "validation.count=1"])
    assert resume_changes(stored, allowed.validate()) == []
    changed = apply_overrides(stored, ["optim.lr=5e-3", "data.batch_size=16", "network.nf=64", "ema.decay=0.9",
                                       "precision=bf16", "sampler.T=20"]).validate()
    assert [k for k, _, _ in resume_changes(stored, changed)] == [
        "data.batch_size", "ema.decay", "network.nf", "optim.lr", "precision", "sampler.T"]
    assert ("optim.lr", stored.optim.lr, 5e-3) in resume_changes(stored, changed)


def test_bundled_run_files_load_by_name_from_any_folder(tmp_path, monkeypatch):
    from daclip_kit.train.config import RECIPES_DIR, bundled_recipes, resolve_run_file

    monkeypatch.chdir(tmp_path)  # as from an installed wheel: no examples/ folder around
    assert {"daclip_tiny", "daclip_official", "irsde_tiny", "irsde_official"} <= set(bundled_recipes())
    assert resolve_run_file("irsde_tiny") == resolve_run_file("irsde_tiny.toml") == RECIPES_DIR / "irsde_tiny.toml"
    assert load_run_config("daclip", "daclip_tiny") == load_run_config("daclip", EXAMPLES / "daclip_tiny.toml")
    (tmp_path / "irsde_tiny.toml").write_text("max_steps = 3\n")  # a file of that name wins over the bundled one
    assert load_run_config("restoration", "irsde_tiny.toml").max_steps == 3
    with pytest.raises(ConfigError, match=r"bundled run file.*daclip_tiny"):
        load_run_config("daclip", "daclip_tinyy")


def test_one_trainer_table_for_the_cli_and_the_config_classes():
    import argparse
    import dataclasses

    from daclip_kit.cli.train import configure
    from daclip_kit.errors import UnknownComponentError
    from daclip_kit.train.config import TRAINERS, RestorationTrainConfig, config_class
    from daclip_kit.train.distill_config import DistillTrainConfig
    from daclip_kit.train.sections import LoopConfig, NetworkTrainConfig

    parser = argparse.ArgumentParser()
    configure(parser)  # the `daclip-kit train` options
    action = next(a for a in parser._actions if a.dest == "trainer")
    assert set(action.choices) == set(TRAINERS) == {"daclip", "restoration", "irsde", "distill"}
    assert all(f"{kind}: {row.description}" in action.help for kind, row in TRAINERS.items())
    for kind, row in TRAINERS.items():
        assert row.kind == kind and config_class(kind) is row.config
        function = row.train_function()
        assert callable(function) and function.__module__ == row.target.split(":")[0]
    assert TRAINERS["irsde"].train_function() is TRAINERS["restoration"].train_function()
    with pytest.raises(UnknownComponentError, match="Did you mean: distill"):
        config_class("distil")

    # the loop settings are declared once (LoopConfig); each trainer keeps its own defaults
    loop = [f.name for f in dataclasses.fields(LoopConfig)]
    assert issubclass(RestorationTrainConfig, NetworkTrainConfig) and issubclass(DistillTrainConfig, NetworkTrainConfig)
    defaults = {}
    for kind in ("daclip", "restoration", "distill"):
        cls = config_class(kind)
        assert issubclass(cls, LoopConfig) and [f.name for f in dataclasses.fields(cls)][:len(loop)] == loop
        cfg = cls()
        defaults[kind] = (cfg.epochs, cfg.max_steps, cfg.log_every, cfg.save_every, cfg.out_dir, cfg.precision)
    assert defaults == {"daclip": (30, None, 100, 0, "runs/daclip", "fp16"),
                        "restoration": (None, 700_000, 200, 10_000, "runs/irsde", "fp32"),
                        "distill": (None, 20_000, 100, 2_000, "runs/distill", "fp32")}
    assert (DistillTrainConfig().validation.every, DistillTrainConfig().validation.count) == (1000, 20)
