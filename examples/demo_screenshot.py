"""Regenerate ``docs/demo.png``: the web demo (``daclip-kit demo``) after restoring a bundled example.

The demo runs in this process with tiny random models (written to a temporary folder, no
download), so the "restored" half of the comparison is noise: the picture shows the page, not the
paper's results. Headless Chromium (Debian package ``chromium``) is driven by Playwright; the
screenshot is scaled to ``--width`` pixels and saved as an optimised PNG.

Needs the ``[demo]`` extra, Playwright and Chromium::

    pip install -e '.[demo]' playwright && apt-get install -y chromium
    python examples/demo_screenshot.py [--out docs/demo.png] [--width 1000] [--example 0]
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from pathlib import Path

from PIL import Image

from daclip_kit.demo.core import DemoSettings, make_examples
from daclip_kit.demo.tiny import write_tiny_models

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


def capture(out: Path, *, width: int, example: int, chromium: str, steps: int, example_size: int) -> int:
    from playwright.sync_api import expect, sync_playwright

    from daclip_kit.demo import app

    with tempfile.TemporaryDirectory(prefix="daclip-kit-demo-shot-") as tmp:
        work = Path(tmp)
        unet, daclip = write_tiny_models(work / "models")
        settings = DemoSettings(weights=unet, embedder_weights=daclip, device="cpu", download=False, steps=steps)
        examples = make_examples(work / "examples", longest=example_size)
        demo, url, _ = app.start(settings, port=0, examples=examples, work_dir=work)
        try:
            with sync_playwright() as pw:
                browser = pw.chromium.launch(executable_path=chromium, headless=True)
                page = browser.new_page(viewport={"width": VIEWPORT[0], "height": VIEWPORT[1]})
                page.goto(url)
                page.locator("#examples button.gallery-item").nth(example).click()
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
    parser.add_argument("--out", type=Path, default=Path(__file__).resolve().parents[1] / "docs" / "demo.png")
    parser.add_argument("--width", type=int, default=1000, help="width of the PNG in pixels (default 1000)")
    parser.add_argument("--example", type=int, default=0, help="which example to restore (default 0, the astronaut)")
    parser.add_argument("--steps", type=int, default=10, help="sampling steps (default 10)")
    parser.add_argument("--example-size", type=int, default=256, help="longer side of the examples (default 256)")
    parser.add_argument("--chromium", help="Chromium executable (default: chromium on PATH)")
    args = parser.parse_args()
    start = time.perf_counter()
    size = capture(args.out, width=args.width, example=args.example, chromium=find_chromium(args.chromium),
                   steps=args.steps, example_size=args.example_size)
    print(f"wrote {args.out} ({size / 1000:.0f} kB) in {time.perf_counter() - start:.0f} s")


if __name__ == "__main__":
    main()
