"""``data.synthesize``: DA-CLIP training images degraded anew from their clean GT every time."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import torch
from _train_testutil import TYPES, daclip_run

from daclip_kit.config import from_dict
from daclip_kit.data.universal import CaptionRow, read_captions_csv, write_captions_csv
from daclip_kit.embedders.preprocess import OPENAI_MEAN, OPENAI_STD
from daclip_kit.errors import ConfigError, DaclipKitError, InputError
from daclip_kit.io import write_image
from daclip_kit.train.config import DaClipDataConfig, DaClipTrainConfig, load_run_config
from daclip_kit.train.datasets import CaptionImageDataset, clean_image_path, jitter_colours

pytestmark = pytest.mark.usefixtures("one_thread")


def _rgb(pixels: torch.Tensor) -> torch.Tensor:
    """CLIP-normalised pixels back in [0, 1]."""
    return pixels * torch.tensor(OPENAI_STD).view(3, 1, 1) + torch.tensor(OPENAI_MEAN).view(3, 1, 1)


def test_items_are_degraded_anew_each_epoch_with_a_drawn_degradation(root):
    csv = root / "daclip_train.csv"
    rows = read_captions_csv(csv)
    ds = CaptionImageDataset(csv, 32, seed=3, synthesize=True)
    assert len(ds) == len(rows)
    assert ds.clean_paths[0] == Path(rows[0].filepath).parent.parent / "GT" / Path(rows[0].filepath).name

    first = [ds[i] for i in range(len(ds))]
    again = [ds[i] for i in range(len(ds))]
    assert all(torch.equal(a["pixels"], b["pixels"]) for a, b in zip(first, again, strict=True))  # (seed, epoch, i)
    assert [item["caption"] for item in first] == [r.caption for r in rows]  # the clean image's caption
    ds.set_epoch(1)
    later = [ds[i] for i in range(len(ds))]
    assert not any(torch.equal(a["pixels"], b["pixels"]) for a, b in zip(first, later, strict=True))

    drawn = []
    for epoch in range(8):
        ds.set_epoch(epoch)
        drawn += [ds[i] for i in range(len(ds))]
    labels = [item["degradation"] for item in drawn]
    assert set(labels) == set(TYPES)  # every degradation of the CSV, not the row's own only
    # the drawn degradation is the one applied: low-light images are far darker than noisy ones
    mean = {t: torch.stack([_rgb(d["pixels"]).mean() for d in drawn if d["degradation"] == t]).mean()
            for t in ("low-light", "noisy")}
    assert mean["low-light"] < 0.6 * mean["noisy"]


def test_stored_lq_files_are_not_read(root, tmp_path):
    copy = tmp_path / "universal"
    shutil.copytree(root, copy)
    rows = read_captions_csv(root / "daclip_train.csv")
    moved = [CaptionRow(str(copy / Path(r.filepath).relative_to(root)), r.caption, r.degradation) for r in rows]
    write_captions_csv(copy / "daclip_train.csv", moved)
    a = CaptionImageDataset(copy / "daclip_train.csv", 32, synthesize=True)[0]
    for lq in copy.glob("train/*/LQ/*.png"):
        lq.write_bytes(b"not an image")
    b = CaptionImageDataset(copy / "daclip_train.csv", 32, synthesize=True)[0]
    assert torch.equal(a["pixels"], b["pixels"])
    with pytest.raises(DaclipKitError):  # the official path does read them
        CaptionImageDataset(copy / "daclip_train.csv", 32)[0]


def test_colour_jitter_keeps_range_and_grey_and_changes_colour():
    g = torch.Generator().manual_seed(0)
    grey = torch.full((3, 8, 8), 0.4)
    greys = [jitter_colours(grey, g) for _ in range(30)]
    assert all(torch.allclose(o, o[0, 0, 0].expand(3, 8, 8)) for o in greys)  # grey stays grey
    levels = [float(o[0, 0, 0]) for o in greys]  # its brightness raised to a power in [1/1.6, 1.6]
    assert 0.4**1.6 - 1e-6 <= min(levels) < 0.35 and 0.45 < max(levels) <= 0.4 ** (1 / 1.6) + 1e-6
    orange = torch.stack([torch.full((8, 8), 0.9), torch.full((8, 8), 0.5), torch.full((8, 8), 0.1)])
    outs = [jitter_colours(orange, g) for _ in range(30)]
    assert all(o.min() >= 0 and o.max() <= 1 for o in outs)
    assert len({int(o[:, 0, 0].argmax()) for o in outs}) == 3  # channels permuted: any can be the brightest
    spread = [float(o[:, 0, 0].max() - o[:, 0, 0].min()) for o in outs]
    assert min(spread) < 0.5 < 0.8 < max(spread)  # saturation scaled down and up (0.8 originally)


def test_rows_without_their_gt_are_named(root, tmp_path):
    rows = read_captions_csv(root / "daclip_train.csv")
    lonely = tmp_path / "elsewhere" / "a.png"
    lonely.parent.mkdir()
    shutil.copy(rows[0].filepath, lonely)
    assert clean_image_path(lonely) is None and clean_image_path(rows[0].filepath) is not None
    csv = write_captions_csv(tmp_path / "daclip_train.csv", [CaptionRow(str(lonely), "a cat", "noisy")])
    CaptionImageDataset(csv, 32)  # fine without synthesize
    with pytest.raises(InputError, match=r"data\.synthesize.*GT.*1 row.*a\.png.*data\.synthesize = false"):
        CaptionImageDataset(csv, 32, synthesize=True)


def test_a_degradation_without_a_generator_is_read_as_stored(root, tmp_path, caplog):
    rows = read_captions_csv(root / "daclip_train.csv")
    lq = tmp_path / "train" / "banding" / "LQ" / "x.png"  # a white LQ: recognisable after the transform
    write_image(lq, torch.ones(1, 3, 32, 32))
    write_image(lq.parent.parent / "GT" / "x.png", torch.full((1, 3, 32, 32), 0.5))
    banding = CaptionRow(str(lq), "a striped thing", "banding")
    csv = write_captions_csv(tmp_path / "daclip_train.csv", [rows[0], banding])
    with caplog.at_level("WARNING"):
        ds = CaptionImageDataset(csv, 32, synthesize=True)
    assert "'banding' has no registered degradation generator" in caplog.text
    items = []
    for epoch in range(8):
        ds.set_epoch(epoch)
        items += [ds[0], ds[1]]
    stored = [item for item in items if item["degradation"] == "banding"]
    made = [item for item in items if item["degradation"] != "banding"]
    assert stored and made  # both kinds drawn
    for item in stored:  # the stored white LQ with its own caption, whichever row's clean image was drawn
        assert item["caption"] == "a striped thing"
        assert torch.allclose(_rgb(item["pixels"]), torch.ones(3, 32, 32), atol=1e-4)
    assert all(item["degradation"] == rows[0].degradation for item in made)


def test_synthesize_needs_one_degradation_with_a_generator(root, tmp_path):
    rows = read_captions_csv(root / "daclip_train.csv")
    csv = write_captions_csv(tmp_path / "daclip_train.csv", [CaptionRow(rows[0].filepath, "a thing", "banding")])
    with pytest.raises(ConfigError, match=r"no degradation of .*'banding'.*data\.synthesize = false"):
        CaptionImageDataset(csv, 32, synthesize=True)


def test_config_option_is_checked():
    assert DaClipDataConfig().synthesize is False  # official: the stored LQ images
    assert load_run_config("daclip", "daclip_tiny", ["data.synthesize=false"]).data.synthesize is False
    with pytest.raises(ConfigError, match=r"data\.synthesize=1 must be true or false"):
        DaClipDataConfig(synthesize=1)  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match=r"synthesize.*true/false"):
        load_run_config("daclip", "daclip_tiny", ["data.synthesize=sometimes"])


def test_training_with_synthesize_runs_and_is_recorded(root, tmp_path):
    from daclip_kit.train.daclip import train_daclip

    cfg = from_dict(DaClipTrainConfig, daclip_run(root, tmp_path / "run", max_steps=2,
                                                  data={"synthesize": True}))
    result = train_daclip(cfg)
    assert result.step == 2 and all(torch.isfinite(torch.tensor(r["loss"])) for r in result.history if "loss" in r)
    assert "synthesize = true" in (tmp_path / "run" / "config.toml").read_text()
