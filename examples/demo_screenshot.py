"""Regenerate ``docs/demo.png``: the web demo (``daclip-kit demo``) after restoring a photo.

The demo runs in this process with the models of the README's first hour (``train daclip
--config daclip_tiny``, ``train restoration --config irsde_tiny``), and the photo is one they
know: a noisy image of the mini set's validation split, which the tiny DA-CLIP calls "noisy" and
the tiny U-Net (trained to remove that noise) restores. Headless Chromium (Debian package
``chromium``) is driven by Playwright; the screenshot is scaled to ``--width`` pixels and saved as
an optimised PNG. ``docs/demo.png`` was made with::

    daclip-kit data mini --out /tmp/mini --size 64 --per-type 8 --val-per-type 4 --composed 0
    daclip-kit train daclip --config daclip_tiny
    daclip-kit train restoration --config irsde_tiny
    python examples/demo_screenshot.py --image /tmp/mini/val/noisy/LQ/flower_val_0018.png \
        --weights runs/irsde-tiny/checkpoints/step-00000800/network-ema \
        --daclip-weights runs/daclip-tiny/checkpoints/step-00000500/daclip

Needs the ``[demo]`` extra, Playwright and Chromium::

    pip install -e '.[demo]' playwright && apt-get install -y chromium
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from pathlib import Path

from PIL import Image

from daclip_kit.demo.core import DemoSettings, make_examples

#: Size of the browser window (CSS pixels); the page is laid out for it, then scaled to --width.
VIEWPORT = (1280, 1000)


def find_chromium(given: str | None) -> str:
    """The Chromium executable: ``--chromium`` or the first of chromium / chromium-browser on PATH."""
    for candidate in (given, shutil.which("chromium"), shutil.which("chromium-browser")):
        if candidate and Path(candidate).is_file():
            return candidate
    raise SystemExit("error: Chromium not found; install it (apt-get install -y chromium) or pass --chromium PATH.")


def save_optimised(shot: Path, out: Path, width: int) -> int:
    """Scale ``shot`` to ``width`` pixels wide and write it as an optimised PNG; returns its bytes.

    A file above 400 kB (the photos make it so) is reduced to a 256-colour palette, which keeps
    text and panels sharp at about a third of the size."""
    with Image.open(shot) as im:
        im = im.convert("RGB")
        if im.width != width:
            im = im.resize((width, round(im.height * width / im.width)), Image.Resampling.LANCZOS)
    out.parent.mkdir(parents=True, exist_ok=True)
    im.save(out, format="PNG", optimize=True)
    if out.stat().st_size > 400_000:
        im.quantize(colors=256, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE).save(
            out, format="PNG", optimize=True)
    return out.stat().st_size


def capture(out: Path, *, image: Path, weights: Path, daclip_weights: Path, width: int, chromium: str,
            steps: int | None, example_size: int) -> int:
    from playwright.sync_api import expect, sync_playwright

    from daclip_kit.demo import app

    with tempfile.TemporaryDirectory(prefix="daclip-kit-demo-shot-") as tmp:
        work = Path(tmp)
        settings = DemoSettings(weights=weights, embedder_weights=daclip_weights, device="cpu", download=False,
                                steps=steps)
        examples = make_examples(work / "examples", longest=example_size)
        demo, url, _ = app.start(settings, port=0, examples=examples, work_dir=work)
        try:
            with sync_playwright() as pw:
                browser = pw.chromium.launch(executable_path=chromium, headless=True)
                page = browser.new_page(viewport={"width": VIEWPORT[0], "height": VIEWPORT[1]})
                page.goto(url)
                page.set_input_files("#input-image input[type=file]", str(image))
                expect(page.locator("#probabilities meter")).to_have_count(10, timeout=120_000)
                page.click("#restore")
                expect(page.locator("#status")).to_contain_text("Restored", timeout=600_000)
                expect(page.locator("#result img")).to_have_count(2)
                page.mouse.move(0, 0)  # no hover highlight on the button
                page.wait_for_timeout(500)  # let the images finish painting
                shot = work / "shot.png"
                page.screenshot(path=str(shot), full_page=True)
                browser.close()
        finally:
            demo.close()
        return save_optimised(shot, out, width)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--image", type=Path, required=True, help="the photo to upload and restore")
    parser.add_argument("--weights", type=Path, required=True, help="the restoration network (file or folder)")
    parser.add_argument("--daclip-weights", type=Path, required=True, help="DA-CLIP (file or folder)")
    parser.add_argument("--out", type=Path, default=Path(__file__).resolve().parents[1] / "docs" / "demo.png")
    parser.add_argument("--width", type=int, default=1000, help="width of the PNG in pixels (default 1000)")
    parser.add_argument("--steps", type=int, help="sampling steps (default: the model's, 100)")
    parser.add_argument("--example-size", type=int, default=256, help="longer side of the examples (default 256)")
    parser.add_argument("--chromium", help="Chromium executable (default: chromium on PATH)")
    args = parser.parse_args()
    for path in (args.image, args.weights, args.daclip_weights):
        if not path.exists():
            raise SystemExit(f"error: {path} does not exist (see this script's docstring for the commands).")
    start = time.perf_counter()
    size = capture(args.out, image=args.image, weights=args.weights, daclip_weights=args.daclip_weights,
                   width=args.width, chromium=find_chromium(args.chromium), steps=args.steps,
                   example_size=args.example_size)
    print(f"wrote {args.out} ({size / 1000:.0f} kB) in {time.perf_counter() - start:.0f} s")


if __name__ == "__main__":
    main()
