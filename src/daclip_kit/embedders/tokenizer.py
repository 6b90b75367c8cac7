"""Text tokenisation for CLIP text towers (open_clip's byte-level BPE ``SimpleTokenizer``).

Texts are cleaned (ftfy, HTML unescape, whitespace, lower case), wrapped in SOT (49406) / EOT
(49407) and zero-padded to ``context_length``; over-long texts are cut and end with EOT.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from ..errors import InputError

SOT_TOKEN = 49406
EOT_TOKEN = 49407


def tokenize(texts: str | Sequence[str], context_length: int = 77) -> torch.Tensor:
    """Token ids of ``texts`` as a ``(N, context_length)`` LongTensor (open_clip ``tokenize``)."""
    import open_clip

    if isinstance(texts, str):
        texts = [texts]
    return open_clip.tokenize(list(texts), context_length=context_length)


def split_title(title: str) -> tuple[str, str]:
    """Split a DA-CLIP CSV title ``"<caption>: <degradation>"`` at the last ``": "``.

    The official code splits at every ``": "``; the last one is used here so that a caption
    containing ``": "`` still yields the degradation word.
    """
    caption, sep, degradation = title.rpartition(": ")
    if not sep:
        raise InputError(f"Title {title!r} has no ': ' separating the caption from the degradation word.")
    return caption, degradation
