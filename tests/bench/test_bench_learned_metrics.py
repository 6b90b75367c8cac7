"""LPIPS and FID plumbing.

The real metrics need pretrained files that cannot be downloaded here. Two kinds of tests:
plumbing with tiny self-made feature networks (marked ``tiny`` in their names), and the real
loaders fed with randomly initialised files of the right architecture (key mapping, strict
loading, missing-file errors). Neither produces a real LPIPS or FID value.
"""

from __future__ import annotations

import numpy as np
import pytest
import scipy.linalg
import torch
import torch.nn.functional as F
from torch import nn

from daclip_kit.errors import InputError, WeightsNotFoundError
from daclip_kit.metrics import fid, lpips
from daclip_kit.metrics.fid_score import feature_stats


@pytest.fixture
def empty_caches(tmp_path, monkeypatch):
    """No metric weights anywhere: empty daclip-kit and torch hub caches."""
    monkeypatch.setenv("DACLIP_KIT_CACHE", str(tmp_path / "dk-cache"))
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch-home"))
    return tmp_path


class TinyDistance(nn.Module):
    """Records its inputs; distance = mean squared difference."""

    def __init__(self):
        super().__init__()
        self.scale = nn.Parameter(torch.ones(()))
        self.seen = []

    def forward(self, x, y):
        self.seen.append((x.min().item(), x.max().item()))
        return (self.scale * (x - y) ** 2).mean(dim=(1, 2, 3), keepdim=True)


def test_tiny_lpips_plumbing_maps_inputs_to_minus_one_one():
    net = TinyDistance()
    pred, ref = torch.zeros(2, 3, 8, 8), torch.ones(2, 3, 8, 8)
    pred[1] = 1.0
    out = lpips(pred, ref, net=net)
    assert out.dtype == torch.float64 and out.shape == (2,)
    torch.testing.assert_close(out, torch.tensor([4.0, 0.0], dtype=torch.float64))  # (-1 - 1)^2 = 4
    assert net.seen[0] == (-1.0, 1.0)


def test_real_lpips_loader_maps_alexnet_keys(tmp_path, empty_caches):
    from torchvision.models import alexnet

    from daclip_kit.metrics.perceptual import ALEXNET_FILE, load_lpips

    torch.manual_seed(0)
    trunk = alexnet().state_dict()
    torch.save(trunk, tmp_path / ALEXNET_FILE)
    model = load_lpips(tmp_path)
    torch.testing.assert_close(getattr(model.net.slice1, "0").weight, trunk["features.0.weight"])
    torch.testing.assert_close(getattr(model.net.slice5, "10").bias, trunk["features.10.bias"])
    # The linear heads come from the lpips wheel (v0.1, alex), not from a random init.
    import os

    import lpips as lpips_package

    heads = torch.load(os.path.join(os.path.dirname(lpips_package.__file__), "weights", "v0.1", "alex.pth"),
                       map_location="cpu", weights_only=True)
    torch.testing.assert_close(model.lin0.model[1].weight, heads["lin0.model.1.weight"])
    x = torch.rand(1, 3, 32, 32, generator=torch.Generator().manual_seed(1))
    assert lpips(x, x, net=model).item() == pytest.approx(0.0, abs=1e-7)
    assert lpips(x, 1 - x, net=model).item() > 0


def test_missing_lpips_weights_name_the_file(empty_caches):
    from daclip_kit.metrics.perceptual import load_lpips

    with pytest.raises(WeightsNotFoundError, match=r"alexnet-owt-7be5be79\.pth") as info:
        load_lpips(empty_caches / "nowhere")
    message = str(info.value)
    assert "download.pytorch.org" in message and str(empty_caches / "nowhere") in message  # where it looked
    assert "weights fetch lpips-alexnet" in message and "--weights-dir" not in message  # no flag the caller lacks


class TinyFeatures(nn.Module):
    """2-d features: mean red and mean green of each image."""

    def __init__(self):
        super().__init__()
        self.dummy = nn.Parameter(torch.zeros(()))

    def forward(self, x):
        return x[:, :2].mean(dim=(2, 3)) + self.dummy


def _reference_fid(fa: np.ndarray, fb: np.ndarray) -> float:
    mu1, mu2 = fa.mean(0), fb.mean(0)
    s1, s2 = np.cov(fa, rowvar=False), np.cov(fb, rowvar=False)
    covmean = scipy.linalg.sqrtm(s1 @ s2).real
    return float(np.sum((mu1 - mu2) ** 2) + np.trace(s1) + np.trace(s2) - 2 * np.trace(covmean))


def test_tiny_fid_plumbing_on_tensors_and_folders(tmp_path):
    from daclip_kit.io import write_image

    g = torch.Generator().manual_seed(0)
    a, b = torch.rand(5, 3, 16, 16, generator=g), torch.rand(4, 3, 16, 16, generator=g) * 0.5
    net = TinyFeatures()
    fa = np.round(a.numpy() * 255)[:, :2].mean(axis=(2, 3)) / 255  # features of uint8-rounded images
    fb = np.round(b.numpy() * 255)[:, :2].mean(axis=(2, 3)) / 255
    expected = _reference_fid(fa, fb)
    assert fid(a, b, feature_net=net, batch_size=2) == pytest.approx(expected, rel=1e-6)
    for name, imgs in (("a", a), ("b", b)):
        for i, img in enumerate(imgs):
            write_image(tmp_path / name / f"{i:03d}.png", img)
    assert fid(tmp_path / "a", tmp_path / "b", feature_net=net) == pytest.approx(expected, rel=1e-5)
    assert fid(a, a, feature_net=net) == pytest.approx(0.0, abs=1e-9)
    with pytest.raises(InputError, match="at least two images"):
        fid(a[:1], b, feature_net=net)


def test_feature_stats_accumulates_across_calls():
    net = TinyFeatures()
    x = torch.rand(6, 3, 8, 8, generator=torch.Generator().manual_seed(3))
    s = feature_stats(x[:2], net)
    feature_stats(x[2:], net, stats=s)
    assert s.count == 6


def test_fid_inception_last_block_max_pools_its_pool_branch():
    from daclip_kit.metrics.inception import FIDInceptionE1, FIDInceptionE2

    torch.manual_seed(0)
    block = FIDInceptionE2(8).eval()
    x = torch.randn(1, 8, 5, 5)
    with torch.no_grad():
        out = block(x)
        pool_branch = block.branch_pool(F.max_pool2d(x, 3, 1, 1))
        torch.testing.assert_close(out[:, -192:], pool_branch)
        e1 = FIDInceptionE1(8).eval()
        e1.load_state_dict(block.state_dict())
        avg = e1.branch_pool(F.avg_pool2d(x, 3, 1, 1, count_include_pad=False))
        torch.testing.assert_close(e1(x)[:, -192:], avg)


def test_fid_inception_loads_strictly_and_gives_pool3(tmp_path, empty_caches):
    from daclip_kit.metrics.inception import (
        FID_WEIGHTS_FILE,
        FIDInceptionV3,
        load_fid_inception,
    )

    torch.manual_seed(0)
    sd = FIDInceptionV3().net.state_dict()
    assert sd["fc.weight"].shape == (1008, 2048)
    sd = {k: v for k, v in sd.items() if not k.endswith("num_batches_tracked")}  # like the released file
    torch.save(sd, tmp_path / FID_WEIGHTS_FILE)
    model = load_fid_inception(tmp_path)
    feats = model(torch.rand(1, 3, 40, 40, generator=torch.Generator().manual_seed(0)))
    assert feats.shape == (1, 2048) and torch.isfinite(feats).all()
    torch.testing.assert_close(model.net.Mixed_7c.branch_pool.conv.weight, sd["Mixed_7c.branch_pool.conv.weight"])


def test_missing_fid_weights_name_the_file(empty_caches):
    from daclip_kit.metrics.inception import load_fid_inception

    with pytest.raises(WeightsNotFoundError, match=r"pt_inception-2015-12-05-6726825d\.pth"):
        load_fid_inception(empty_caches / "nowhere")
    with pytest.raises(WeightsNotFoundError, match="pt_inception"):
        fid(torch.rand(2, 3, 8, 8), torch.rand(2, 3, 8, 8), weights_dir=empty_caches / "nowhere")
