"""An exported denoiser's metadata names the sampler ``restore --weights`` runs it with: the record
of the native folder that is actually loaded (given as itself or as the run folder holding it), a
distilled student's K-step ``mrs`` included, else the network's registered sampler."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

import daclip_kit
from daclip_kit.cli.main import main
from daclip_kit.export import load_model, unflatten
from daclip_kit.samplers.mrs.schedule import make_mr_schedule
from daclip_kit.train.distill_config import student_sampler

pytestmark = pytest.mark.usefixtures("one_thread")

TINY = {"nf": 32, "ch_mult": [1, 1], "context_dim": 0, "use_degra_context": False, "use_image_context": False}
SDE = {"max_sigma": 30.0, "T": 50, "schedule": "cosine", "eps": 0.005}


def _save(folder, sampler):
    torch.manual_seed(0)
    net = daclip_kit.create_backbone("irsde-unet", **TINY)
    return daclip_kit.save_network(net, folder, name="irsde-unet", config=TINY, sampler=sampler)


def _exported_meta(tmp_path, weights) -> dict:
    out = tmp_path / "den.pt"
    assert main(["export", "irsde-unet", "--weights", str(weights), "--format", "torchscript", "-o", str(out),
                 "--overwrite"]) == 0
    extra = {"daclip_kit.json": ""}
    torch.jit.load(str(out), _extra_files=extra)
    return unflatten(json.loads(extra["daclip_kit.json"]))


@pytest.fixture(scope="module")
def teacher(tmp_path_factory):
    """A tiny IR-SDE U-Net trained (as `train restoration` saves it) on max_sigma 30, T 50, in a run folder."""
    run = tmp_path_factory.mktemp("export-run") / "run"
    folder = run / "checkpoints" / "step-00000002" / "network-ema"
    return _save(folder, {"name": "irsde", "config": dict(SDE)}), run


@pytest.mark.parametrize("given", ["folder", "run"])
def test_the_loaded_folders_sampler_is_exported(tmp_path, teacher, given):
    folder, run = teacher
    meta = _exported_meta(tmp_path, folder if given == "folder" else run)
    assert (meta["sde"]["max_sigma"], meta["sde"]["T"]) == (30.0, 50)  # not the default 50 / 100
    assert meta["sampler"] == {"name": "irsde", "config": {**SDE, "mode": "posterior"}}
    assert meta["steps"] == 50  # restore runs all T posterior steps by default
    sched = make_mr_schedule(30 / 255, 50, "cosine", 0.005, keep_theta_0=False)  # the IR-SDE (training) SDE
    assert meta["mr_schedule"]["keep_theta_0"] is False
    assert np.array_equal(np.float32(meta["mr_schedule"]["alpha"]), sched.alpha_array.numpy())
    assert np.array_equal(np.float32(meta["mr_schedule"]["sigma"]), sched.sigma_array.numpy())
    assert meta["mr_schedule"]["lambda"][0] is None  # +inf at sigma_0 = 0, written as JSON null
    assert np.array_equal(np.float32(meta["mr_schedule"]["lambda"][1:]), sched.lambda_array.numpy()[1:])


def test_load_model_reads_the_record_of_the_resolved_folder(teacher):
    folder, run = teacher
    for ref in (folder, run, str(run)):
        _, kind, trained = load_model("irsde-unet", ref)
        assert kind == "denoiser" and trained == {"name": "irsde", "config": SDE}


def test_a_students_k_step_sampler_is_exported(tmp_path):
    record = student_sampler({**SDE, "T": 100}, 3, 0.0)
    meta = _exported_meta(tmp_path, _save(tmp_path / "student", record))
    config = meta["sampler"]["config"]
    assert meta["sampler"]["name"] == "mrs" and meta["steps"] == 3
    assert {k: config[k] for k in record["config"]} == record["config"]  # num_sample_steps, training_schedule, ...
    assert daclip_kit.create_sampler("mrs", **config).timesteps() == daclip_kit.create_sampler(
        "mrs", **record["config"]).timesteps()  # the complete config rebuilds the same run
    assert meta["mr_schedule"]["keep_theta_0"] is False and meta["mr_schedule"]["sigma"][0] == 0  # training SDE
    assert (meta["sde"]["max_sigma"], meta["sde"]["T"]) == (30.0, 100)


def test_no_record_exports_the_registered_sampler_and_mrs_keeps_its_schedule(tmp_path):
    meta = _exported_meta(tmp_path, _save(tmp_path / "plain", None))
    assert meta["sampler"] == {"name": "irsde", "config": {"max_sigma": 50.0, "T": 100, "schedule": "cosine",
                                                          "eps": 0.005, "mode": "posterior"}}
    assert meta["steps"] == 100
    meta = _exported_meta(tmp_path, _save(tmp_path / "mrs", {"name": "mrs", "config": {**SDE, "order": 3}}))
    assert meta["sampler"]["config"]["num_sample_steps"] == 10 and meta["steps"] == 10
    assert meta["mr_schedule"]["keep_theta_0"] is True
    sched = make_mr_schedule(30 / 255, 50, "cosine", 0.005)
    assert np.array_equal(np.float32(meta["mr_schedule"]["lambda"]), sched.lambda_array.numpy())
