"""DA-CLIP controller training on the mini data set with a tiny model."""

from __future__ import annotations

import math

import pytest
import torch
from _train_testutil import daclip_run, tiny_daclip_folder

from daclip_kit.checkpoint import load_pretrained_files
from daclip_kit.config import from_dict
from daclip_kit.embedders.daclip.convert import load_daclip, save_daclip
from daclip_kit.embedders.tokenizer import tokenize
from daclip_kit.errors import ConfigError, InputError
from daclip_kit.train.config import DaClipTrainConfig
from daclip_kit.train.daclip import DaClipTask, train_daclip

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def hot_start(tmp_path_factory):
    """A tiny DA-CLIP whose logit scale is above the clamp (ln 100) and whose zero linears are not zero."""
    model = load_daclip(tiny_daclip_folder(tmp_path_factory))
    with torch.no_grad():
        model.logit_scale.fill_(6.0)
    folder = tmp_path_factory.mktemp("hot") / "daclip"
    save_daclip(model, folder)
    return folder


def test_steps_train_the_controller_only(root, hot_start, tmp_path):
    cfg = from_dict(DaClipTrainConfig, daclip_run(root, tmp_path / "run", model={"pretrained": str(hot_start)}))
    result = train_daclip(cfg)

    assert result.step == 3 and result.checkpoint.name == "step-00000003"
    losses = [r["loss"] for r in result.history]
    assert len(losses) == 3 and all(math.isfinite(v) for v in losses)
    for r in result.history:
        assert r["loss"] == pytest.approx(r["contrastive_loss"] + r["degra_loss"], rel=1e-5)

    _, before = load_pretrained_files(hot_start)
    _, after = load_pretrained_files(result.checkpoint / "daclip")
    assert before.keys() == after.keys()
    frozen = [k for k in before if k.startswith("clip.")]
    controller = [k for k in before if k.startswith("visual_control.")]
    assert frozen and controller
    for k in frozen:
        assert torch.equal(before[k], after[k]), f"frozen CLIP weight {k} changed"
    changed = [k for k in controller if not torch.equal(before[k], after[k])]
    assert any(".zero_modules." in k for k in changed) and any(".resblocks." in k for k in changed)
    assert float(before["logit_scale"]) == 6.0
    assert 0.0 <= float(after["logit_scale"]) <= math.log(100) + 1e-6
    assert result.history[-1]["logit_scale"] <= 100.0 + 1e-3


def test_checkpoint_loads_through_the_embedder_factory(root, tmp_path):
    from daclip_kit import create_embedder

    cfg = from_dict(DaClipTrainConfig, daclip_run(root, tmp_path / "run", max_steps=1, save_every=1))
    result = train_daclip(cfg)
    embedder = create_embedder("daclip", weights=str(result.checkpoint / "daclip"), device="cpu")
    emb = embedder.embed_image(torch.rand(2, 3, 40, 48))
    assert emb.content.shape == (2, 32) and emb.degradation.shape == (2, 32)
    state = torch.load(result.checkpoint / "trainer_state.pt", weights_only=True)
    assert state["step"] == 1 and state["optimizer"]["state"]


def test_titles_are_split_and_tokenised_separately(root, tmp_path):
    cfg = from_dict(DaClipTrainConfig, daclip_run(root, tmp_path / "run"))
    task = DaClipTask(cfg, torch.device("cpu"), None)
    lines = (root / "daclip_train.csv").read_text().splitlines()[1:]
    title = lines[0].split("\t")[1]
    item = task.dataset[0]
    assert f"{item['caption']}: {item['degradation']}" == title
    assert item["degradation"] in ("noisy", "hazy", "low-light", "jpeg-compressed")
    assert item["pixels"].shape == (3, 32, 32)
    tokens = task.tokens([item["caption"]], [item["degradation"]])
    assert tokens.shape == (1, 154)
    assert torch.equal(tokens[:, :77], tokenize([item["caption"]]))
    assert torch.equal(tokens[:, 77:], tokenize([item["degradation"]]))
    assert len(task.dataset) == 12 and not any(p.requires_grad for p in task.model.clip.parameters())


def test_resume_continues_the_step_count(root, tmp_path):
    run = tmp_path / "run"
    first = train_daclip(from_dict(DaClipTrainConfig, daclip_run(root, run, max_steps=2, save_every=1)))
    assert first.step == 2
    more = from_dict(DaClipTrainConfig, daclip_run(root, run, max_steps=4, save_every=1))
    with pytest.raises(InputError, match="not empty"):
        train_daclip(more)
    second = train_daclip(more, resume=run)
    assert second.step == 4 and [r["step"] for r in second.history] == [3, 4]
    state = torch.load(second.checkpoint / "trainer_state.pt", weights_only=True)
    assert state["step"] == 4
    assert all(int(s["step"]) == 4 for s in state["optimizer"]["state"].values())
    assert [p.name for p in sorted((run / "checkpoints").iterdir())] == [f"step-0000000{i}" for i in (1, 2, 3, 4)]


def test_batch_larger_than_the_data_is_an_error(root, tmp_path):
    cfg = from_dict(DaClipTrainConfig, daclip_run(root, tmp_path / "run", data={"batch_size": 100}))
    with pytest.raises(ConfigError, match="batch_size=100 is larger than the 12"):
        train_daclip(cfg)


def test_fp16_off_cuda_is_refused(root, tmp_path):
    cfg = from_dict(DaClipTrainConfig, daclip_run(root, tmp_path / "run", precision="fp16"))
    with pytest.raises(ConfigError, match="needs a CUDA device"):
        train_daclip(cfg)


def test_start_from_a_clip_state_dict_file(tmp_path, tmp_path_factory):
    import copy

    import open_clip

    from daclip_kit.embedders.daclip.architectures import clip_kwargs
    from daclip_kit.embedders.plugin import TINY_CLIP_CONFIG
    from daclip_kit.errors import WeightsNotFoundError
    from daclip_kit.train.config import DaClipModelConfig
    from daclip_kit.train.daclip import build_daclip

    torch.manual_seed(5)
    clip = open_clip.CLIP(**clip_kwargs(TINY_CLIP_CONFIG))
    torch.save(clip.state_dict(), tmp_path / "clip.pt")
    cfg = DaClipModelConfig(pretrained=str(tmp_path / "clip.pt"), model_config=copy.deepcopy(TINY_CLIP_CONFIG))
    model = build_daclip(cfg)
    for k, v in clip.state_dict().items():
        assert torch.equal(model.clip.state_dict()[k], v)
    # the controller starts as a copy of the loaded vision tower, with zero linears
    assert torch.equal(model.visual_control.conv1.weight, clip.visual.conv1.weight)
    assert all(not lin.weight.any() for lin in model.visual_control.transformer.zero_modules)

    official = {"state_dict": {f"module.{k}": v for k, v in load_daclip(tiny_daclip_folder(tmp_path_factory))
                               .state_dict().items()}}
    torch.save(official, tmp_path / "daclip.pt")
    again = build_daclip(DaClipModelConfig(pretrained=str(tmp_path / "daclip.pt"),
                                           model_config=copy.deepcopy(TINY_CLIP_CONFIG)))
    assert torch.equal(again.logit_scale, official["state_dict"]["module.logit_scale"])
    with pytest.raises(WeightsNotFoundError, match="does not exist"):
        build_daclip(DaClipModelConfig(pretrained=str(tmp_path / "missing.pt")))


def test_keep_prunes_old_checkpoints(root, tmp_path):
    cfg = from_dict(DaClipTrainConfig, daclip_run(root, tmp_path / "run", save_every=1, keep=2))
    result = train_daclip(cfg)
    assert sorted(p.name for p in (tmp_path / "run" / "checkpoints").iterdir()) == ["step-00000002", "step-00000003"]
    assert result.checkpoint.name == "step-00000003"


def test_validation_reports_loss_and_accuracy_on_the_val_csv(root, tmp_path):
    """Every validation.every steps: the val CSV's loss terms and degradation accuracy, in metrics.jsonl;
    the accuracy is what the saved embedder's zero-shot classification of the val images gives."""
    import json

    from daclip_kit import create_embedder
    from daclip_kit.data.universal import read_captions_csv
    from daclip_kit.io import read_image

    cfg = from_dict(DaClipTrainConfig, daclip_run(root, tmp_path / "run", max_steps=4, save_every=2,
                                                  validation={"enabled": True, "every": 2, "batch_size": 2}))
    result = train_daclip(cfg)
    val = [r for r in result.history if "val_accuracy" in r]
    assert [r["step"] for r in val] == [2, 4]
    lines = [json.loads(x) for x in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert [r for r in lines if "val_accuracy" in r] == val
    for r in val:
        assert r["val_loss"] == pytest.approx(r["val_contrastive_loss"] + r["val_degra_loss"])
        assert math.isfinite(r["val_loss"]) and 0.0 <= r["val_accuracy"] <= 1.0

    rows = read_captions_csv(root / "daclip_val.csv")
    train_rows = read_captions_csv(root / "daclip_train.csv")
    words = sorted({r.degradation for r in rows} | {r.degradation for r in train_rows})
    embedder = create_embedder("daclip", weights=str(result.checkpoint / "daclip"), device="cpu")
    images = torch.cat([read_image(root / r.filepath) for r in rows])
    guesses = [top[0][0] for top in embedder.classify(images, labels=words).top_k(1)]
    expected = sum(g == r.degradation for g, r in zip(guesses, rows, strict=True)) / len(rows)
    assert val[-1]["val_accuracy"] == pytest.approx(expected)


def test_validation_runs_once_per_epoch_by_default(root, tmp_path):
    cfg = from_dict(DaClipTrainConfig, daclip_run(root, tmp_path / "run", max_steps=6, save_every=6,
                                                  validation={"enabled": True}))
    result = train_daclip(cfg)  # 12 rows, batch 4: 3 steps per epoch
    assert [r["step"] for r in result.history if "val_accuracy" in r] == [3, 6]


def test_a_missing_val_csv_is_an_error_before_anything_is_written(root, tmp_path):
    cfg = from_dict(DaClipTrainConfig, daclip_run(root, tmp_path / "run", validation={
        "enabled": True, "csv": str(tmp_path / "nope.csv")}))
    with pytest.raises(InputError, match=r"nope\.csv"):
        train_daclip(cfg)
    assert not (tmp_path / "run").exists()
