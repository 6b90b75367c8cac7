"""Fixtures of the training tests: the mini data set and a tiny DA-CLIP folder (built once)."""

from __future__ import annotations

import pytest
from _train_testutil import mini_root, tiny_daclip_folder


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    """The mini universal data set (``_train_testutil.mini_root``)."""
    return mini_root(tmp_path_factory)


@pytest.fixture(scope="module")
def daclip(tmp_path_factory):
    """A tiny random DA-CLIP native folder (``_train_testutil.tiny_daclip_folder``)."""
    return tiny_daclip_folder(tmp_path_factory)
