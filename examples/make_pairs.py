"""Make a pair of folders of your own degradation from the photos bundled with installed packages.

Stands in for "my/lq" and "my/gt" in docs/your-data.md: clean random crops of the scikit-image,
scikit-learn and matplotlib sample photos (GT) and their degraded copies (LQ) under the same names.

Run::

    python examples/make_pairs.py cast --out my --count 40          # my/lq, my/gt

Kinds: ``cast`` (a strong global colour cast: a 3x3 colour matrix + offset per image, drawn around
one tint), ``banding`` (horizontal stripes of random period, phase, tilt and tint: a local
artefact), ``defocus`` (a disc blur of radius 1.5-2.5 px: blur-like), ``speckle`` (multiplicative
Gaussian noise, sigma 0.15-0.25: noise-like). The crops avoid the two photos ``data mini`` keeps
for its val split.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

KINDS = ("cast", "banding", "defocus", "speckle")


def degrade(kind: str, clean, rng):
    """``clean`` (H, W, 3) float64 in [0, 1] -> its LQ of ``kind`` (same shape, in [0, 1])."""
    import numpy as np
    from scipy import ndimage

    h, w = clean.shape[:2]
    if kind == "cast":
        base = np.array([[0.95, 0.12, 0.0], [0.05, 0.55, 0.1], [0.1, 0.05, 0.45]])
        matrix = base + rng.normal(0, 0.04, size=(3, 3))
        offset = np.array([0.12, 0.04, 0.0]) + rng.normal(0, 0.02, size=3)
        return np.clip(clean @ matrix.T + offset, 0, 1)
    if kind == "banding":
        y, x = np.mgrid[0:h, 0:w].astype(np.float64)
        period, phase = rng.uniform(5, 12), rng.uniform(0, 2 * np.pi)
        tilt, amp, tint = rng.uniform(-0.2, 0.2), rng.uniform(0.3, 0.45), rng.uniform(0.6, 1.0, size=3)
        return np.clip(clean + amp * np.sin(2 * np.pi * (y + tilt * x) / period + phase)[..., None] * tint, 0, 1)
    if kind == "defocus":
        radius = rng.uniform(1.5, 2.5)
        r = int(np.ceil(radius))
        yy, xx = np.mgrid[-r:r + 1, -r:r + 1]
        disc = (yy ** 2 + xx ** 2 <= radius ** 2).astype(np.float64)
        disc /= disc.sum()
        return np.stack([ndimage.convolve(clean[..., c], disc, mode="reflect") for c in range(3)], axis=-1)
    if kind == "speckle":
        sigma = rng.uniform(0.15, 0.25)
        return np.clip(clean * (1 + rng.normal(0, sigma, size=clean.shape)), 0, 1)
    raise ValueError(kind)


def make_pairs(kind: str, count: int, size: int, folder: Path, seed: int) -> tuple[Path, Path]:
    """The user's two folders: ``count`` clean random crops of the bundled training photos (GT) and
    their ``kind`` copies (LQ), under the same names."""
    import numpy as np
    import torch
    from PIL import Image

    from daclip_kit.data.mini import PHOTOS, random_crop
    from daclip_kit.degradations.base import Draw

    rng = np.random.default_rng(seed)
    lq_dir, gt_dir = folder / "lq", folder / "gt"
    lq_dir.mkdir(parents=True)
    gt_dir.mkdir(parents=True)
    photos = []
    for _, load, _ in PHOTOS[:-2]:  # the last two are the mini set's val photos
        try:
            photos.append(torch.from_numpy(np.asarray(load(), dtype=np.float32) / 255).permute(2, 0, 1)[None])
        except (ImportError, OSError):
            continue
    draw = Draw(torch.Generator().manual_seed(seed))
    for i in range(count):
        crop = random_crop(photos[i % len(photos)], size, draw, zoom=3.0)[0].permute(1, 2, 0).numpy()
        clean = crop.astype(np.float64)
        lq = degrade(kind, clean, rng)
        name = f"{kind}{i:04d}.png"
        Image.fromarray((clean * 255).round().astype(np.uint8)).save(gt_dir / name)
        Image.fromarray((lq * 255).round().astype(np.uint8)).save(lq_dir / name)
    return lq_dir, gt_dir


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("kind", choices=KINDS)
    p.add_argument("--out", type=Path, required=True, help="writes OUT/lq and OUT/gt (new folders)")
    p.add_argument("--count", type=int, default=40, help="pairs (default 40)")
    p.add_argument("--size", type=int, default=64, help="side of the square crops (default 64)")
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    if (args.out / "lq").exists() or (args.out / "gt").exists():
        p.error(f"{args.out}/lq or {args.out}/gt exists; give a new --out")
    lq, gt = make_pairs(args.kind, args.count, args.size, args.out, seed=args.seed)
    print(f"{args.count} pairs of {args.kind}: {lq} (degraded), {gt} (clean)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
