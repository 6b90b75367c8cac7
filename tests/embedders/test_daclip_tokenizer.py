"""The tokenizer reproduces open_clip's official token ids (tokenizer.golden.json)."""

from __future__ import annotations

import json

import pytest

from daclip_kit.embedders.tokenizer import EOT_TOKEN, SOT_TOKEN, split_title, tokenize
from daclip_kit.errors import InputError
from daclip_kit.types import DEGRADATIONS


@pytest.fixture(scope="module")
def golden_tokens(reference_dir):
    return json.loads((reference_dir / "tokenizer.golden.json").read_text())


def test_special_tokens(golden_tokens):
    assert (golden_tokens["sot_token"], golden_tokens["eot_token"]) == (SOT_TOKEN, EOT_TOKEN)


def test_every_item_matches(golden_tokens):
    items = golden_tokens["items"]
    ids = tokenize([it["text"] for it in items], context_length=77)
    assert ids.shape == (len(items), 77)
    for row, item in zip(ids.tolist(), items, strict=True):
        n = len(item["tokens"])
        assert row[:n] == item["tokens"], item["text"]
        assert all(t == golden_tokens["pad_token"] for t in row[n:]), item["text"]


def test_degradation_words_are_the_official_ones(golden_tokens):
    assert [it["text"] for it in golden_tokens["items"][:10]] == list(DEGRADATIONS)


def test_csv_title_split(golden_tokens):
    assert list(split_title(golden_tokens["csv_title_example"])) == golden_tokens["csv_title_split"]
    with pytest.raises(InputError):
        split_title("no separator here")


def test_long_text_is_truncated_with_eot():
    ids = tokenize("word " * 200, context_length=77)
    assert ids.shape == (1, 77) and ids[0, 0] == SOT_TOKEN and ids[0, -1] == EOT_TOKEN
