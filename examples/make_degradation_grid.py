"""Regenerate ``docs/degradations.png``: one bundled photo and its ten synthetic degradations.

The degraded tiles are written by the ``daclip-kit degrade`` command (called in-process), then
pasted into a labelled grid. Needs scikit-image for the photo (``pip install scikit-image``).

    python examples/make_degradation_grid.py [--out docs/degradations.png] [--tile 192] [--seed 0]
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

from PIL import Image, ImageDraw

from daclip_kit import DEGRADATIONS
from daclip_kit.cli.main import main as daclip_kit

LABEL_HEIGHT = 18
COLUMNS = 4


def clean_photo(tile: int) -> Image.Image:
    """skimage's astronaut, centre-cropped to a square and resized to ``tile`` pixels."""
    from skimage import data

    arr = data.astronaut()
    side = min(arr.shape[:2])
    top, left = (arr.shape[0] - side) // 2, (arr.shape[1] - side) // 2
    return Image.fromarray(arr[top:top + side, left:left + side]).resize((tile, tile), Image.Resampling.LANCZOS)


def labelled(image: Image.Image, text: str) -> Image.Image:
    canvas = Image.new("RGB", (image.width, image.height + LABEL_HEIGHT), "white")
    canvas.paste(image, (0, LABEL_HEIGHT))
    ImageDraw.Draw(canvas).text((4, 3), text, fill="black")
    return canvas


def build(out: Path, tile: int, seed: int) -> Path:
    with tempfile.TemporaryDirectory() as tmp:
        src = Path(tmp) / "clean.png"
        clean_photo(tile).save(src)
        degraded = Path(tmp) / "degraded"
        if daclip_kit(["degrade", str(src), "-o", str(degraded), "--seed", str(seed)]) != 0:
            raise SystemExit("daclip-kit degrade failed")
        if daclip_kit(["degrade", str(src), "-o", str(degraded), "--seed", str(seed),
                       "--types", "hazy,noisy,jpeg-compressed", "--compose"]) != 0:
            raise SystemExit("daclip-kit degrade --compose failed")
        names = ["clean", *DEGRADATIONS, "hazy+noisy+jpeg-compressed"]
        files = [src] + [degraded / f"{n}.png" for n in names[1:]]
        tiles = [labelled(Image.open(f).convert("RGB"), n.replace("+", " + "))
                 for n, f in zip(names, files, strict=True)]
    rows = -(-len(tiles) // COLUMNS)
    w, h = tiles[0].size
    grid = Image.new("RGB", (COLUMNS * w, rows * h), "white")
    for i, t in enumerate(tiles):
        grid.paste(t, ((i % COLUMNS) * w, (i // COLUMNS) * h))
    out.parent.mkdir(parents=True, exist_ok=True)
    # a 256-colour palette keeps the file under 500 KB (noise and JPEG tiles barely compress)
    palette = grid.quantize(colors=256, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.FLOYDSTEINBERG)
    palette.save(out, format="PNG", optimize=True)
    return out


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path(__file__).resolve().parents[1] / "docs" / "degradations.png")
    parser.add_argument("--tile", type=int, default=192)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    path = build(args.out, args.tile, args.seed)
    print(f"wrote {path} ({path.stat().st_size / 1024:.0f} KiB)")
