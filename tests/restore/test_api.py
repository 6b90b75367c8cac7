"""The one-call API: daclip_kit.restore / classify on paths, PIL images, numpy arrays and tensors."""

import numpy as np
import pytest
import torch
from PIL import Image

import daclip_kit

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture
def models(tiny_models):
    return {"weights": tiny_models["weights"], "embedder_weights": tiny_models["daclip"], "device": "cpu", "steps": 2}


def test_restore_returns_the_kind_it_was_given(models, tmp_path):
    rng = np.random.default_rng(0)
    arr = rng.integers(0, 256, (20, 28, 3), dtype=np.uint8)
    Image.fromarray(arr).save(tmp_path / "in.png")
    from_path = daclip_kit.restore(tmp_path / "in.png", **models)
    from_pil = daclip_kit.restore(Image.fromarray(arr), **models)
    from_uint8 = daclip_kit.restore(arr, **models)
    from_float = daclip_kit.restore(arr.astype(np.float32) / 255, **models)
    chw = torch.from_numpy(arr).permute(2, 0, 1).float() / 255
    from_chw = daclip_kit.restore(chw, **models)
    from_batch = daclip_kit.restore(torch.stack([chw, chw]), **models)
    assert isinstance(from_path, Image.Image) and from_path.size == (28, 20)
    assert isinstance(from_pil, Image.Image)
    assert from_uint8.dtype == np.uint8 and from_uint8.shape == (20, 28, 3)
    assert from_float.dtype == np.float32 and from_float.min() >= 0 and from_float.max() <= 1
    assert from_chw.shape == (3, 20, 28) and from_batch.shape == (2, 3, 20, 28)
    # one seeding rule: the same image gives the same result whatever its kind or batch
    np.testing.assert_array_equal(np.asarray(from_path), from_uint8)
    np.testing.assert_array_equal(np.asarray(from_pil), from_uint8)
    torch.testing.assert_close(from_batch[0], from_chw, atol=2e-5, rtol=0)
    torch.testing.assert_close(from_batch[1], from_chw, atol=2e-5, rtol=0)
    with pytest.raises(daclip_kit.InputError, match="numpy image must be"):
        daclip_kit.restore(np.zeros((4, 4, 5)), **models)
    with pytest.raises(daclip_kit.InputError, match="Cannot restore a list"):
        daclip_kit.restore([1, 2], **models)


def test_classify_returns_probabilities_per_label(models, tmp_path):
    img = np.random.default_rng(1).integers(0, 256, (24, 24, 3), dtype=np.uint8)
    probs = daclip_kit.classify(img, weights=models["embedder_weights"], device="cpu")
    assert set(probs) == set(daclip_kit.DEGRADATIONS) and sum(probs.values()) == pytest.approx(1, abs=1e-5)
    assert list(probs.values()) == sorted(probs.values(), reverse=True)
    batch = daclip_kit.classify(torch.rand(2, 3, 24, 24), weights=models["embedder_weights"], labels=["a", "b"],
                                device="cpu")
    assert isinstance(batch, list) and len(batch) == 2 and set(batch[0]) == {"a", "b"}


def test_sampler_changes_reuse_the_loaded_networks_and_classify_shares_da_clip(models):
    from daclip_kit import api

    img = torch.rand(3, 16, 16)
    cfg = {k: v for k, v in models.items() if k != "steps"}
    daclip_kit.restore(img, **cfg, steps=2)
    built_before = api._built.cache_info().currsize
    daclip_kit.restore(img, **cfg, sampler="mrs", steps=3)
    daclip_kit.restore(img, **cfg, sampler="heun", steps=2, settings={"sampler.solver_type": "ode"})
    assert api._built.cache_info().currsize == built_before  # no network was loaded again
    embedders = len(api._EMBEDDERS)
    daclip_kit.classify(img, weights=models["embedder_weights"], device="cpu")
    assert len(api._EMBEDDERS) == embedders  # the restore pipeline's DA-CLIP answered



def test_classify_first_then_restore_builds_da_clip_once(tiny_models, monkeypatch):
    from daclip_kit import api

    monkeypatch.setattr(api, "_EMBEDDERS", {})
    api._built.cache_clear()
    img = torch.rand(3, 16, 16)
    daclip_kit.classify(img, weights=tiny_models["daclip"], device="cpu")
    classifier = api._embedder("daclip", str(tiny_models["daclip"]), "cpu", None)
    daclip_kit.restore(img, weights=tiny_models["weights"], embedder_weights=tiny_models["daclip"], device="cpu",
                       steps=2)
    built, pipe = api._pipeline("irsde-universal", tiny_models["weights"], tiny_models["daclip"], "cpu", True, (),
                                {"sampler": "mrs", "steps": 3})
    again = api._pipeline("irsde-universal", tiny_models["weights"], tiny_models["daclip"], "cpu", True, (),
                          {"steps": 3, "sampler": "mrs"})[1]
    assert built.pipeline.embedder is classifier and len(api._EMBEDDERS) == 1  # DA-CLIP was built once
    assert again is pipe and pipe.embedder is classifier  # one pipeline per sampler setting, same networks
    api._built.cache_clear()

def test_fast_path_options_reach_the_pipeline(models):
    img = torch.rand(3, 40, 48, generator=torch.Generator().manual_seed(3))
    fp32 = daclip_kit.restore(img, **models)
    bf16 = daclip_kit.restore(img, **models, precision="bf16")
    assert not torch.equal(bf16, fp32) and bf16.shape == fp32.shape  # autocast changed the arithmetic
    # a memory budget between the tiled and the whole image's estimate makes the run tile
    from daclip_kit.core.pipeline import BUDGET_FRACTION
    from daclip_kit.pipelines.build import build_pipeline

    big = torch.rand(3, 160, 192, generator=torch.Generator().manual_seed(4))
    pipe = build_pipeline("irsde-universal", weights=models["weights"], embedder_weights=models["embedder_weights"],
                          device="cpu").pipeline
    whole, tiles = pipe.estimate_memory(1, 160, 192), pipe.estimate_memory(1, 160, 192, tile=96)
    assert tiles < whole
    budget = int((whole + tiles) / 2 / BUDGET_FRACTION)
    untiled = daclip_kit.restore(big, **models)
    tiled = daclip_kit.restore(big, **models, max_memory=budget)
    assert tiled.shape == untiled.shape and not torch.equal(tiled, untiled)
    with pytest.raises(daclip_kit.errors.ConfigError, match="precision"):
        daclip_kit.restore(img, **models, precision="fp8")


def test_restore_of_a_path_or_pil_image_keeps_its_mode_and_alpha(models, tmp_path):
    rng = np.random.default_rng(1)
    gray = rng.integers(0, 256, (20, 28), dtype=np.uint8)
    rgba = rng.integers(0, 256, (20, 28, 4), dtype=np.uint8)
    Image.fromarray(gray).save(tmp_path / "gray.png")
    Image.fromarray(np.full((20, 28), 30000, dtype=np.uint16)).save(tmp_path / "gray16.png")
    assert daclip_kit.restore(tmp_path / "gray.png", **models).mode == "L"
    assert daclip_kit.restore(tmp_path / "gray16.png", **models).mode == "I;16"
    out = daclip_kit.restore(Image.fromarray(rgba, mode="RGBA"), **models)
    assert out.mode == "RGBA" and np.array_equal(np.asarray(out)[..., 3], rgba[..., 3])
    assert daclip_kit.restore(Image.fromarray(gray), **models).mode == "L"
