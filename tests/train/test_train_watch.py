"""Watching a run: TensorBoard event files, validation images and the best checkpoint.

Most tests drive the shared loop with a toy task (a 2-weight linear model whose validation reports
scripted metrics) so the best step is known; the restoration and DA-CLIP runs check the real tasks.
"""

from __future__ import annotations

import importlib.util
import json
import math
import os
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import torch
from _train_testutil import daclip_run, irsde_config
from PIL import Image

from daclip_kit.config import from_dict
from daclip_kit.errors import ConfigError
from daclip_kit.train.checkpoints import BEST, find_checkpoint, list_checkpoints, read_best
from daclip_kit.train.config import LoggingConfig, LoopConfig, OptimConfig, resume_changes
from daclip_kit.train.loop import TrainTask, run, side_by_side

pytestmark = pytest.mark.usefixtures("one_thread")


@dataclass(frozen=True, kw_only=True)
class ToyDataConfig:
    batch_size: int = 2
    accumulate_steps: int = 1


@dataclass(frozen=True, kw_only=True)
class ToyConfig(LoopConfig):
    data: ToyDataConfig = field(default_factory=ToyDataConfig)
    optim: OptimConfig = field(default_factory=lambda: OptimConfig(lr=1e-2, warmup_steps=0))
    validate_every: int = 2
    device: str = "cpu"
    log_every: int = 1
    save_every: int = 100


class ToyData:
    def __init__(self):
        self.x = torch.linspace(-1, 1, 8).reshape(8, 1).repeat(1, 2)

    def __len__(self):
        return 8

    def __getitem__(self, index):
        return {"x": self.x[index]}

    def set_epoch(self, epoch):
        pass


#: The scripted validation metric by step (set per test).
SCRIPT: dict[int, float] = {}


class ToyTask(TrainTask):
    def __init__(self, cfg, device, checkpoint):
        torch.manual_seed(0)
        self.cfg, self.net = cfg, torch.nn.Linear(2, 1)
        if checkpoint is not None:
            self.net.load_state_dict(torch.load(checkpoint / "net" / "w.pt", weights_only=True))
        self.dataset, self.batch_size = ToyData(), 2

    def trainable(self):
        return list(self.net.named_parameters())

    def loss(self, batch):
        return self.net(batch["x"]).pow(2).mean(), {}

    def model_writers(self):
        def write(path: Path):
            path.mkdir()
            torch.save(self.net.state_dict(), path / "w.pt")
        return {"net": write}

    def validation_interval(self, steps_per_epoch):
        return self.cfg.validate_every

    def validate(self, step):
        for i in range(3):  # panels of two heights; only val_images_wanted of them are kept
            self.add_val_image(f"pair {i}", torch.full((3, 4, 5), 0.25), torch.full((1, 3, 6, 5), 2.0),
                               torch.zeros(1, 4, 5))
        return {"psnr": SCRIPT[step], "loss": -SCRIPT[step]}


class MinLossTask(ToyTask):
    best_metric = ("loss", "min")


def toy(out: Path, **kw) -> ToyConfig:
    return from_dict(ToyConfig, {"out_dir": str(out), "max_steps": 8, **kw})


def best_of(out: Path) -> dict:
    record = read_best(out)
    assert record is not None
    link = out / "checkpoints" / BEST
    assert link.is_symlink() and os.readlink(link) == record["checkpoint"]  # relative: the run folder can move
    assert link.resolve() == (out / "checkpoints" / record["checkpoint"]).resolve()
    return record


def steps(out: Path) -> list[int]:
    return [int(p.name.split("-")[1]) for p in list_checkpoints(out)]


def accumulator(folder: Path):
    """TensorBoard's own reader of the event files in ``folder``, loaded."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator  # type: ignore[import-untyped]

    acc = EventAccumulator(str(folder), size_guidance={"scalars": 0, "images": 0})
    acc.Reload()
    return acc


def scalars(folder: Path) -> dict[str, list[tuple[int, float]]]:
    acc = accumulator(folder)
    return {tag: [(e.step, e.value) for e in acc.Scalars(tag)] for tag in acc.Tags()["scalars"]}


def images(folder: Path) -> dict[str, list]:
    acc = accumulator(folder)
    return {tag: acc.Images(tag) for tag in acc.Tags()["images"]}


# -- the best checkpoint ------------------------------------------------------------------------


def test_best_is_the_peak_step_saved_even_off_the_save_steps_and_never_pruned(tmp_path):
    SCRIPT.clear()
    SCRIPT.update({2: 10.0, 4: 12.0, 6: 11.0, 8: 9.0})
    out = tmp_path / "run"
    result = run(ToyTask, toy(out, keep=1))
    assert steps(out) == [4, 8]  # 2 (best then) pruned; 4 saved for being the best; 8 the last step
    best = best_of(out)
    assert best == {"step": 4, "metric": "psnr", "value": 12.0, "mode": "max", "checkpoint": "step-00000004"}
    assert result.best == {k: best[k] for k in ("step", "metric", "value", "mode")}
    assert find_checkpoint(out / "checkpoints" / BEST) == out / "checkpoints" / BEST  # a checkpoint folder


def test_lower_is_better_and_ties_keep_the_earlier_step(tmp_path):
    SCRIPT.clear()
    SCRIPT.update({2: 10.0, 4: 8.0, 6: 12.0, 8: 12.0})  # val loss = -psnr: -10, -8, -12, -12
    out = tmp_path / "run"
    result = run(MinLossTask, toy(out))
    assert best_of(out) == {"step": 6, "metric": "loss", "value": -12.0, "mode": "min",
                            "checkpoint": "step-00000006"}
    assert result.best is not None and result.best["step"] == 6


def test_best_survives_resume_and_moves_only_when_beaten(tmp_path):
    SCRIPT.clear()
    SCRIPT.update({2: 10.0, 4: 12.0, 6: 11.0, 8: 9.0, 10: 11.9, 12: 12.5})
    out = tmp_path / "run"
    run(ToyTask, toy(out))
    resumed = run(ToyTask, toy(out, max_steps=10), resume=out)
    assert best_of(out)["step"] == 4 and resumed.best is not None and resumed.best["step"] == 4
    run(ToyTask, toy(out, max_steps=12), resume=out)
    assert best_of(out)["step"] == 12 and best_of(out)["value"] == 12.5


def test_resuming_an_earlier_checkpoint_takes_its_own_best(tmp_path):
    SCRIPT.clear()
    SCRIPT.update({2: 10.0, 4: 9.0, 6: 13.0, 8: 9.0})
    out = tmp_path / "run"
    run(ToyTask, toy(out, save_every=2))
    assert best_of(out)["step"] == 6
    SCRIPT.update({6: 9.5, 8: 9.7})  # the steps after 4 are taken again and now do worse
    run(ToyTask, toy(out, save_every=2), resume=out / "checkpoints" / "step-00000004")
    assert best_of(out)["step"] == 2
    assert sorted(p.name for p in (out / "val-images").iterdir()) == [f"step-0000000{s}" for s in (2, 4, 6, 8)]


def test_resume_from_the_best_link_continues_the_run(tmp_path):
    SCRIPT.clear()
    SCRIPT.update({2: 10.0, 4: 12.0, 6: 11.0, 8: 9.0})
    out = tmp_path / "run"
    run(ToyTask, toy(out))
    result = run(ToyTask, toy(out), resume=out / "checkpoints" / BEST)
    records = [json.loads(x) for x in (out / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in records if "loss" in r and "val_loss" not in r] == list(range(1, 9))
    assert result.step == 8 and best_of(out)["step"] == 4


def test_resuming_into_another_folder_chooses_the_best_again(tmp_path):
    SCRIPT.clear()
    SCRIPT.update({2: 10.0, 4: 12.0, 6: 11.0, 8: 9.0, 10: 5.0})
    run(ToyTask, toy(tmp_path / "a"))
    copy = run(ToyTask, toy(tmp_path / "b", max_steps=10), resume=tmp_path / "a")
    assert copy.best is not None and copy.best["step"] == 10 and best_of(tmp_path / "b")["step"] == 10


def test_no_validation_no_best(tmp_path):
    out = tmp_path / "run"
    result = run(ToyTask, toy(out, validate_every=0))
    assert result.best is None and read_best(out) is None and not (out / "checkpoints" / BEST).exists()


# -- validation images --------------------------------------------------------------------------


def test_validation_images_are_saved_side_by_side(tmp_path):
    SCRIPT.clear()
    SCRIPT.update({2: 1.0, 4: 2.0})
    out = tmp_path / "run"
    run(ToyTask, toy(out, max_steps=4, logging={"val_images": 2, "tensorboard": False}))
    for step in (2, 4):
        files = sorted((out / "val-images" / f"step-{step:08d}").iterdir())
        assert [f.name for f in files] == ["pair_0.png", "pair_1.png"]
        with Image.open(files[0]) as im:
            assert im.size == (15, 6) and im.mode == "RGB"
            assert im.getpixel((0, 0)) == (64, 64, 64)  # 0.25
            assert im.getpixel((7, 5)) == (255, 255, 255)  # clamped from 2.0
            assert im.getpixel((0, 5)) == (0, 0, 0)  # the shorter LQ padded with black
    assert not (out / "tensorboard").exists()


def test_val_images_zero_saves_none(tmp_path):
    SCRIPT.clear()
    SCRIPT.update({2: 1.0})
    out = tmp_path / "run"
    run(ToyTask, toy(out, max_steps=2, logging={"val_images": 0}))
    assert not (out / "val-images").exists()


def test_side_by_side_shapes():
    image = side_by_side([torch.rand(3, 8, 4), torch.rand(1, 3, 6, 5), torch.rand(1, 8, 2)])
    assert image.shape == (3, 8, 11)
    with pytest.raises(ValueError, match="at least one"):
        side_by_side([])


# -- TensorBoard --------------------------------------------------------------------------------


def test_tensorboard_holds_losses_lr_validation_and_images(tmp_path):
    pytest.importorskip("tensorboard")
    SCRIPT.clear()
    SCRIPT.update({2: 10.0, 4: 12.0})
    out = tmp_path / "run"
    result = run(ToyTask, toy(out, max_steps=4, logging={"tensorboard": True, "val_images": 1}))
    board = scalars(out / "tensorboard")
    assert {"train/loss", "train/lr", "train/steps_per_s", "val/psnr", "val/loss"} <= set(board)
    logged = [r for r in result.history if "val_psnr" not in r]
    assert [s for s, _ in board["train/loss"]] == [1, 2, 3, 4]
    assert [v for _, v in board["train/loss"]] == pytest.approx([r["loss"] for r in logged], rel=1e-6)
    assert [v for _, v in board["train/lr"]] == pytest.approx([r["lr"] for r in logged], rel=1e-6)
    assert board["val/psnr"] == [(2, 10.0), (4, 12.0)]
    shown = images(out / "tensorboard")
    assert list(shown) == ["val/pair_0"]
    assert [(e.step, e.width, e.height) for e in shown["val/pair_0"]] == [(2, 15, 6), (4, 15, 6)]


def test_tensorboard_after_resume_from_an_earlier_step_has_each_step_once(tmp_path):
    pytest.importorskip("tensorboard")
    SCRIPT.clear()
    SCRIPT.update({2: 10.0, 4: 12.0, 6: 11.0, 8: 9.0})
    out = tmp_path / "run"
    run(ToyTask, toy(out, save_every=4, logging={"tensorboard": True}))
    run(ToyTask, toy(out, save_every=4, logging={"tensorboard": True}), resume=out / "checkpoints" / "step-00000004")
    board = scalars(out / "tensorboard")
    assert [s for s, _ in board["train/loss"]] == list(range(1, 9))
    assert [s for s, _ in board["val/psnr"]] == [2, 4, 6, 8]


def test_tensorboard_true_without_the_package_is_refused_before_anything_is_written(tmp_path, monkeypatch):
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "tensorboard" else real(name, *a))
    out = tmp_path / "run"
    with pytest.raises(ConfigError, match=r"pip install 'daclip-kit\[tensorboard\]'.*logging\.tensorboard = false"):
        run(ToyTask, toy(out, logging={"tensorboard": True}))
    assert not out.exists()
    run(ToyTask, toy(out, max_steps=2, logging={"tensorboard": "auto"}))  # auto: quietly without
    assert not (out / "tensorboard").exists() and (out / "checkpoints").is_dir()


def test_logging_settings_are_checked_and_may_change_on_resume():
    assert LoggingConfig().tensorboard == "auto"
    assert from_dict(ToyConfig, {"logging": {"tensorboard": "false"}}).logging.tensorboard is False
    with pytest.raises(ConfigError, match=r"logging\.val_images=-1 is out of range"):
        from_dict(ToyConfig, {"logging": {"val_images": -1}})
    with pytest.raises(ConfigError, match="not one of"):
        from_dict(ToyConfig, {"logging": {"tensorboard": "sometimes"}})
    a, b = ToyConfig(), ToyConfig(logging=LoggingConfig(tensorboard=False, val_images=0))
    assert resume_changes(a, b) == []


# -- the real tasks -----------------------------------------------------------------------------


def test_restoration_run_images_tensorboard_and_best_resolve(root, daclip, tmp_path):
    from daclip_kit.model import resolve_model
    from daclip_kit.train.restoration import train_restoration

    out = tmp_path / "run"
    cfg = irsde_config(root, daclip, out, max_steps=4, save_every=4, keep=1,
                       validation={"every": 2, "count": 3, "steps": 2},
                       logging={"val_images": 2, "tensorboard": "auto"})
    result = train_restoration(cfg)
    val = {r["step"]: r["val_psnr"] for r in result.history if "val_psnr" in r}
    assert list(val) == [2, 4] and all(math.isfinite(v) for v in val.values())
    best = best_of(out)
    assert best["metric"] == "psnr" and best["value"] == max(val.values())
    assert best["step"] == max(val, key=lambda s: (val[s], -s))
    assert 4 in steps(out) and best["step"] in steps(out)
    for step in (2, 4):
        files = sorted((out / "val-images" / f"step-{step:08d}").iterdir())
        assert len(files) == 2 and all(f.suffix == ".png" for f in files)
        with Image.open(files[0]) as im:
            assert im.size == (3 * 32, 32)
    unit = resolve_model(out / "checkpoints" / BEST)
    assert unit.network is not None and unit.network.name == "network-ema"
    assert unit.network.parent == out / "checkpoints" / BEST
    assert unit.network.resolve().parent.name == best["checkpoint"]
    if importlib.util.find_spec("tensorboard") is not None:
        board = scalars(out / "tensorboard")
        assert [s for s, _ in board["val/psnr"]] == [2, 4]
        assert {"train/loss", "train/lr"} <= set(board)
        assert len(images(out / "tensorboard")) == 2


def test_daclip_run_keeps_the_best_accuracy(root, tmp_path):
    from daclip_kit.train.config import DaClipTrainConfig
    from daclip_kit.train.daclip import train_daclip

    out = tmp_path / "run"
    cfg = from_dict(DaClipTrainConfig, daclip_run(root, out, max_steps=4, save_every=4,
                                                  validation={"enabled": True, "every": 2, "batch_size": 2}))
    result = train_daclip(cfg)
    acc = {r["step"]: r["val_accuracy"] for r in result.history if "val_accuracy" in r}
    best = best_of(out)
    assert best["metric"] == "accuracy" and best["mode"] == "max"
    assert best["step"] == max(acc, key=lambda s: (acc[s], -s)) and best["value"] == max(acc.values())
    assert (out / "checkpoints" / BEST / "daclip").is_dir()
    assert not (out / "val-images").exists()  # DA-CLIP's validation hands over no images


TORCHRUN_SCRIPT = '''
import sys
from dataclasses import dataclass, field
from pathlib import Path

import torch

from daclip_kit.config import from_dict
from daclip_kit.train.config import LoopConfig, OptimConfig
from daclip_kit.train.loop import TrainTask, run


@dataclass(frozen=True, kw_only=True)
class Data:
    batch_size: int = 4
    accumulate_steps: int = 1


@dataclass(frozen=True, kw_only=True)
class Cfg(LoopConfig):
    data: Data = field(default_factory=Data)
    optim: OptimConfig = field(default_factory=OptimConfig)


class Items:
    def __len__(self):
        return 8

    def __getitem__(self, i):
        return {"x": torch.full((2,), float(i))}

    def set_epoch(self, epoch):
        pass


class Task(TrainTask):
    def __init__(self, cfg, device, checkpoint):
        torch.manual_seed(0)
        self.net, self.dataset, self.batch_size = torch.nn.Linear(2, 1), Items(), 4

    def trainable(self):
        return list(self.net.named_parameters())

    def loss(self, batch):
        return self.net(batch["x"]).pow(2).mean(), {}

    def model_writers(self):
        def write(path):
            path.mkdir()
            torch.save(self.net.state_dict(), path / "w.pt")
        return {"net": write}

    def validation_interval(self, steps_per_epoch):
        return 2

    def validate(self, step):
        self.add_val_image("only", torch.rand(3, 4, 4))
        return {"psnr": {2: 1.0, 4: 3.0, 6: 2.0}[step]}


cfg = from_dict(Cfg, {"out_dir": sys.argv[1], "max_steps": 6, "save_every": 100, "device": "cpu",
                      "logging": {"tensorboard": True}})
run(Task, cfg)
'''


def test_under_torchrun_only_process_0_writes(tmp_path, torchrun):
    pytest.importorskip("tensorboard")
    script = tmp_path / "toy_ddp.py"
    script.write_text(TORCHRUN_SCRIPT)
    out = tmp_path / "run"
    done = torchrun(str(out), script=script, timeout=240)
    assert done.returncode == 0, done.stderr[-4000:]
    assert len(list((out / "tensorboard").iterdir())) == 1  # one event file: process 1 wrote none
    assert [s for s, _ in scalars(out / "tensorboard")["val/psnr"]] == [2, 4, 6]
    assert best_of(out)["step"] == 4 and steps(out) == [2, 4, 6]
    assert sorted(p.name for p in (out / "val-images").iterdir()) == ["step-00000002", "step-00000004", "step-00000006"]
