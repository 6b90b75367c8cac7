"""The demo takes its model through the one resolver: a training run brings its own DA-CLIP (its words
become the bars, offline, with no ``--daclip-weights``) and its sampler; a distilled student its K steps;
the page says which weights run."""

from __future__ import annotations

import dataclasses
import sys
from pathlib import Path

import numpy as np
import pytest

import daclip_kit
from daclip_kit.demo.core import DemoSettings, recipe_for, run_classify, run_restore, step_range, weights_summary

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "train"))

from _train_testutil import irsde_config, mini_root, tiny_daclip_folder

pytestmark = pytest.mark.usefixtures("one_thread")

#: Eleven words: the released ten and one of the run's own, so every bar must come from the run's DA-CLIP.
WORDS = (*daclip_kit.DEGRADATIONS, "underwater")
SDE = {"max_sigma": 30.0, "T": 50}  # not the recipe's T of 100: the run's sampler shows in the step range


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """``(run folder, an LQ image)``: one training step of a tiny U-Net conditioned on a tiny DA-CLIP
    with eleven words."""
    from daclip_kit.embedders.daclip.convert import load_daclip, save_daclip
    from daclip_kit.train.restoration import train_restoration

    root = mini_root(tmp_path_factory)
    base = tmp_path_factory.mktemp("demo-run")
    daclip = load_daclip(tiny_daclip_folder(tmp_path_factory))
    daclip.degradations = WORDS
    save_daclip(daclip, base / "eleven-words")
    train_restoration(irsde_config(root, base / "eleven-words", base / "run", max_steps=1,
                                   sampler={"name": "irsde", **SDE}))
    return base / "run", min((root / "val" / "noisy" / "LQ").glob("*.png"))


@pytest.fixture
def offline(tmp_path, monkeypatch):
    """No released weights anywhere, no downloads."""
    monkeypatch.setenv("DACLIP_KIT_CACHE", str(tmp_path / "empty-cache"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")


def test_a_run_folder_shows_its_own_daclips_words_and_restores_with_it(trained, offline, tmp_path):
    run, lq = trained
    own = sorted((run / "checkpoints").iterdir())[-1] / "daclip"
    settings = DemoSettings(weights=run, download=False, device="cpu")

    probabilities = run_classify(lq, "irsde-universal", settings=settings)
    assert tuple(sorted(probabilities)) == tuple(sorted(WORDS))  # eleven bars, the run's own words
    assert probabilities == pytest.approx(daclip_kit.classify(lq, weights=own, device="cpu"), abs=1e-6)

    result = run_restore(lq, "irsde-universal", None, 2, 0, None, settings=settings)
    assert result.probabilities == pytest.approx(probabilities, abs=1e-6)
    direct = daclip_kit.restore(lq, weights=run, steps=2, seed=0, device="cpu", download=False)
    np.testing.assert_array_equal(np.asarray(result.restored), np.asarray(direct.convert("RGB")))
    # the page names the weights that run, not the released model's "ten degradations"
    summary = weights_summary("irsde-universal", settings)
    assert summary == f"{run} (training run folder, step 1) with its own DA-CLIP (11 words: {', '.join(WORDS)})"
    assert "ten degradations" not in summary and f"Weights: {summary}." in result.message
    assert "with irsde-universal (irsde, 2 steps, seed 0)" in result.message
    # and it runs with the run's recorded sampler: T 50, not the recipe's 100
    assert SDE.items() <= dict(recipe_for("irsde-universal", weights=run).sampler_config).items()
    assert step_range("irsde-universal", weights=run) == (50, 50)

    # another DA-CLIP of other words does not fit the run: both are named
    other = tmp_path / "ten-words"
    from daclip_kit.embedders.daclip.convert import load_daclip, save_daclip

    save_daclip(load_daclip(own), other)
    ten = load_daclip(other)
    ten.degradations = daclip_kit.DEGRADATIONS
    save_daclip(ten, other, overwrite=True)
    with pytest.raises(daclip_kit.ConfigError,
                       match=r"does not fit .* Leave out embedder_weights= to use the model.s own DA-CLIP"):
        run_classify(lq, "irsde-universal", settings=dataclasses.replace(settings, embedder_weights=other))


def test_the_page_draws_every_word_and_names_the_weights(trained, offline, tmp_path):
    from daclip_kit.demo import app

    run, lq = trained
    settings = DemoSettings(weights=run, download=False, device="cpu")
    demo = app.build_demo(settings, output_dir=tmp_path / "out")
    widgets = {c.elem_id: c for c in demo.blocks.values() if getattr(c, "elem_id", None)}
    assert widgets["probabilities"].num_top_classes is None  # every bar, eleven here
    summary = weights_summary("irsde-universal", settings)
    assert widgets["model"].info == summary and "11 words" in summary
    assert widgets["weights"].value == f"**Running your weights:** {app.plain(summary)}"
    assert widgets["steps"].value == 50 and widgets["steps"].maximum == 50  # the run's sampler
    probabilities, status = app.on_image(str(lq), "irsde-universal", settings)
    assert len(probabilities) == 11 and "Press **Restore**" in status
    info, _sampler, steps = app.on_model("irsde-universal-fast", settings)
    assert info.info == weights_summary("irsde-universal-fast", settings) and steps.value == 10


def test_a_student_brings_its_k_step_sampler(tiny_models, photo, tmp_path):
    """A distilled student is a native folder recording its sampler (``num_sample_steps`` K)."""
    import torch

    from daclip_kit.model import daclip_record

    torch.manual_seed(0)
    net = daclip_kit.create_backbone("irsde-unet", nf=32, ch_mult=(1, 1), context_dim=32)
    sampler = {"name": "mrs", "config": {"num_sample_steps": 3}}
    student = daclip_kit.save_network(net, tmp_path / "student", name="irsde-unet", sampler=sampler,
                                      daclip=daclip_record(str(tiny_models["daclip"]), tiny_models["daclip"]))
    recipe = recipe_for("irsde-universal", weights=student)
    assert (recipe.sampler, dict(recipe.sampler_config)) == ("mrs", {"num_sample_steps": 3})
    assert step_range("irsde-universal", weights=student)[0] == 3
    assert recipe_for("irsde-universal", "irsde", weights=student).sampler == "irsde"  # the page may pick another

    calls = []
    settings = DemoSettings(weights=student, download=False, device="cpu")  # its DA-CLIP comes with it
    result = run_restore(photo, "irsde-universal", settings=settings, progress=lambda i, n: calls.append(n))
    assert calls == [3, 3, 3] and "(mrs, 3 steps, seed 0)" in result.message
    assert set(result.probabilities) == set(daclip_kit.DEGRADATIONS)

    with pytest.raises(daclip_kit.ConfigError, match="is a DA-CLIP, not a restoration network; restart the demo"):
        recipe_for("irsde-universal", weights=tiny_models["daclip"])
