"""Resuming and restarting safely: the stored config is the truth, refused resumes write nothing,
Ctrl-C / SIGTERM save a checkpoint, failed starts leave the folder reusable, permissions, locks."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from _snapshots import snapshot
from _train_testutil import irsde_config

from daclip_kit.checkpoint import load_pretrained_files
from daclip_kit.cli.main import main
from daclip_kit.errors import ConfigError, InputError
from daclip_kit.train.checkpoints import RunLock
from daclip_kit.train.config import config_to_toml
from daclip_kit.train.loop import TrainingInterrupted
from daclip_kit.train.restoration import train_restoration

pytestmark = pytest.mark.usefixtures("one_thread")


def _run_file(root, daclip, tmp_path, name="run.toml", **top) -> Path:
    path = tmp_path / name
    path.write_text(config_to_toml(irsde_config(root, daclip, tmp_path / "unused", **top).validate()))
    return path


def test_resume_with_a_changed_config_is_refused_before_anything_is_written(root, daclip, tmp_path, capsys):
    out = tmp_path / "run"
    run_file = _run_file(root, daclip, tmp_path, max_steps=2, save_every=1)
    base = ["train", "restoration", "--config", str(run_file), "--out", str(out), "--json"]
    assert main(base) == 0
    capsys.readouterr()
    before = snapshot(out)

    cases = {
        "optim.lr": ["--resume", str(out), "--set", "optim.lr=5e-3"],
        "data.batch_size": ["--resume", str(out), "--set", "data.batch_size=4"],
        "network.nf": ["--resume", str(out), "--set", "network.nf=64"],
    }
    for key, extra in cases.items():
        assert main(["train", "restoration", *extra, "--max-steps", "3", "--json"]) == 1
        err = capsys.readouterr().err
        assert key in err and "Cannot resume" in err, err
        assert len(err.strip().splitlines()) == 1, err
        assert snapshot(out) == before, f"a refused resume ({key}) changed the run folder"

    # another run file that differs in the optimizer and the seed: both keys are named
    other = _run_file(root, daclip, tmp_path, name="other.toml", max_steps=2, save_every=1, seed=3,
                      optim={"lr": 2e-3})
    assert main(["train", "restoration", "--config", str(other), "--resume", str(out), "--json"]) == 1
    changed = capsys.readouterr().err.split("with a changed config: ")[1].split(". Resuming may only")[0]
    assert changed == "optim.lr 0.001 -> 0.002, seed 0 -> 3"
    assert snapshot(out) == before

    # the run still resumes with its own config; allowed changes are taken and recorded
    assert main(["train", "restoration", "--resume", str(out), "--max-steps", "3", "--set", "log_every=2",
                 "--set", "data.num_workers=0", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["step"] == 3
    saved = (out / "config.toml").read_text()
    assert "max_steps = 3" in saved and "log_every = 2" in saved


def test_resume_through_the_api_compares_with_the_stored_config(root, daclip, tmp_path):
    out = tmp_path / "run"
    train_restoration(irsde_config(root, daclip, out, max_steps=2, save_every=2))
    config = (out / "config.toml").read_bytes()
    with pytest.raises(ConfigError, match=r"objective 'ml' -> 'noise'"):
        train_restoration(irsde_config(root, daclip, out, max_steps=3, objective="noise"), resume=out)
    assert (out / "config.toml").read_bytes() == config
    assert train_restoration(irsde_config(root, daclip, out, max_steps=3, keep=1), resume=out).step == 3


def test_sigint_saves_the_current_step_and_resuming_is_exact(root, daclip, tmp_path):
    straight = train_restoration(irsde_config(root, daclip, tmp_path / "a", max_steps=4, save_every=10))

    def ctrl_c(step, total, record):
        if step == 3:
            os.kill(os.getpid(), signal.SIGINT)  # handled after this step: save, then stop

    with pytest.raises(TrainingInterrupted) as stop:
        train_restoration(irsde_config(root, daclip, tmp_path / "b", max_steps=4, save_every=10), progress=ctrl_c)
    assert stop.value.exit_code == 130 and stop.value.step == 3
    assert stop.value.checkpoint == tmp_path / "b" / "checkpoints" / "step-00000003"
    assert torch.load(stop.value.checkpoint / "trainer_state.pt", weights_only=True)["step"] == 3
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler  # handlers restored

    resumed = train_restoration(irsde_config(root, daclip, tmp_path / "b", max_steps=4, save_every=10),
                                resume=tmp_path / "b")
    for model in ("network", "network-ema"):
        _, a = load_pretrained_files(straight.checkpoint / model)
        _, b = load_pretrained_files(resumed.checkpoint / model)
        assert all(torch.equal(a[k], b[k]) for k in a), model  # bit-exact


def test_sigterm_from_outside_exits_143_with_a_checkpoint(root, daclip, tmp_path):
    out = tmp_path / "run"
    run_file = _run_file(root, daclip, tmp_path, max_steps=10_000, save_every=10_000, log_every=1)
    env = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1"}
    proc = subprocess.Popen([sys.executable, "-m", "daclip_kit", "train", "restoration", "--config", str(run_file),
                             "--out", str(out), "--json"], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)
    try:
        deadline = time.monotonic() + 60
        while not ((out / "metrics.jsonl").is_file() and (out / "metrics.jsonl").read_text().strip()):
            assert proc.poll() is None and time.monotonic() < deadline, proc.communicate()
            time.sleep(0.1)
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 143, err
    [checkpoint] = (out / "checkpoints").iterdir()
    step = torch.load(checkpoint / "trainer_state.pt", weights_only=True)["step"]
    assert step >= 1 and checkpoint.name == f"step-{step:08d}"
    assert f"stopped by SIGTERM at step {step}" in err


def test_a_failed_start_leaves_the_folder_reusable(root, daclip, tmp_path):
    out = tmp_path / "run"
    # fails while checking: nothing is created
    with pytest.raises(ConfigError, match="larger than the 12 training samples"):
        train_restoration(irsde_config(root, daclip, out, data={"batch_size": 100}))
    assert not out.exists()
    # fails at the first step (patches larger than the images): the folder holds no checkpoint
    with pytest.raises(InputError, match=r"smaller than data\.patch_size=48"):
        train_restoration(irsde_config(root, daclip, out, data={"patch_size": 48}))
    assert (out / "config.toml").is_file() and not list((out / "checkpoints").glob("step-*"))
    # ... so the corrected start needs no --overwrite and replaces the failed start's files
    result = train_restoration(irsde_config(root, daclip, out, max_steps=1, save_every=1))
    assert result.step == 1 and "patch_size = 32" in (out / "config.toml").read_text()
    # a folder with a checkpoint, or with files of the user's, is still refused
    with pytest.raises(InputError, match="is not empty"):
        train_restoration(irsde_config(root, daclip, out, max_steps=1))
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "notes.txt").write_text("keep me")
    with pytest.raises(InputError, match="is not empty"):
        train_restoration(irsde_config(root, daclip, mine, max_steps=1))


def test_checkpoint_folders_get_ordinary_permissions(root, daclip, tmp_path):
    old = os.umask(0o022)
    try:
        result = train_restoration(irsde_config(root, daclip, tmp_path / "run", max_steps=1, save_every=1))
    finally:
        os.umask(old)
    for path in (result.checkpoint, result.checkpoint / "network", result.checkpoint / "network-ema"):
        assert path.stat().st_mode & 0o777 == 0o755, path
    assert (result.checkpoint / "trainer_state.pt").stat().st_mode & 0o777 == 0o644


def test_a_second_run_into_a_locked_folder_is_refused(root, daclip, tmp_path):
    out = tmp_path / "run"
    out.mkdir()
    lock = RunLock(out).acquire()  # as a run that is still training would hold it
    try:
        with pytest.raises(InputError, match="Another training run is writing into"):
            train_restoration(irsde_config(root, daclip, out, max_steps=1))
        assert not (out / "config.toml").exists()
    finally:
        lock.release()
    assert train_restoration(irsde_config(root, daclip, out, max_steps=1)).step == 1
