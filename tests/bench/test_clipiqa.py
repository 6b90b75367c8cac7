"""Zero-shot CLIP-IQA on a DA-CLIP's plain CLIP towers, and ``daclip-kit score --metrics clipiqa`` without ``--gt``."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from PIL import Image

from daclip_kit import create_embedder
from daclip_kit.cli.main import main
from daclip_kit.embedders.tokenizer import tokenize
from daclip_kit.metrics.clip_quality import clipiqa
from daclip_kit.metrics.meters import needs_reference

TINY = {"embed_dim": 16, "vision_cfg": {"image_size": 32, "layers": 1, "width": 32, "patch_size": 16,
                                        "head_width": 16},
        "text_cfg": {"context_length": 77, "vocab_size": 49408, "width": 16, "heads": 1, "layers": 1}}


@pytest.fixture(scope="module")
def embedder():
    torch.manual_seed(0)
    return create_embedder("daclip", model_config=TINY, device="cpu")


def test_clipiqa_is_the_good_photo_probability_of_the_plain_clip(embedder):
    images = torch.rand(3, 3, 40, 48, generator=torch.Generator().manual_seed(1))
    scores = clipiqa(images, embedder=embedder)
    # the same from open_clip's own CLIP inside the DA-CLIP (no controller), as CLIP-IQA computes it
    with torch.no_grad():
        clip = embedder.model.clip
        image = torch.nn.functional.normalize(clip.encode_image(embedder.preprocess(images)), dim=-1)
        text = torch.nn.functional.normalize(clip.encode_text(tokenize(["Good photo.", "Bad photo."])), dim=-1)
        expected = (100 * image @ text.t()).softmax(-1)[:, 0].double()
    assert scores.shape == (3,) and scores.dtype == torch.float64
    torch.testing.assert_close(scores, expected, atol=1e-6, rtol=0)
    assert bool(((scores >= 0) & (scores <= 1)).all())
    swapped = clipiqa(images, embedder=embedder, prompts=("Bad photo.", "Good photo."))
    torch.testing.assert_close(swapped, 1 - scores, atol=1e-6, rtol=0)
    assert needs_reference("clipiqa") is False


def test_score_clipiqa_and_niqe_without_ground_truth(embedder, tmp_path, capsys):
    folder = tmp_path / "pred"
    folder.mkdir()
    rng = np.random.default_rng(0)
    arrays = [rng.integers(0, 256, (96, 192, 3), dtype=np.uint8) for _ in range(2)]
    for i, arr in enumerate(arrays):
        Image.fromarray(arr).save(folder / f"im{i}.png")
    daclip = embedder.save_pretrained(tmp_path / "daclip")
    assert main(["score", "--pred", str(folder), "--metrics", "niqe,clipiqa", "--daclip-weights", str(daclip),
                 "--crop-border", "0", "--device", "cpu", "--no-download", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    expected = clipiqa(torch.stack([torch.from_numpy(a).permute(2, 0, 1).float() / 255 for a in arrays]),
                       embedder=embedder)
    assert [r["clipiqa"] for r in data["images"]] == pytest.approx(expected.tolist(), abs=1e-6)
    assert all("niqe" in r for r in data["images"]) and data["notes"] == []
