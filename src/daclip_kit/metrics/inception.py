"""The Inception-v3 feature extractor of pytorch-fid (pool3, 2048-d), built from torchvision.

The FID weights (``pt_inception-2015-12-05-6726825d.pth``, converted from the TensorFlow FID graph)
only fit torchvision's Inception-v3 after four changes that reproduce TensorFlow's graph:

* 1008 output classes (the fully connected layer is kept so the file loads strictly);
* the average-pool branch of the A, C and first E blocks excludes padding from the average
  (``count_include_pad=False``);
* the last E block (``Mixed_7c``) pools its pool branch with a 3x3 **max** pool instead.

Inputs are resized to 299x299 (bilinear, ``align_corners=False``) and mapped from [0, 1] to [-1, 1].
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn
from torchvision.models import inception as tv_inception

from ..checkpoint import load_strict, read_state_dict
from ..core.checks import check_image
from ..weights import as_search_dirs, resolve_weights

#: Registered weights of the FID network (``daclip-kit weights list``).
WEIGHTS = "fid-inception"
FID_WEIGHTS_FILE = "pt_inception-2015-12-05-6726825d.pth"
FEATURE_DIM = 2048
INPUT_SIZE = 299


def _avg_pool_no_pad(x: torch.Tensor) -> torch.Tensor:
    return F.avg_pool2d(x, kernel_size=3, stride=1, padding=1, count_include_pad=False)


class FIDInceptionA(tv_inception.InceptionA):
    """InceptionA whose pool branch averages without the zero padding."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b1 = self.branch1x1(x)
        b5 = self.branch5x5_2(self.branch5x5_1(x))
        b3 = self.branch3x3dbl_3(self.branch3x3dbl_2(self.branch3x3dbl_1(x)))
        bp = self.branch_pool(_avg_pool_no_pad(x))
        return torch.cat([b1, b5, b3, bp], 1)


class FIDInceptionC(tv_inception.InceptionC):
    """InceptionC whose pool branch averages without the zero padding."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b1 = self.branch1x1(x)
        b7 = self.branch7x7_3(self.branch7x7_2(self.branch7x7_1(x)))
        b7d = x
        for layer in (self.branch7x7dbl_1, self.branch7x7dbl_2, self.branch7x7dbl_3,
                      self.branch7x7dbl_4, self.branch7x7dbl_5):
            b7d = layer(b7d)
        bp = self.branch_pool(_avg_pool_no_pad(x))
        return torch.cat([b1, b7, b7d, bp], 1)


class FIDInceptionE1(tv_inception.InceptionE):
    """First InceptionE block (``Mixed_7b``): pool branch averages without the zero padding."""

    def pool(self, x: torch.Tensor) -> torch.Tensor:
        return _avg_pool_no_pad(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b1 = self.branch1x1(x)
        b3 = self.branch3x3_1(x)
        b3 = torch.cat([self.branch3x3_2a(b3), self.branch3x3_2b(b3)], 1)
        b3d = self.branch3x3dbl_2(self.branch3x3dbl_1(x))
        b3d = torch.cat([self.branch3x3dbl_3a(b3d), self.branch3x3dbl_3b(b3d)], 1)
        bp = self.branch_pool(self.pool(x))
        return torch.cat([b1, b3, b3d, bp], 1)


class FIDInceptionE2(FIDInceptionE1):
    """Second InceptionE block (``Mixed_7c``): pool branch uses 3x3 max pooling."""

    def pool(self, x: torch.Tensor) -> torch.Tensor:
        return F.max_pool2d(x, kernel_size=3, stride=1, padding=1)


class FIDInceptionV3(nn.Module):
    """Inception-v3 up to the 2048-d pool3 features, with pytorch-fid's block changes.

    Shape:
        - input: ``(B, 3, H, W)`` float RGB in [0, 1], any size (resized to 299x299).
        - output: ``(B, 2048)`` pool3 features.
    """

    def __init__(self) -> None:
        super().__init__()
        net = tv_inception.Inception3(num_classes=1008, aux_logits=False, init_weights=False)
        net.Mixed_5b = FIDInceptionA(192, pool_features=32)
        net.Mixed_5c = FIDInceptionA(256, pool_features=64)
        net.Mixed_5d = FIDInceptionA(288, pool_features=64)
        net.Mixed_6b = FIDInceptionC(768, channels_7x7=128)
        net.Mixed_6c = FIDInceptionC(768, channels_7x7=160)
        net.Mixed_6d = FIDInceptionC(768, channels_7x7=160)
        net.Mixed_6e = FIDInceptionC(768, channels_7x7=192)
        net.Mixed_7b = FIDInceptionE1(1280)
        net.Mixed_7c = FIDInceptionE2(2048)
        self.net = net

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        check_image(images, "images")
        n = self.net
        x = F.interpolate(images, size=(INPUT_SIZE, INPUT_SIZE), mode="bilinear", align_corners=False)
        x = 2 * x - 1
        for layer in (n.Conv2d_1a_3x3, n.Conv2d_2a_3x3, n.Conv2d_2b_3x3, n.maxpool1,
                      n.Conv2d_3b_1x1, n.Conv2d_4a_3x3, n.maxpool2,
                      n.Mixed_5b, n.Mixed_5c, n.Mixed_5d, n.Mixed_6a, n.Mixed_6b, n.Mixed_6c,
                      n.Mixed_6d, n.Mixed_6e, n.Mixed_7a, n.Mixed_7b, n.Mixed_7c, n.avgpool):
            x = layer(x)
        return x.flatten(1)


def load_fid_inception(weights_dir: str | Path | Sequence[str | Path] | None = None, *,
                       device: str | torch.device = "cpu") -> FIDInceptionV3:
    """Build :class:`FIDInceptionV3` and load pytorch-fid's weights strictly (``weights_only``).

    The file ``pt_inception-2015-12-05-6726825d.pth`` is looked up in ``weights_dir``, the
    daclip-kit cache and the torch hub cache (:func:`daclip_kit.weights.resolve_weights`).

    Raises:
        WeightsNotFoundError: the file is in none of those folders (nothing is downloaded).
        CheckpointError: the file does not match the network.
    """
    path = resolve_weights(WEIGHTS, search_dirs=as_search_dirs(weights_dir))
    return _load(str(path), str(device))


@functools.lru_cache(maxsize=2)
def _load(path: str, device: str) -> FIDInceptionV3:
    model = FIDInceptionV3()
    sd = read_state_dict(path, wrappers=(), strip=())
    own = model.net.state_dict()
    for key in own:
        # Files converted before BatchNorm tracked its batch count lack these counters.
        if key.endswith("num_batches_tracked") and key not in sd:
            sd[key] = own[key]
    load_strict(model.net, sd, source=path)
    return model.eval().requires_grad_(False).to(device)
