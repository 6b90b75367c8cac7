"""``train distill``: a K-evaluation student of a tiny IR-SDE teacher (tiny DA-CLIP, mini data set)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
import torch
from _train_testutil import TINY_UNET, TYPES, _merge

from daclip_kit.checkpoint import load_pretrained_files
from daclip_kit.config import from_dict
from daclip_kit.errors import ConfigError
from daclip_kit.factory import create_backbone
from daclip_kit.pretrained import native_info, save_network
from daclip_kit.train.config import load_run_config
from daclip_kit.train.distill import train_distill
from daclip_kit.train.distill_config import DistillTrainConfig

pytestmark = pytest.mark.usefixtures("one_thread")

SDE = {"name": "irsde", "max_sigma": 50.0, "T": 100, "schedule": "cosine", "eps": 0.005}


@pytest.fixture(scope="module")
def teacher(tmp_path_factory):
    """A tiny random IR-SDE U-Net saved as a native folder with its SDE (as `train restoration` does)."""
    torch.manual_seed(0)
    net = create_backbone("irsde-unet", **TINY_UNET)
    folder = tmp_path_factory.mktemp("teacher") / "network-ema"
    sde = {k: v for k, v in SDE.items() if k != "name"}
    return save_network(net, folder, name="irsde-unet", config=dict(TINY_UNET),
                        sampler={"name": "irsde", "config": sde})


def distill_config(root, daclip, teacher, out, **top) -> DistillTrainConfig:
    cfg = {
        "max_steps": 3, "log_every": 1, "save_every": 3, "out_dir": str(out), "device": "cpu", "precision": "fp32",
        "init_from": str(teacher), "student_steps": 2, "teacher_steps": 3,
        "data": {"root": str(root), "degradations": list(TYPES), "batch_size": 2, "patch_size": 32, "num_workers": 0},
        "network": dict(TINY_UNET), "sampler": dict(SDE), "embedder": {"weights": str(daclip)},
        "validation": {"every": 0}, "optim": {"lr": 1e-3},
        "ema": {"update_every": 1, "update_after_step": 0},
    }
    if "network" in top:  # another network replaces the tiny U-Net's settings
        cfg["network"] = top.pop("network")
    return from_dict(DistillTrainConfig, _merge(cfg, top)).validate()


class CountCalls:
    """Counts the forward calls of a module on real tensors (a forward hook; the pipeline's memory
    estimate runs the network on the ``meta`` device, which is no evaluation)."""

    def __init__(self, module):
        self.n = 0
        self.handle = module.register_forward_hook(self)

    def __call__(self, module, args, output):
        if args[0].device.type != "meta":
            self.n += 1


@pytest.mark.parametrize("k", [1, 2, 4])
def test_student_restores_with_k_evaluations(root, daclip, teacher, tmp_path, k):
    import daclip_kit
    from daclip_kit.io import read_image
    from daclip_kit.pipelines.build import build_pipeline

    result = train_distill(distill_config(root, daclip, teacher, tmp_path / "run", student_steps=k, max_steps=2))
    student = result.checkpoint / "network-ema"
    info = native_info(student)
    assert info.sampler["name"] == "mrs" and info.sampler["config"]["num_sample_steps"] == k
    assert info.sampler["config"]["training_schedule"] is True
    assert info.sampler["config"]["lambda_min"] == 0.0  # a noise teacher: the grid starts where alpha = sigma
    built = build_pipeline("irsde-unet", weights=student, embedder_weights=daclip, device="cpu", download=False)
    calls = CountCalls(built.pipeline.denoiser)
    lq = read_image(next((root / "val" / "noisy" / "LQ").iterdir()))
    with torch.no_grad():
        out = built.pipeline(lq, generator=torch.Generator().manual_seed(0)).image
    assert calls.n == k
    assert out.shape == lq.shape and bool(torch.isfinite(out).all())
    # the trained weights moved away from the teacher's
    _, a = load_pretrained_files(teacher)
    _, b = load_pretrained_files(result.checkpoint / "network")
    assert any(not torch.equal(a[key], b[key]) for key in a)
    assert daclip_kit.create_sampler("mrs", **info.sampler["config"]).default_steps == k
    # the demo shows and runs the student's own K steps
    from daclip_kit.demo.core import DemoSettings, recipe_for, run_restore, step_range

    assert recipe_for("irsde-unet", weights=student).sampler == "mrs"
    assert step_range("irsde-unet", weights=student)[0] == k
    settings = DemoSettings(weights=student, embedder_weights=daclip, download=False, device="cpu", model="irsde-unet")
    done = []
    result = run_restore(lq, model="irsde-unet", sampler="mrs", settings=settings,
                         progress=lambda i, total: done.append(total))
    assert done == [k] * k and result.restored.size == (lq.shape[-1], lq.shape[-2])


def test_one_training_step_runs_the_teacher_and_k_student_evaluations(root, daclip, teacher, tmp_path, monkeypatch):
    from daclip_kit.train import distill

    counts = {}
    real = distill.DistillTask.__init__

    def init(self, *a, **kw):
        real(self, *a, **kw)
        counts["teacher"] = CountCalls(self.teacher)
        counts["student"] = CountCalls(self.net)

    monkeypatch.setattr(distill.DistillTask, "__init__", init)
    train_distill(distill_config(root, daclip, teacher, tmp_path / "run", student_steps=4, teacher_steps=5,
                                 max_steps=1, data={"accumulate_steps": 2}))
    assert counts["teacher"].n == 5 * 2  # per micro-batch: the teacher's 5 evaluations
    assert counts["student"].n == 4 * 2  # and the student's 4


def test_restore_cli_runs_the_students_k_evaluations_without_a_flag(root, daclip, teacher, tmp_path):
    result = train_distill(distill_config(root, daclip, teacher, tmp_path / "run", student_steps=4, max_steps=1))
    lq = root / "val" / "noisy" / "LQ"
    cmd = [sys.executable, "-m", "daclip_kit", "restore", str(lq), "-o", str(tmp_path / "out"), "--weights",
           str(result.checkpoint / "network-ema"), "--daclip-weights", str(daclip), "--device", "cpu", "--json"]
    done = subprocess.run(cmd, capture_output=True, text=True, env={**os.environ, "OMP_NUM_THREADS": "1"}, check=False)
    assert done.returncode == 0, done.stderr
    summary = json.loads(done.stdout)
    assert summary["steps"] == 4 and summary["sampler"] == "mrs"
    assert len(list((tmp_path / "out").iterdir())) == len(list(lq.iterdir()))


def test_a_teacher_pool_runs_the_teacher_once(root, daclip, teacher, tmp_path, monkeypatch):
    from daclip_kit.train import distill

    counts = {}
    real = distill.DistillTask.teacher_pool

    def pool(self, size):
        counts["teacher"] = CountCalls(self.teacher)
        return real(self, size)

    monkeypatch.setattr(distill.DistillTask, "teacher_pool", pool)
    train_distill(distill_config(root, daclip, teacher, tmp_path / "run", teacher_pool=6, teacher_steps=3, max_steps=5))
    assert counts["teacher"].n == 3 * 3  # 6 items in batches of 2, 3 evaluations each; none in the 5 steps


@pytest.mark.parametrize("pool", [0, 4])
def test_resumed_run_matches_an_uninterrupted_one(root, daclip, teacher, tmp_path, pool):
    straight = train_distill(distill_config(root, daclip, teacher, tmp_path / "a", max_steps=4, save_every=2,
                                            teacher_pool=pool))

    def interrupt(step, total, record):
        if step == 2:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        train_distill(distill_config(root, daclip, teacher, tmp_path / "b", max_steps=4, save_every=2,
                                     teacher_pool=pool), progress=interrupt)
    resumed = train_distill(distill_config(root, daclip, teacher, tmp_path / "b", max_steps=4, save_every=2,
                                           teacher_pool=pool), resume=tmp_path / "b")
    assert resumed.step == 4
    for model in ("network", "network-ema"):
        _, a = load_pretrained_files(straight.checkpoint / model)
        _, b = load_pretrained_files(resumed.checkpoint / model)
        for key in a:
            torch.testing.assert_close(b[key], a[key], rtol=0, atol=1e-6)
    assert [r["loss"] for r in resumed.history] == pytest.approx([r["loss"] for r in straight.history[2:]], abs=1e-6)


@pytest.mark.parametrize("change,message", [
    ({"init_from": None}, "init_from"),
    ({"student_steps": 3}, "student_steps"),
    ({"teacher_sampler": {"name": "mrs", "solver_type": "sde"}}, "not deterministic"),
    ({"teacher_sampler": {"name": "irsde"}}, "not deterministic"),
    ({"network": {"name": "nafnet"}}, "one shot"),
    ({"gt_weight": 1.5}, "gt_weight"),
])
def test_bad_settings_are_one_line_errors(root, daclip, teacher, tmp_path, change, message):
    with pytest.raises(ConfigError, match=message):
        distill_config(root, daclip, teacher, tmp_path / "run", **change)


def test_bundled_run_file_reads():
    cfg = load_run_config("distill", "distill_tiny")
    assert cfg.student_steps == 1 and cfg.teacher_steps == 20 and cfg.teacher_sampler.name == "mrs"
    assert cfg.teacher_pool == 320 and cfg.student_lambda_min is None and cfg.gt_weight == 0.5
    assert cfg.teacher_sampler.options["solver_type"] == "ode"


def test_a_clean_predicting_teacher_gives_a_clean_predicting_student(root, daclip, tmp_path):
    """The student's step converts its clean prediction through the student's SDE, and the student
    network must say it predicts the clean image, as its teacher does."""
    import daclip_kit

    torch.manual_seed(0)
    clean = {**TINY_UNET, "prediction": "clean"}
    sde = {k: v for k, v in SDE.items() if k != "name"}
    folder = save_network(create_backbone("irsde-unet", **clean), tmp_path / "teacher", name="irsde-unet",
                          config=clean, sampler={"name": "irsde", "config": sde})
    with pytest.raises(ConfigError, match=r'predicts the clean .* set network\.prediction = "clean"'):
        train_distill(distill_config(root, daclip, folder, tmp_path / "refused", max_steps=1))
    result = train_distill(distill_config(root, daclip, folder, tmp_path / "run", network=clean, student_steps=1))
    assert all(torch.isfinite(torch.tensor(r["loss"])) for r in result.history if "loss" in r)
    student = daclip_kit.load_network(None, result.checkpoint / "network-ema")
    assert student.prediction == "clean"
    # its grid starts at T (lambda_min -5), where x_T lives; a noise teacher's starts at 60 (lambda 0)
    record = native_info(result.checkpoint / "network-ema").sampler
    assert record["config"]["lambda_min"] == -5.0
    sampler = daclip_kit.create_sampler(record["name"], **record["config"])
    assert sampler.timesteps()[0] == 100
    # a 1-evaluation student's output is its clean prediction at the grid's one time
    lq = torch.rand(1, 3, 32, 32)
    x_T = sampler.noise_state(lq, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        out = daclip_kit.sample(student, sampler, lq, x_T=x_T)
        direct = student(x_T, lq, sampler.timesteps()[0])
    assert torch.allclose(out, direct, atol=1e-4)


def test_distill_config_imports_on_its_own():
    """``daclip_kit.train.distill_config`` imported first (before ``train.config``) is no import cycle."""
    code = ("from daclip_kit.train.distill_config import DistillTrainConfig, student_sampler\n"
            "from daclip_kit.train.config import config_class\n"
            "assert config_class('distill') is DistillTrainConfig\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
