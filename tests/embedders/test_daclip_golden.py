"""DA-CLIP reproduces the outputs of the official implementation (daclip_tiny.golden.pt)."""

from __future__ import annotations

import pytest
import torch
from _embedders_testutil import official_checkpoint
from _tolerance import PARITY_ATOL

from daclip_kit.compat import load_official
from daclip_kit.embedders.daclip.loss import DaClipLoss, clip_loss

ATOL = PARITY_ATOL


@pytest.fixture(scope="module")
def fixture(golden):
    return golden("daclip_tiny.golden.pt")


@pytest.fixture(scope="module")
def model(fixture):
    ckpt = official_checkpoint(fixture["state_dict"])
    return load_official("daclip", ckpt, config=fixture["config"])


def close(a, b):
    torch.testing.assert_close(a, b, atol=ATOL, rtol=0)


def test_state_dict_keys_and_order_match_official(model, fixture):
    assert list(model.state_dict()) == list(fixture["state_dict"])
    assert model.visual is model.clip.visual


def test_encode_image_with_control(model, fixture):
    out, image = fixture["outputs"], fixture["inputs"]["image"]
    with torch.no_grad():
        emb = model.encode_image(image, control=True)
        normed = model.encode_image(image, control=True, normalize=True)
    close(emb.content, out["encode_image_control.image_features"])
    close(emb.degradation, out["encode_image_control.degra_features"])
    close(normed.content, out["encode_image_control_normalize.image_features"])
    close(normed.degradation, out["encode_image_control_normalize.degra_features"])


def test_encode_image_plain_is_the_frozen_clip(model, fixture):
    with torch.no_grad():
        plain = model.encode_image(fixture["inputs"]["image"], control=False)
    assert plain.degradation is None
    close(plain.content, fixture["outputs"]["encode_image_plain"])


def test_controller_pooled_and_hiddens(model, fixture):
    out = fixture["outputs"]
    with torch.no_grad():
        pooled, hiddens = model.encode_degradation(fixture["inputs"]["image"])
    close(pooled, out["visual_control.pooled"])
    lnd = torch.stack(hiddens).transpose(1, 2)  # [L, B, seq, w] -> [L, seq, B, w]
    close(lnd, out["visual_control.hiddens"])


def test_mirrored_control_order_matters(model, fixture):
    from daclip_kit.embedders.daclip.model import run_tower

    image = fixture["inputs"]["image"]
    with torch.no_grad():
        _, hiddens = model.encode_degradation(image)
        forward_order, _ = run_tower(model.visual, image, control=hiddens[::-1])
    expected = fixture["outputs"]["encode_image_control.image_features"]
    assert (forward_order - expected).abs().max() > 1e-2


def test_encode_text(model, fixture):
    out, inp = fixture["outputs"], fixture["inputs"]
    with torch.no_grad():
        close(model.encode_text(inp["caption_tokens"]), out["encode_text.caption"])
        close(model.encode_text(inp["caption_tokens"], normalize=True), out["encode_text.caption_normalize"])
        close(model.encode_text(inp["degradation_tokens"]), out["encode_text.degradation"])


def test_forward_and_loss(model, fixture):
    out, inp = fixture["outputs"], fixture["inputs"]
    tokens = torch.cat([inp["caption_tokens"], inp["degradation_tokens"]], dim=-1)
    with torch.no_grad():
        fwd = model(inp["image"], tokens)
        losses = DaClipLoss()(**fwd, output_dict=True)
    for key in ("image_features", "text_features", "image_degra_features", "text_degra_features", "logit_scale"):
        close(fwd[key], out[f"forward.{key}"])
    close(losses["contrastive_loss"], out["loss.contrastive_loss"])
    close(losses["degra_loss"], out["loss.degra_loss"])
    pair = DaClipLoss()(**fwd)
    assert isinstance(pair, tuple) and torch.equal(pair[0], losses["contrastive_loss"])


def test_clip_loss_by_hand():
    img = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    txt = torch.tensor([[0.6, 0.8], [0.0, 1.0]])
    scale = 10.0
    logits = scale * img @ txt.T  # [[6, 0], [8, 10]]
    row = -(torch.log_softmax(logits, 1)[0, 0] + torch.log_softmax(logits, 1)[1, 1]) / 2
    col = -(torch.log_softmax(logits, 0)[0, 0] + torch.log_softmax(logits, 0)[1, 1]) / 2
    torch.testing.assert_close(clip_loss(img, txt, scale), (row + col) / 2)
