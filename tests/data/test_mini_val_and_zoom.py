"""``data mini``: a val split that does not depend on the training options, and ``--zoom``."""

from __future__ import annotations

import pytest
import torch

from daclip_kit.cli.main import main
from daclip_kit.data.mini import PHOTOS, build_mini, random_crop
from daclip_kit.degradations.base import Draw
from daclip_kit.errors import ConfigError
from daclip_kit.io import read_image

TYPES = ("noisy", "hazy")


def _files(root, split):
    return {p.relative_to(root): p.read_bytes() for p in sorted((root / split).rglob("*.png"))}


def test_val_split_is_the_same_whatever_the_training_split(tmp_path):
    a = tmp_path / "a"
    b = tmp_path / "b"
    build_mini(a, size=24, per_type=1, val_per_type=2, composed=0, types=TYPES, seed=5)
    build_mini(b, size=24, per_type=3, val_per_type=2, composed=0, types=TYPES, seed=5, zoom=4.0)
    assert _files(a, "val") == _files(b, "val")
    assert (a / "daclip_val.csv").read_text().replace(str(a), "R") == (b / "daclip_val.csv").read_text().replace(
        str(b), "R")
    assert len(_files(b, "train")) == 3 * len(_files(a, "train")) == 12  # 3 pairs of 2 types, LQ and GT
    c = tmp_path / "c"
    build_mini(c, size=24, per_type=1, val_per_type=2, composed=0, types=TYPES, seed=6)
    assert _files(a, "val") != _files(c, "val")  # but it follows the seed


def test_every_photo_loader_gives_rgb_uint8_and_the_val_photos_come_last():
    import numpy as np

    names = [name for name, _, _ in PHOTOS]
    assert names[-2:] == ["flower", "grace_hopper"] and len(set(names)) == len(names)
    for name, load, caption in PHOTOS:
        arr = load()
        assert arr.ndim == 3 and arr.shape[-1] in (3, 4) and arr.dtype == np.uint8, name  # grey ones too
        assert min(arr.shape[:2]) >= 256 and ": " not in caption


def test_zoom_gives_closer_views_of_the_photo():
    photo = torch.zeros(1, 3, 400, 400)
    photo[..., ::2, :] = 1.0  # one-pixel stripes: the closer the view, the wider they are
    narrow, wide = Draw(torch.Generator().manual_seed(0)), Draw(torch.Generator().manual_seed(0))
    whole = [random_crop(photo, 32, narrow) for _ in range(20)]
    close = [random_crop(photo, 32, wide, zoom=8.0) for _ in range(20)]

    def stripe_contrast(crops):
        return sum(float(c[..., 1:, :].sub(c[..., :-1, :]).abs().mean()) for c in crops) / len(crops)

    assert stripe_contrast(close) > 2 * stripe_contrast(whole)  # resized less, the stripes survive


def test_zoom_reaches_only_the_training_crops(tmp_path):
    plain = tmp_path / "plain"
    zoomed = tmp_path / "zoomed"
    build_mini(plain, size=24, per_type=2, val_per_type=1, composed=0, types=("noisy",), seed=0)
    build_mini(zoomed, size=24, per_type=2, val_per_type=1, composed=0, types=("noisy",), seed=0, zoom=6.0)
    assert _files(plain, "val") == _files(zoomed, "val")
    assert _files(plain, "train") != _files(zoomed, "train")
    gt = sorted((zoomed / "train/noisy/GT").glob("*.png"))
    assert read_image(gt[0]).shape == (1, 3, 24, 24)


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"zoom": 0.5}, r"--zoom must be a number >= 1"),
    ({"zoom": float("nan")}, r"--zoom must be a number >= 1"),
    ({"per_type": -1}, r"--per-type must be 0 or more"),
    ({"val_per_type": -2}, r"--val-per-type must be 0 or more"),
])
def test_bad_options_are_refused_before_anything_is_written(tmp_path, kwargs, message):
    out = tmp_path / "m"
    with pytest.raises(ConfigError, match=message):
        build_mini(out, size=24, types=("noisy",), **kwargs)
    assert not out.exists()


def test_cli_zoom(tmp_path, capsys):
    out = tmp_path / "m"
    assert main(["data", "mini", "--out", str(out), "--size", "24", "--per-type", "1", "--val-per-type", "1",
                 "--composed", "0", "--types", "noisy", "--zoom", "3"]) == 0
    assert len(list((out / "train/noisy/GT").glob("*.png"))) == 1
    assert main(["data", "mini", "--out", str(tmp_path / "n"), "--size", "24", "--zoom", "0.9"]) == 1
    assert "--zoom" in capsys.readouterr().err
