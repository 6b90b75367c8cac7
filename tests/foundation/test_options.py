"""Messages name a setting as the reader can change it: the running verb's flag under the CLI, the
keyword from Python (``daclip_kit.options``)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

import daclip_kit
from daclip_kit.cli.main import main
from daclip_kit.options import option, verb_flags


def test_a_setting_reads_as_the_verbs_flag_only_under_a_verb_that_has_it():
    assert option("max_memory", "BYTES") == "max_memory=BYTES"
    assert option("overwrite") == "overwrite=True"
    assert option("daclip_weights", "PATH", python="embedder_weights=PATH") == "embedder_weights=PATH"
    with verb_flags({"--max-memory", "--overwrite", "--daclip-weights"}):
        assert option("max_memory", "BYTES") == "--max-memory BYTES"
        assert option("overwrite") == "--overwrite"
        assert option("daclip_weights", "PATH", python="embedder_weights=PATH") == "--daclip-weights PATH"
        assert option("precision", "bf16") == "precision=bf16"  # not a flag of this verb
        with verb_flags({"--precision"}):
            assert option("precision", "bf16") == "--precision bf16"
            assert option("overwrite") == "overwrite=True"
        assert option("overwrite") == "--overwrite"
    assert option("overwrite") == "overwrite=True"


@pytest.fixture
def plain_unet(tmp_path):
    folder = tmp_path / "plain"
    daclip_kit.save_network(daclip_kit.create_backbone("irsde-unet-plain", nf=32, ch_mult=(1, 1)), folder,
                            name="irsde-unet-plain")
    image = tmp_path / "in.png"
    Image.fromarray(np.random.default_rng(0).integers(0, 256, (64, 64, 3), dtype=np.uint8)).save(image)
    return folder, image


def test_restore_names_its_own_flags_and_python_its_keywords_for_a_budget_that_does_not_fit(
        plain_unet, tmp_path, capsys):
    folder, image = plain_unet
    assert main(["restore", str(image), "-o", str(tmp_path / "out"), "--model", "irsde-unet-plain", "--weights",
                 str(folder), "--steps", "1", "--device", "cpu", "--max-memory", "1K"]) == 1
    err = capsys.readouterr().err
    assert "does not fit" in err
    for flag in ("--max-memory BYTES", "--precision bf16", "--batch N"):
        assert flag in " ".join(err.split()), flag

    from daclip_kit.core.pipeline import RestorationPipeline, RestoreOptions

    net = daclip_kit.create_backbone("irsde-unet-plain", nf=32, ch_mult=(1, 1)).eval()
    pipe = RestorationPipeline(denoiser=net, sampler=daclip_kit.create_sampler("irsde", T=2))
    with pytest.raises(daclip_kit.InputError) as caught:
        pipe.plan_tile(1, 512, 512, RestoreOptions(max_memory=1000), torch.device("cpu"), "fp32")
    message = str(caught.value)
    assert "max_memory=BYTES" in message and "precision=bf16" in message and "--" not in message


def test_score_names_its_flags_and_score_folders_its_keywords_when_ground_truth_is_missing(plain_unet, capsys):
    _, image = plain_unet
    assert main(["score", "--pred", str(image.parent), "--metrics", "psnr"]) != 0
    err = " ".join(capsys.readouterr().err.split())
    assert "--gt DIR" in err and "--metrics niqe,clipiqa" in err

    from daclip_kit.metrics.score import score_folders

    with pytest.raises(daclip_kit.ConfigError) as caught:
        score_folders(pred=image.parent, metrics=["psnr"])
    message = str(caught.value)
    assert "gt=DIR" in message and "metrics=['niqe', 'clipiqa']" in message and "--" not in message
