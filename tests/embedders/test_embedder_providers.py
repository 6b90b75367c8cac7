"""The ``daclip``, ``clip`` and ``text`` providers: creation, embeddings, classification, files."""

from __future__ import annotations

import pytest
import torch
from _embedders_testutil import official_checkpoint, perturbed_daclip, tiny_config

from daclip_kit.embedders.preprocess import clip_preprocess
from daclip_kit.errors import CheckpointError, ConfigError, WeightsNotFoundError
from daclip_kit.factory import create_embedder
from daclip_kit.types import DEGRADATIONS


@pytest.fixture(scope="module")
def network():
    return perturbed_daclip()


@pytest.fixture
def images():
    return torch.rand(2, 3, 40, 56, generator=torch.Generator().manual_seed(0))


def daclip_embedder(network):
    from daclip_kit.embedders.daclip.provider import DaClipConfig, DaClipEmbedder

    return DaClipEmbedder(DaClipConfig(device="cpu"), network=network)


def test_daclip_embed_image_is_the_network_on_preprocessed_pixels(network, images):
    emb = daclip_embedder(network)
    with torch.no_grad():
        got = emb.embed_image(images)
        ref = network.encode_image(clip_preprocess(images, 32), control=True)
    assert got.content.shape == got.degradation.shape == (2, 32)
    torch.testing.assert_close(got.content, ref.content)
    torch.testing.assert_close(got.degradation, ref.degradation)
    assert not torch.allclose(got.content, got.degradation)


def test_daclip_classify_uses_degradation_embedding_and_learned_scale(network, images):
    emb = daclip_embedder(network)
    with torch.no_grad():
        result = emb.classify(images)
        e = emb.embed_image(images)
        text = torch.nn.functional.normalize(emb.embed_text(list(DEGRADATIONS)), dim=-1)
        deg = torch.nn.functional.normalize(e.degradation, dim=-1)
        expected = (network.logit_scale.exp() * deg @ text.T).softmax(-1)
    assert result.labels == DEGRADATIONS
    torch.testing.assert_close(result.probs, expected)
    assert emb.classification_scale() == pytest.approx(float(network.logit_scale.detach().exp()))
    top = result.top_k(3)
    assert len(top) == 2 and len(top[0]) == 3
    assert top[0][0][1] >= top[0][1][1] >= top[0][2][1]
    assert top[0][0][0] == DEGRADATIONS[int(expected[0].argmax())]


def test_daclip_save_and_from_pretrained_round_trip(network, images, tmp_path):
    from daclip_kit.embedders.daclip.provider import DaClipEmbedder

    emb = daclip_embedder(network)
    folder = emb.save_pretrained(tmp_path / "native")
    assert sorted(p.name for p in folder.iterdir()) == ["config.json", "model.safetensors"]
    with pytest.raises(CheckpointError, match="already exists"):
        emb.save_pretrained(folder)
    again = DaClipEmbedder.from_pretrained(folder, device="cpu")
    assert again.model.visual is again.model.clip.visual
    via_factory = create_embedder("daclip", weights=str(folder), device="cpu")
    with torch.no_grad():
        a, b, c = emb.embed_image(images), again.embed_image(images), via_factory.embed_image(images)
    assert torch.equal(a.content, b.content) and torch.equal(a.degradation, b.degradation)
    assert torch.equal(a.degradation, c.degradation)


def test_daclip_loads_an_official_file(network, images, tmp_path):
    path = tmp_path / "tiny_official.pt"
    torch.save(official_checkpoint(network.state_dict()), path)
    emb = create_embedder("daclip", weights=str(path), model_config=tiny_config(), device="cpu")
    with torch.no_grad():
        torch.testing.assert_close(emb.embed_image(images).content,
                                   daclip_embedder(network).embed_image(images).content)


def test_daclip_weights_errors(tmp_path, monkeypatch):
    monkeypatch.setenv("DACLIP_KIT_CACHE", str(tmp_path))
    with pytest.raises(WeightsNotFoundError, match="does not exist"):
        create_embedder("daclip", weights=str(tmp_path / "missing.pt"))
    with pytest.raises(WeightsNotFoundError) as info:
        create_embedder("daclip", weights="daclip-vit-b-32")
    assert str(tmp_path / "daclip_ViT-B-32.pt") in str(info.value)
    with pytest.raises(ConfigError, match="Did you mean"):
        create_embedder("daclip", weigths="x")


def test_text_provider_returns_text_embeddings(network, images):
    from daclip_kit.embedders.text import TextConfig, TextEmbedder

    emb = TextEmbedder(TextConfig(device="cpu", caption="a photo of a dog", degradation="hazy"), network=network)
    with torch.no_grad():
        got = emb.embed_image(images)
        cap = emb.embed_text(["a photo of a dog"])
        deg = emb.embed_text(["hazy"])
        per_image = emb.embed_texts(["a", "b"], ["rainy", "snowy"])
    assert got.content.shape == (2, 32)
    torch.testing.assert_close(got.content, cap.expand(2, -1))
    torch.testing.assert_close(got.degradation, deg.expand(2, -1))
    assert not torch.allclose(per_image.degradation[0], per_image.degradation[1])
    probs = emb.classify(images, ["rainy", "hazy"]).probs
    assert (probs[:, 1] > probs[:, 0]).all()  # its own degradation word matches best


def test_clip_provider_tiny_and_state_dict_file(images, tmp_path):
    emb = create_embedder("clip", model_config=tiny_config(), device="cpu")
    assert not emb.provides_degradation and emb.embed_dim == 32
    with torch.no_grad():
        e = emb.embed_image(images)
        ref = emb.model.encode_image(clip_preprocess(images, 32))
    assert e.degradation is None
    torch.testing.assert_close(e.content, ref)
    assert emb.classification_scale() == pytest.approx(float(emb.model.logit_scale.detach().exp()))
    torch.save(emb.model.state_dict(), tmp_path / "clip.pt")
    other = create_embedder("clip", model_config=tiny_config(), weights=str(tmp_path / "clip.pt"), device="cpu")
    with torch.no_grad():
        assert torch.equal(other.embed_image(images).content, e.content)


def test_clip_provider_errors(tmp_path):
    from daclip_kit.errors import UnknownComponentError

    with pytest.raises(UnknownComponentError, match="ViT-B-32"):
        create_embedder("clip", model="ViT-B-33")
    with pytest.raises(WeightsNotFoundError, match="does not exist"):
        create_embedder("clip", model_config=tiny_config(), weights=str(tmp_path / "nope.pt"))
    with pytest.raises(WeightsNotFoundError, match="laion2b_s34b_b79k"):  # HF_HUB_OFFLINE=1: no network
        create_embedder("clip", model="ViT-B-32", weights="laion2b_s34b_b79k")


def test_token_outside_vocabulary_is_a_clear_error():
    from daclip_kit.embedders.daclip.model import DaCLIP
    from daclip_kit.embedders.tokenizer import tokenize
    from daclip_kit.errors import ShapeError

    cfg = tiny_config()
    cfg["text_cfg"]["vocab_size"] = 1024
    model = DaCLIP.from_config(cfg)
    with pytest.raises(ShapeError, match="vocabulary of 1024"):
        model.encode_text(tokenize(["noisy"]))
