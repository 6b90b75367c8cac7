"""Resuming from an earlier checkpoint rewrites ``metrics.jsonl`` without duplicate steps; device choice."""

from __future__ import annotations

import json

import pytest
import torch
from _train_testutil import daclip_run, mini_root

from daclip_kit.config import from_dict
from daclip_kit.core.device import pick_device as resolve_device
from daclip_kit.errors import ConfigError
from daclip_kit.train.checkpoints import METRICS
from daclip_kit.train.config import DaClipTrainConfig
from daclip_kit.train.daclip import train_daclip
from daclip_kit.train.loop import truncate_metrics

pytestmark = pytest.mark.usefixtures("one_thread")


def _steps(path):
    return [json.loads(line)["step"] for line in path.read_text().splitlines()]


def test_resume_from_an_earlier_checkpoint_logs_each_step_once(tmp_path_factory, tmp_path):
    root = mini_root(tmp_path_factory)
    run = tmp_path / "run"
    train_daclip(from_dict(DaClipTrainConfig, daclip_run(root, run, max_steps=3, save_every=1)))
    assert _steps(run / METRICS) == [1, 2, 3]
    more = from_dict(DaClipTrainConfig, daclip_run(root, run, max_steps=4, save_every=1))
    result = train_daclip(more, resume=run / "checkpoints" / "step-00000002")
    assert result.step == 4 and [r["step"] for r in result.history] == [3, 4]
    assert _steps(run / METRICS) == [1, 2, 3, 4]


def test_truncate_metrics_keeps_records_up_to_the_step(tmp_path):
    path = tmp_path / METRICS
    lines = [{"step": 1, "loss": 1.0}, {"step": 2, "loss": 0.5}, {"step": 2, "val_loss": 0.7},
             {"step": 3, "loss": 0.4}]
    path.write_text("".join(json.dumps(r) + "\n" for r in lines) + '{"step": 4, "lo')  # cut-off last line
    truncate_metrics(path, 2)
    assert [json.loads(x) for x in path.read_text().splitlines()] == lines[:3]
    truncate_metrics(tmp_path / "absent.jsonl", 2)
    assert not (tmp_path / "absent.jsonl").exists()


def test_resolve_device_follows_pick_device():
    auto = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    for name in (None, "", "auto"):
        assert resolve_device(name) == auto
    assert resolve_device("cpu") == torch.device("cpu")
    with pytest.raises(ConfigError, match="not a torch device"):
        resolve_device("gpu0")
    if not torch.cuda.is_available():
        with pytest.raises(ConfigError, match="CUDA is not available"):
            resolve_device("cuda:1")
