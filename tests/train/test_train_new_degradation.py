"""Training on a data root with an added degradation: every folder by default, and new_share."""

from __future__ import annotations

import shutil
from collections import Counter

import pytest
from _train_testutil import TYPES

from daclip_kit.data.universal import CaptionRow, read_captions_csv, write_captions_csv
from daclip_kit.errors import ConfigError
from daclip_kit.train.config import load_run_config
from daclip_kit.train.datasets import BalancedPatchDataset, CaptionImageDataset, group_weights


@pytest.fixture(scope="module")
def extended(root, tmp_path_factory):
    """The mini set plus a copy of its noisy folder named ``zz-new`` (a degradation outside the ten)."""
    out = tmp_path_factory.mktemp("extended") / "universal"
    shutil.copytree(root, out)
    for split in ("train", "val"):
        shutil.copytree(out / split / "noisy", out / split / "zz-new")
        rows = read_captions_csv(out / f"daclip_{split}.csv")
        new = [CaptionRow(str(out / split / "zz-new" / "LQ" / r.filepath.rsplit("/", 1)[-1]), r.caption, "zz-new")
               for r in rows if r.degradation == "noisy"]
        write_captions_csv(out / f"daclip_{split}.csv", rows + new)
    return out


def test_default_degradations_are_every_folder_official_order_first(extended):
    ds = BalancedPatchDataset(extended, "train", patch_size=32)
    official = [d for d in ("motion-blurry", "hazy", "jpeg-compressed", "low-light", "noisy") if d in TYPES]
    assert ds.names == official + ["zz-new"]
    seen = [ds[i]["degradation"] for i in range(len(ds.names) * 2)]
    assert Counter(seen) == Counter(dict.fromkeys(ds.names, 2))  # still balanced without new_share


def test_group_weights():
    assert group_weights(["noisy", "hazy", "banding"], None) is None
    assert group_weights(["noisy", "hazy"], 0.5) is None  # nothing new: balanced
    assert group_weights(["banding", "moire"], 0.5) is None  # nothing built-in: balanced
    assert group_weights(["noisy", "hazy", "hazy+noisy", "banding"], 0.4) == pytest.approx([0.2, 0.2, 0.2, 0.4])


def test_new_share_sets_the_share_of_the_new_folder(extended):
    ds = BalancedPatchDataset(extended, "train", patch_size=32, new_share=0.5)
    seen = Counter(ds[i]["degradation"] for i in range(200))
    assert 80 <= seen["zz-new"] <= 120  # 100 expected
    assert len(seen) == 5 and min(seen.values()) >= 10  # the built-in ones keep 25 each on average


def test_daclip_rows_with_new_share(extended):
    plain = CaptionImageDataset(extended / "daclip_train.csv", 32)
    assert [plain[i]["degradation"] for i in range(len(plain))] == plain.degradations  # row i
    ds = CaptionImageDataset(extended / "daclip_train.csv", 32, new_share=0.75)
    seen = Counter(ds[i]["degradation"] for i in range(160))
    assert 100 <= seen["zz-new"] <= 140  # 120 expected, vs 32 of 160 by rows
    assert set(seen) == set(plain.degradations)


@pytest.mark.parametrize("value", [0, 1, 1.5, -0.1])
def test_new_share_range_is_checked(value):
    with pytest.raises(ConfigError, match=r"data\.new_share"):
        load_run_config("restoration", None, [f"data.new_share={value}"])
    with pytest.raises(ConfigError, match=r"data\.new_share"):
        load_run_config("daclip", None, [f"data.new_share={value}"])


def test_finetune_and_single_task_recipes_load():
    d = load_run_config("daclip", "daclip_finetune")
    assert d.data.new_share == 0.5 and d.model.pretrained == "daclip-vit-b-32"
    assert d.optim.lr < load_run_config("daclip").optim.lr and d.optim.warmup_steps > 0
    r = load_run_config("restoration", "irsde_finetune")
    assert r.init_from == "universal-ir" and r.data.new_share == 0.5 and r.data.degradations is None
    assert r.optim.lr < load_run_config("restoration").optim.lr and r.optim.warmup_steps > 0
    s = load_run_config("restoration", "irsde_single_task")
    assert s.network.name == "irsde-unet-plain" and not s.uses_embedder


def test_init_from_sets_the_start_of_either_trainer(capsys):
    from daclip_kit.cli.main import main

    assert main(["train", "daclip", "--config", "daclip_finetune", "--init-from", "runs/my-daclip",
                 "--print-config"]) == 0
    assert 'pretrained = "runs/my-daclip"' in capsys.readouterr().out
    assert main(["train", "restoration", "--config", "irsde_finetune", "--init-from", "runs/my-irsde",
                 "--print-config"]) == 0
    assert 'init_from = "runs/my-irsde"' in capsys.readouterr().out


def test_newest_model_folder_of_a_run(daclip, tmp_path):
    from daclip_kit.train.checkpoints import newest_model_folder
    from daclip_kit.train.config import DaClipModelConfig
    from daclip_kit.train.daclip import build_daclip

    run = tmp_path / "run"
    for step in (1, 20):
        shutil.copytree(daclip, run / "checkpoints" / f"step-{step:08d}" / "daclip")
    (run / "checkpoints" / "step-00000030").mkdir()  # incomplete: no model folder
    assert newest_model_folder(run, ("daclip",)) == run / "checkpoints" / "step-00000020" / "daclip"
    assert newest_model_folder(daclip, ("daclip",)) == daclip
    assert newest_model_folder(tmp_path / "nothing", ("daclip",)) is None
    import torch

    from daclip_kit.embedders.daclip.convert import load_daclip
    from daclip_kit.errors import CheckpointError

    model, saved = build_daclip(DaClipModelConfig(pretrained=str(run))), load_daclip(daclip)
    assert all(torch.equal(v, saved.state_dict()[k]) for k, v in model.state_dict().items())
    with pytest.raises(CheckpointError, match="neither a DA-CLIP folder nor a run folder"):
        build_daclip(DaClipModelConfig(pretrained=str(tmp_path / "run" / "checkpoints" / "step-00000030")))
