"""The demo's functions, called directly with tiny models (no Gradio, no browser)."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

import daclip_kit
from daclip_kit.cli.main import _flags_of, build_parser
from daclip_kit.demo.core import (
    DemoSettings,
    load_input,
    make_examples,
    model_choices,
    run_classify,
    run_restore,
    sampler_choices,
    step_range,
)
from daclip_kit.options import verb_flags

pytestmark = pytest.mark.usefixtures("one_thread")


def test_run_restore_is_the_library_call(settings, tiny_models, photo):
    calls = []
    restored, probabilities, message = run_restore(photo, "irsde-universal", None, 2, 3, None, settings=settings,
                                                   progress=lambda done, total: calls.append((done, total)))
    assert isinstance(restored, Image.Image) and restored.mode == "RGB" and restored.size == (40, 28)
    assert calls == [(1, 2), (2, 2)]
    # what DA-CLIP thinks: the ten degradation words, most likely first, a distribution
    assert set(probabilities) == set(daclip_kit.DEGRADATIONS)
    assert list(probabilities.values()) == sorted(probabilities.values(), reverse=True)
    assert sum(probabilities.values()) == pytest.approx(1, abs=1e-5)
    assert message.startswith("Restored 40x28 in ") and "with irsde-universal (irsde, 2 steps, seed 3)" in message
    best = next(iter(probabilities))
    assert f"DA-CLIP sees: {best}" in message and "on cpu" in message
    # the demo shows exactly what the one-call API gives
    direct = daclip_kit.restore(photo, weights=tiny_models["weights"], embedder_weights=tiny_models["daclip"],
                                steps=2, seed=3, device="cpu")
    np.testing.assert_array_equal(np.asarray(restored), np.asarray(direct))
    direct_probs = daclip_kit.classify(photo, weights=tiny_models["daclip"], device="cpu")
    assert probabilities == pytest.approx(direct_probs, abs=1e-6)
    assert run_classify(photo, "irsde-universal", settings=settings) == pytest.approx(direct_probs, abs=1e-6)


def test_seed_sampler_steps_and_tiles(settings, photo):
    first = np.asarray(run_restore(photo, "irsde-universal", "irsde", 2, 0, None, settings=settings).restored)
    again = np.asarray(run_restore(photo, "irsde-universal", "irsde", 2, 0, None, settings=settings).restored)
    other = np.asarray(run_restore(photo, "irsde-universal", "irsde", 2, 1, None, settings=settings).restored)
    np.testing.assert_array_equal(first, again)
    assert np.abs(first.astype(int) - other.astype(int)).max() > 0

    calls = []
    result = run_restore(photo, "irsde-universal", "mrs", 3, 0, None, settings=settings,
                         progress=lambda done, total: calls.append((done, total)))
    assert calls[-1] == (3, 3) and "(mrs, 3 steps, seed 0)" in result.message
    # widgets hand numbers over as floats or text; tile 0 means the whole image
    assert "tiles" not in run_restore(photo, "irsde-universal", "irsde", 2.0, "0", 0, settings=settings).message
    tiled = run_restore(photo, "irsde-universal-fast", None, None, 0, 32, settings=settings)
    assert tiled.restored.size == (40, 28)
    assert "with irsde-universal-fast (irsde, 10 steps, seed 0, tiles of 32)" in tiled.message


def test_inputs_of_every_kind_and_their_limits(settings, photo, tmp_path):
    arr = np.asarray(Image.open(photo))
    assert tuple(load_input(photo, settings).shape) == (3, 28, 40)
    assert tuple(load_input(str(photo), settings).shape) == (3, 28, 40)
    assert tuple(load_input(Image.open(photo), settings).shape) == (3, 28, 40)
    assert tuple(load_input(arr[..., 0], settings).shape) == (3, 28, 40)  # grayscale
    assert run_restore(arr, "irsde-universal", None, 1, 0, None, settings=settings).restored.size == (40, 28)

    with pytest.raises(daclip_kit.InputError, match="No image: upload a photo or pick one of the examples"):
        run_restore(None, settings=settings)
    small = DemoSettings(weights=settings.weights, embedder_weights=settings.embedder_weights, max_pixels=1000)
    with pytest.raises(daclip_kit.InputError, match=r"40x28 \(1120 pixels\), above this demo's limit of 1000 pixels;"
                                                   r" .* larger --max-pixels"):
        run_restore(photo, settings=small)
    with pytest.raises(daclip_kit.InputError, match="above this demo's limit"):
        run_classify(np.zeros((40, 40, 3), np.uint8), settings=small)
    tiny_upload = DemoSettings(max_upload_mb=0.0001)
    with pytest.raises(daclip_kit.InputError, match=r"above this demo's limit of 0.0001 MB; .* --max-upload-mb"):
        load_input(photo, tiny_upload)
    (tmp_path / "not-an-image.png").write_text("hello")
    with pytest.raises(daclip_kit.InputError, match="Cannot read the upload as an image"):
        load_input(tmp_path / "not-an-image.png", settings)
    with pytest.raises(daclip_kit.InputError, match="does not exist; upload it again"):
        load_input(tmp_path / "gone.png", settings)


@pytest.mark.parametrize("steps, seed, tile, message", [
    (0, 0, None, "steps must be at least 1, got 0"),
    (2.5, 0, None, "steps must be a whole number, got 2.5"),
    (2, -1, None, "seed must be at least 0, got -1"),
    (2, "x", None, "seed must be a whole number, got 'x'"),
    (2, 0, -8, "tile must be at least 0, got -8"),
    (2, 0, 16, r"tile must be 0 \(the whole image at once\) or at least 32, got 16"),
])
def test_bad_numbers_are_one_line_errors(settings, photo, steps, seed, tile, message):
    with pytest.raises(daclip_kit.ConfigError, match=message):
        run_restore(photo, "irsde-universal", None, steps, seed, tile, settings=settings)


def test_settings_are_checked():
    with pytest.raises(daclip_kit.ConfigError, match="--max-pixels must be at least 1"):
        DemoSettings(max_pixels=0)
    with pytest.raises(daclip_kit.ConfigError, match="--max-upload-mb must be above 0"):
        DemoSettings(max_upload_mb=0)
    with pytest.raises(daclip_kit.ConfigError, match="--steps must be at least 1"):
        DemoSettings(steps=0)


def test_unknown_model_or_sampler_lists_the_registered_ones(settings, photo):
    with pytest.raises(daclip_kit.UnknownComponentError, match=r"Unknown model 'irsde-univresal'.*Did you mean"):
        run_restore(photo, "irsde-univresal", settings=settings)
    with pytest.raises(daclip_kit.UnknownComponentError, match=r"Unknown sampler 'ddim'.*irsde"):
        run_restore(photo, "irsde-universal", "ddim", settings=settings)


def test_choices_come_from_the_registries():
    assert {"irsde-universal", "irsde-universal-fast", "wild-ir"} <= set(model_choices())
    assert model_choices() == list(daclip_kit.get_registry("pipelines").names())
    assert model_choices(DemoSettings(model="nafnet-gopro-w64"))[0] == "nafnet-gopro-w64"
    assert sampler_choices() == list(daclip_kit.get_registry("samplers").names())
    assert {"irsde", "mrs", "heun"} <= set(sampler_choices())
    assert step_range("irsde-universal") == (100, 100)
    assert step_range("irsde-universal-fast") == (10, 100)
    assert step_range("irsde-universal", "heun") == (100, 100)
    assert step_range("nafnet-gopro-w64") is None


def test_missing_weights_say_which_file_goes_where(photo, tmp_path, monkeypatch):
    monkeypatch.setenv("DACLIP_KIT_CACHE", str(tmp_path / "empty-cache"))
    offline = DemoSettings(download=False, weights_dirs=(tmp_path,))
    parser = build_parser(["demo"])
    demo_flags = _flags_of(parser, parser.parse_args(["demo"]).func)  # as the CLI sets them for `demo`
    # under `daclip-kit demo`, whose flags the messages name (from Python they name the keywords)
    with verb_flags(demo_flags), pytest.raises(daclip_kit.WeightsNotFoundError) as info:
        run_restore(photo, "irsde-universal", settings=offline)
    text = str(info.value)
    # both missing files in one sentence, before any work: which file, where it goes, how to restart
    assert text.startswith("The network and DA-CLIP weights are missing: downloads are off (--no-download)")
    assert "universal-ir.pth" in text and "daclip_ViT-B-32.pt" in text
    assert f"in the cache {tmp_path / 'empty-cache'};" in text and str(tmp_path) in text
    assert text.endswith("restart it with --weights-dir DIR (a folder holding the files) or --weights FILE "
                         "--daclip-weights FILE.")
    assert "\n" not in text
    with pytest.raises(daclip_kit.WeightsNotFoundError, match=r"^The DA-CLIP weights are missing: .*daclip_ViT-L-14\.pt"
                                                               r".*or --daclip-weights FILE\.$"):
        run_classify(photo, "wild-ir", settings=DemoSettings(download=False, weights=photo))


def test_named_weights_come_from_weights_dir(tiny_models, photo, tmp_path, monkeypatch):
    """A plugin's pipeline whose network file lies in --weights-dir: the demo offers it and finds it."""
    import torch

    from daclip_kit.specs import PipelineSpec, WeightSpec

    class TinyPipeline:
        @daclip_kit.hookimpl
        def daclip_kit_register_weights(self):
            return [WeightSpec(name="demo-tiny-unet", filename="demo_tiny_unet.pth", model="backbone:irsde-unet")]

        @daclip_kit.hookimpl
        def daclip_kit_register_pipelines(self):
            return [PipelineSpec(name="demo-tiny", backbone="irsde-unet",
                                 backbone_config={"nf": 32, "ch_mult": [1, 1], "context_dim": 32},
                                 weights="demo-tiny-unet", embedder="daclip", embedder_weights="daclip-vit-b-32",
                                 sampler="irsde", steps=2)]

    daclip_kit.register_plugin(TinyPipeline(), name="demo-tiny-plugin")
    monkeypatch.setenv("DACLIP_KIT_CACHE", str(tmp_path / "empty-cache"))
    net = daclip_kit.load_network("irsde-unet", tiny_models["weights"])
    (tmp_path / "weights").mkdir()
    torch.save(net.state_dict(), tmp_path / "weights" / "demo_tiny_unet.pth")
    assert "demo-tiny" in model_choices()
    found = DemoSettings(embedder_weights=tiny_models["daclip"], weights_dirs=(tmp_path / "weights",),
                         download=False, device="cpu")
    result = run_restore(photo, "demo-tiny", settings=found)
    assert result.restored.size == (40, 28) and "(irsde, 2 steps, seed 0)" in result.message
    with pytest.raises(daclip_kit.WeightsNotFoundError, match=r"demo_tiny_unet\.pth"):
        run_restore(photo, "demo-tiny", settings=DemoSettings(embedder_weights=tiny_models["daclip"], download=False))


def test_examples_are_bundled_photos_with_our_degradations(tmp_path):
    examples = make_examples(tmp_path / "ex", longest=64)
    assert [(e.photo, e.degradation) for e in examples][:3] == [
        ("astronaut", "noisy"), ("chelsea", "motion-blurry"), ("coffee", "low-light")]
    for e in examples:
        assert e.path.parent == tmp_path / "ex" and e.path.name == f"{e.photo}-{e.degradation}.png"
        assert e.degradation in daclip_kit.DEGRADATIONS and e.label == f"{e.photo}, {e.degradation}"
        with Image.open(e.path) as im:
            assert max(im.size) == 64 and im.mode == "RGB"
    # the degradation is really applied, and the same seed writes the same pixels
    import skimage.data

    clean = np.asarray(Image.fromarray(skimage.data.astronaut()).resize((64, 64), Image.BOX), dtype=float)
    noisy = np.asarray(Image.open(examples[0].path), dtype=float)
    assert 25 < (noisy - clean).std() < 70  # sigma 50 noise, clipped
    again = make_examples(tmp_path / "again", longest=64)
    for a, b in zip(examples, again, strict=True):
        np.testing.assert_array_equal(np.asarray(Image.open(a.path)), np.asarray(Image.open(b.path)))
    with pytest.raises(daclip_kit.ConfigError, match="Unknown example photo 'moon'"):
        make_examples(tmp_path / "bad", pairs=(("moon", "noisy"),))


def test_restore_reports_how_the_image_looks_before_and_after_without_ground_truth(settings, tmp_path):
    """NIQE (needs two 96 px blocks) and CLIP-IQA (with the model's own DA-CLIP) of input and result."""
    from daclip_kit.io import read_image
    from daclip_kit.metrics import clipiqa, niqe

    rng = np.random.default_rng(0)
    big = tmp_path / "big.png"
    Image.fromarray(rng.integers(0, 256, size=(100, 200, 3), dtype=np.uint8)).save(big)
    result = run_restore(big, "irsde-universal", None, 1, 0, None, settings=settings)
    expected = niqe(read_image(big))[0]
    assert f"Without ground truth: NIQE {expected:.2f} -> " in result.message
    assert "(lower is better), CLIP-IQA " in result.message
    embedder = daclip_kit.create_embedder("daclip", weights=str(settings.embedder_weights), device="cpu")
    assert f"CLIP-IQA {float(clipiqa(read_image(big), embedder=embedder)[0]):.2f} -> " in result.message
    tiny = tmp_path / "tiny.png"
    Image.fromarray(rng.integers(0, 256, size=(40, 40, 3), dtype=np.uint8)).save(tiny)
    message = run_restore(tiny, "irsde-universal", None, 1, 0, None, settings=settings).message
    assert "NIQE" not in message and "Without ground truth: CLIP-IQA " in message  # too small for NIQE
