"""Data-parallel training with torchrun and gradient accumulation: 2 processes, 1 process with
micro-batches and 1 plain process train the same weights for the same global batch; a run resumes
at another number of processes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from _train_testutil import daclip_run, irsde_run

from daclip_kit.checkpoint import load_pretrained_files
from daclip_kit.config import from_dict
from daclip_kit.train.config import (
    DaClipTrainConfig,
    RestorationTrainConfig,
    config_to_toml,
)
from daclip_kit.train.daclip import train_daclip
from daclip_kit.train.datasets import ShardedBatchSampler
from daclip_kit.train.restoration import train_restoration

pytestmark = pytest.mark.usefixtures("one_thread")


def _train(torchrun, trainer: str, run_file: Path) -> dict:
    """``torchrun --nproc_per_node 2 -m daclip_kit train TRAINER --config RUN_FILE --json`` (gloo, CPU)."""
    done = torchrun("train", trainer, "--config", run_file, "--json", timeout=180)
    assert done.returncode == 0, done.stderr[-4000:]
    return json.loads(done.stdout)  # process 1 prints nothing


def _world_size(checkpoint: Path) -> int:
    """The number of processes that trained up to ``checkpoint`` (its trainer state records it)."""
    return torch.load(checkpoint / "trainer_state.pt", weights_only=True)["world_size"]


def _same_weights(a_dir: Path, b_dir: Path, atol: float) -> None:
    _, a = load_pretrained_files(a_dir)
    _, b = load_pretrained_files(b_dir)
    assert a.keys() == b.keys()
    for k in a:
        torch.testing.assert_close(b[k], a[k], rtol=0, atol=atol, msg=lambda m, k=k: f"{a_dir.name} {k}: {m}")


def _same_gradients(a_ckpt: Path, b_ckpt: Path) -> None:
    """AdamW's moments after the same steps: equal gradients (a wrong gradient scale would show
    here even where Adam's normalised update hides it)."""
    a = torch.load(a_ckpt / "trainer_state.pt", weights_only=True)["optimizer"]["state"]
    b = torch.load(b_ckpt / "trainer_state.pt", weights_only=True)["optimizer"]["state"]
    assert a.keys() == b.keys() and a
    for k in a:
        for moment in ("exp_avg", "exp_avg_sq"):
            x, y = a[k][moment], b[k][moment]
            scale = float(x.abs().max()) or 1.0
            assert float((x - y).abs().max()) <= 1e-3 * scale, (k, moment)


def test_sharded_batches_cover_the_global_batch_in_order():
    one = list(ShardedBatchSampler(10, seed=3, global_batch=4))
    assert [len(b) for b in one] == [4, 4] and len({i for b in one for i in b}) == 8
    two = [list(ShardedBatchSampler(10, seed=3, global_batch=4, world=2, rank=r, accumulate=2)) for r in (0, 1)]
    for step in range(2):  # rank 0's micro-batches, then rank 1's, give the single-process batch
        parts = two[0][2 * step:2 * step + 2] + two[1][2 * step:2 * step + 2]
        assert [len(p) for p in parts] == [1, 1, 1, 1] and [i for p in parts for i in p] == one[step]
    resumed = ShardedBatchSampler(10, seed=3, global_batch=4)
    resumed.set_epoch(0, 1)
    assert list(resumed) == one[1:]


def test_restoration_two_processes_equal_one_and_resume_at_another_world_size(root, daclip, tmp_path, torchrun):
    def cfg(out, **top):
        # a constant learning rate: extending max_steps on resume keeps the schedule of the 3-step run
        base = {"max_steps": 3, "save_every": 1, "data": {"batch_size": 4}, "optim": {"lr": 1e-3, "min_lr": 1e-3}}
        return from_dict(RestorationTrainConfig, irsde_run(root, out, daclip, **{**base, **top}))

    run_file = tmp_path / "run.toml"
    run_file.write_text(config_to_toml(cfg(tmp_path / "ddp", max_steps=2).validate()))
    summary = _train(torchrun, "restoration", run_file)
    assert summary["step"] == 2 and set(summary["models"]) == {"daclip", "network", "network-ema"}  # with its DA-CLIP
    assert _world_size(Path(summary["checkpoint"])) == 2  # really two processes, not one doing it all

    single = train_restoration(cfg(tmp_path / "one"))
    accumulated = train_restoration(cfg(tmp_path / "acc", data={"batch_size": 4, "accumulate_steps": 2}))
    step2 = "checkpoints/step-00000002"
    for model in ("network", "network-ema"):
        _same_weights(tmp_path / "one" / step2 / model, tmp_path / "ddp" / step2 / model, atol=1e-5)
        _same_weights(single.checkpoint / model, accumulated.checkpoint / model, atol=1e-5)
    _same_gradients(tmp_path / "one" / step2, tmp_path / "ddp" / step2)
    _same_gradients(single.checkpoint, accumulated.checkpoint)
    lines = [json.loads(x) for x in (tmp_path / "ddp" / "metrics.jsonl").read_text().splitlines()]
    assert [r["loss"] for r in lines] == pytest.approx([r["loss"] for r in single.history[:2]], rel=1e-5)

    # the 2-process run, resumed by one process (same global batch), ends where the 1-process run did
    resumed = train_restoration(cfg(tmp_path / "ddp"), resume=tmp_path / "ddp")
    assert resumed.step == 3
    for model in ("network", "network-ema"):
        _same_weights(single.checkpoint / model, resumed.checkpoint / model, atol=1e-5)


def test_daclip_global_batch_loss_two_processes_equal_one(root, tmp_path, torchrun):
    def cfg(out, **top):
        return from_dict(DaClipTrainConfig, daclip_run(root, out, **{"max_steps": 3, **top}))

    run_file = tmp_path / "run.toml"
    run_file.write_text(config_to_toml(cfg(tmp_path / "ddp").validate()))
    summary = _train(torchrun, "daclip", run_file)
    assert summary["step"] == 3 and _world_size(Path(summary["checkpoint"])) == 2

    single = train_daclip(cfg(tmp_path / "one"))
    accumulated = train_daclip(cfg(tmp_path / "acc", data={"accumulate_steps": 2}))
    for other in (Path(summary["checkpoint"]), accumulated.checkpoint):
        _same_weights(single.checkpoint / "daclip", other / "daclip", atol=1e-4)
        _same_gradients(single.checkpoint, other)
    lines = [json.loads(x) for x in (tmp_path / "ddp" / "metrics.jsonl").read_text().splitlines()]
    assert [r["loss"] for r in lines] == pytest.approx([r["loss"] for r in single.history], rel=1e-5)
    assert [r["loss"] for r in accumulated.history] == pytest.approx([r["loss"] for r in single.history], rel=1e-5)
